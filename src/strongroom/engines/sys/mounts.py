"""``sys/mounts``, ``sys/mounts/:path``, ``sys/mounts/:path/tune`` and ``sys/internal/ui/mounts``.

Supported engine types: ``kv`` (``options.version`` ``"1"`` or ``"2"``; ``generic`` is an alias of v1).
Other types are refused with Vault's ``plugin not found in the catalog`` wording.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from strongroom.core.mounts import (
    DEFAULT_LEASE_TTL,
    MountEntry,
    clear_mount_data,
    load_table,
    new_entry,
    normalize_mount_path,
    store_table,
)
from strongroom.engines.context import Context
from strongroom.engines.fields import NoFields, parse_duration
from strongroom.engines.framework import Operation, Request, Response, Route
from strongroom.engines.registry import SECRET_ENGINE_TYPES
from strongroom.errors import InvalidRequest, PermissionDenied

SysRoute = Route[Context, Any]
_RESERVED = ("sys/", "auth/", "cubbyhole/", "identity/", "audit/")


def _mount_view(entry: MountEntry) -> dict[str, Any]:
    return entry.describe()


async def list_mounts(ctx: Context, req: Request, f: NoFields) -> Response:
    table = await load_table(ctx.tx, ctx.keys)
    data = {e.path: _mount_view(e) for e in table.by_kind("secret")}
    return Response(data=data, sys_inject=True)


@dataclass(frozen=True)
class MountFields:
    path: str
    type: str = ""
    description: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    local: bool = False
    seal_wrap: bool = False
    external_entropy_access: bool = False
    plugin_name: str = ""
    plugin_version: str = ""


def _engine_options(type_: str, options: dict[str, Any]) -> tuple[str, dict[str, str] | None]:
    """Normalise engine type and options the way Vault stores them."""
    opts = {str(k): str(v) for k, v in options.items()}
    if type_ == "generic":
        type_ = "kv"
    if type_ == "kv":
        version = opts.get("version", "1") or "1"
        if version not in ("1", "2"):
            raise InvalidRequest(f"invalid KV version {version!r}; supported versions are 1 and 2")
        opts["version"] = version
        return type_, opts
    return type_, opts or None


def _mount_config(config: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in ("default_lease_ttl", "max_lease_ttl"):
        if key in config and config[key] not in (None, ""):
            out[key] = parse_duration(config[key], key)
    if config.get("force_no_cache") is not None:
        out["force_no_cache"] = bool(config["force_no_cache"])
    for key in ("audit_non_hmac_request_keys", "audit_non_hmac_response_keys", "passthrough_request_headers",
                "allowed_response_headers", "listing_visibility"):
        if config.get(key) not in (None, "", []):
            out[key] = config[key]
    return out


async def enable_mount(ctx: Context, req: Request, f: MountFields) -> None:
    path = normalize_mount_path(f.path)
    if any(path.startswith(r) for r in _RESERVED):
        raise InvalidRequest(f"cannot mount at reserved path {path!r}")
    type_ = f.type or f.plugin_name
    if not type_:
        raise InvalidRequest("backend type must be specified as a string")
    type_, options = _engine_options(type_, f.options)
    if type_ not in SECRET_ENGINE_TYPES:
        raise InvalidRequest(f"plugin not found in the catalog: {type_}")
    table = await load_table(ctx.tx, ctx.keys)
    entry = new_entry(
        path,
        type_,
        description=f.description,
        options=options,
        config=_mount_config(f.config),
        local=f.local,
        seal_wrap=f.seal_wrap,
        external_entropy_access=f.external_entropy_access,
    )
    store_table(ctx.tx, ctx.keys, table.with_added(entry))


async def read_mount(ctx: Context, req: Request, f: MountFields) -> Response:
    table = await load_table(ctx.tx, ctx.keys)
    entry = table.find(f.path)
    if entry is None:
        raise InvalidRequest(f"No secret engine mount at {normalize_mount_path(f.path)}")
    return Response(data=_mount_view(entry), sys_inject=True)


async def disable_mount(ctx: Context, req: Request, f: MountFields) -> None:
    path = normalize_mount_path(f.path)
    if any(path.startswith(r) for r in _RESERVED):
        raise InvalidRequest(f"cannot unmount {path!r}")
    table = await load_table(ctx.tx, ctx.keys)
    entry = table.find(path)
    if entry is None:
        return
    clear_mount_data(ctx.tx, ctx.keys, entry)
    store_table(ctx.tx, ctx.keys, table.without(entry))


@dataclass(frozen=True)
class TuneFields:
    path: str
    default_lease_ttl: str | None = None
    max_lease_ttl: str | None = None
    description: str | None = None
    options: dict[str, Any] | None = None
    listing_visibility: str | None = None
    force_no_cache: bool | None = None


def _find_any(table: Any, path: str) -> MountEntry | None:
    if path.startswith("auth/"):
        return table.find(path[5:], "auth")  # type: ignore[no-any-return]
    return table.find(path)  # type: ignore[no-any-return]


async def read_tune(ctx: Context, req: Request, f: TuneFields) -> Response:
    table = await load_table(ctx.tx, ctx.keys)
    entry = _find_any(table, normalize_mount_path(f.path))
    if entry is None:
        raise InvalidRequest(f"cannot fetch sysview for path \"{normalize_mount_path(f.path)}\"")
    data: dict[str, Any] = {
        "default_lease_ttl": int(entry.config.get("default_lease_ttl") or DEFAULT_LEASE_TTL),
        "max_lease_ttl": int(entry.config.get("max_lease_ttl") or DEFAULT_LEASE_TTL),
        "force_no_cache": bool(entry.config.get("force_no_cache", False)),
        "description": entry.description,
    }
    if entry.options:
        data["options"] = entry.options
    return Response(data=data, sys_inject=True)


async def write_tune(ctx: Context, req: Request, f: TuneFields) -> None:
    table = await load_table(ctx.tx, ctx.keys)
    entry = _find_any(table, normalize_mount_path(f.path))
    if entry is None:
        raise InvalidRequest(f"no mount entry found at \"{normalize_mount_path(f.path)}\"")
    config = dict(entry.config)
    for key in ("default_lease_ttl", "max_lease_ttl"):
        value = getattr(f, key)
        if value is not None:
            config[key] = parse_duration(value, key)
    if f.force_no_cache is not None:
        config["force_no_cache"] = f.force_no_cache
    if f.listing_visibility is not None:
        config["listing_visibility"] = f.listing_visibility
    if config.get("default_lease_ttl") and config.get("max_lease_ttl") and (
        config["default_lease_ttl"] > config["max_lease_ttl"]
    ):
        raise InvalidRequest("backend max lease TTL cannot be less than backend default lease TTL")
    options = entry.options
    if f.options:
        if entry.type == "kv":
            new_version = str(f.options.get("version", entry.version))
            if new_version == "1" and entry.version == "2":
                raise InvalidRequest("cannot downgrade mount from KV version 2 to 1")
            _, options = _engine_options("kv", {**(entry.options or {}), **f.options})
        else:
            options = {**(entry.options or {}), **{str(k): str(v) for k, v in f.options.items()}}
    updated = dataclasses.replace(
        entry,
        config=config,
        options=options,
        description=f.description if f.description is not None else entry.description,
    )
    store_table(ctx.tx, ctx.keys, table.replaced(updated))


@dataclass(frozen=True)
class UiMountFields:
    path: str = ""


async def read_ui_mount(ctx: Context, req: Request, f: UiMountFields) -> Response:
    # Vault's CLI calls this with any token to learn a mount's KV version; it answers for any mount the
    # token can reach at all, and with Vault's own 403 wording otherwise.
    table = await load_table(ctx.tx, ctx.keys)
    entry = table.match(f.path) if f.path else None
    if entry is None or entry.kind != "secret" or not ctx.acl.has_access_under(entry.path):
        raise PermissionDenied(
            "preflight capability check returned 403, please ensure client's policies grant access "
            f"to path \"{f.path}\""
        )
    view = _mount_view(entry)
    view["path"] = entry.path
    return Response(data=view)


async def list_ui_mounts(ctx: Context, req: Request, f: NoFields) -> Response:
    table = await load_table(ctx.tx, ctx.keys)
    secret = {e.path: _mount_view(e) for e in table.by_kind("secret")}
    auth = {e.path: _mount_view(e) for e in table.by_kind("auth")}
    return Response(data={"secret": secret, "auth": auth})


ROUTES: list[SysRoute] = [
    Route("mounts", NoFields, {Operation.READ: list_mounts}),
    Route("mounts/{path:*}", MountFields,
          {Operation.UPDATE: enable_mount, Operation.READ: read_mount, Operation.DELETE: disable_mount}),
    Route("mounts/{path:*}/tune", TuneFields, {Operation.READ: read_tune, Operation.UPDATE: write_tune}),
    Route("internal/ui/mounts", NoFields, {Operation.READ: list_ui_mounts}),
    Route("internal/ui/mounts/{path:*}", UiMountFields, {Operation.READ: read_ui_mount}, self_authorizing=True),
]
