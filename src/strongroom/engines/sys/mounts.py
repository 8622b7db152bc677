"""``sys/mounts``, ``sys/mounts/:path``, ``sys/mounts/:path/tune`` and ``sys/internal/ui/mounts``.

Supported engine types: ``kv`` (``options.version`` ``"1"`` or ``"2"``; ``kv-v1``/``kv-v2`` set the
version, ``generic`` is kv). Other types are refused with Vault's ``plugin not found in the catalog``
wording. Validation, tuning rules and messages follow OpenBao's ``logical_system.go``; every handler
writes at most one record (the mount table) and raises before writing when the request is invalid.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from strongroom.core.mounts import (
    DEFAULT_LEASE_TTL,
    MountEntry,
    MountTable,
    clear_mount_data,
    load_table,
    new_entry,
    normalize_mount_path,
    store_table,
)
from strongroom.core.namespaces import NamespaceTable
from strongroom.engines.context import Context
from strongroom.engines.fields import NoFields, parse_duration
from strongroom.engines.framework import Operation, Request, Response, Route
from strongroom.engines.kv.v2.upgrade import upgrade_v1_to_v2
from strongroom.engines.registry import SECRET_ENGINE_TYPES
from strongroom.errors import InvalidRequest, PermissionDenied

SysRoute = Route[Context, Any]
_RESERVED = ("sys/", "auth/", "cubbyhole/", "identity/", "audit/")
_UNTUNABLE = ("cubbyhole/", "sys/", "audit/", "identity/")
_UNTUNABLE_FIELDS = frozenset({"path", "audit_non_hmac_request_keys", "audit_non_hmac_response_keys"})


def _mount_view(entry: MountEntry) -> dict[str, Any]:
    view = entry.describe()
    # Vault's omitempty: built-in system/token mounts carry no deprecation status at all.
    if view.get("deprecation_status") is None:
        view.pop("deprecation_status", None)
    return view


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
    """Normalise engine type and options the way Vault stores them.

    Raises:
        InvalidRequest: a KV version other than 1 or 2, or a version option on another engine.
    """
    opts = {str(k): str(v) for k, v in options.items()}
    if type_ == "generic":
        type_ = "kv"
    elif type_ in ("kv-v1", "kv-v2"):
        type_, opts["version"] = "kv", type_[-1]
    if type_ == "kv":
        # Vault keeps a kv mount without version as ``{}`` (served as v1); it never invents "1".
        if opts.get("version", "") not in ("", "1", "2"):
            raise InvalidRequest(f"invalid KV version {opts['version']!r}; supported versions are 1 and 2")
        return type_, opts
    if opts.get("version"):
        raise InvalidRequest(f"secrets engine {type_!r} does not allow setting a version")
    return type_, opts or None


def _ttl(value: Any, label: str) -> int:
    """Parse a mount TTL; ``"system"`` and ``""`` mean the system default (stored as 0).

    Raises:
        InvalidRequest: not a duration, in Vault's wording.
    """
    if value in (None, "", "system"):
        return 0
    try:
        return parse_duration(value, label)
    except InvalidRequest:
        raise InvalidRequest(f"unable to parse {label} of {value}: invalid duration") from None


def _mount_config(config: dict[str, Any]) -> dict[str, Any]:
    """Validate and normalise the ``config`` of a new mount.

    Raises:
        InvalidRequest: unparsable TTLs or a default TTL above the max (or above the system max).
    """
    out: dict[str, Any] = {
        "default_lease_ttl": _ttl(config.get("default_lease_ttl"), "default TTL"),
        "max_lease_ttl": _ttl(config.get("max_lease_ttl"), "max TTL"),
    }
    default, maximum = out["default_lease_ttl"], out["max_lease_ttl"]
    if maximum and default > maximum:
        raise InvalidRequest("given default lease TTL greater than given max lease TTL")
    if not maximum and default > DEFAULT_LEASE_TTL:
        raise InvalidRequest(
            f"given default lease TTL greater than system max lease TTL of {DEFAULT_LEASE_TTL}"
        )
    if config.get("force_no_cache") is not None:
        out["force_no_cache"] = bool(config["force_no_cache"])
    for key in (
        "audit_non_hmac_request_keys",
        "audit_non_hmac_response_keys",
        "passthrough_request_headers",
        "allowed_response_headers",
        "listing_visibility",
    ):
        if config.get(key) not in (None, "", []):
            out[key] = config[key]
    if out.get("listing_visibility", "") not in ("", "hidden", "unauth"):
        raise InvalidRequest(f"invalid listing_visibility {out['listing_visibility']}")
    return out


async def enable_mount(ctx: Context, req: Request, f: MountFields) -> None:
    path = normalize_mount_path(f.path)
    if any(path.startswith(r) for r in _RESERVED):
        raise InvalidRequest(f'cannot mount "{path}"')
    type_ = f.type or f.plugin_name
    if not type_:
        raise InvalidRequest("backend type must be specified as a string")
    config = _mount_config(f.config)
    type_, options = _engine_options(type_, f.options)
    if type_ not in SECRET_ENGINE_TYPES:
        raise InvalidRequest(f"plugin not found in the catalog: {type_}")
    table = await load_table(ctx.tx, ctx.keys)
    first = path.split("/", 1)[0]
    if await NamespaceTable(ctx.tx, ctx.keys).get(first) is not None:
        # A mount would shadow the child namespace of that name (docs/spec/namespaces.md section 6).
        raise InvalidRequest(f"path is already in use at {first}/")
    entry = new_entry(
        path,
        type_,
        description=f.description,
        options=options,
        config=config,
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
        raise InvalidRequest(f'cannot unmount "{path}"')
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
    audit_non_hmac_request_keys: list[str] | None = None
    audit_non_hmac_response_keys: list[str] | None = None


def _matching(table: MountTable, path: str) -> MountEntry | None:
    """The mount serving ``path`` (longest prefix, ``auth/`` for auth mounts), as Vault's tune uses."""
    return table.match(path)


async def read_tune(ctx: Context, req: Request, f: TuneFields) -> Response:
    path = normalize_mount_path(f.path)
    entry = _matching(await load_table(ctx.tx, ctx.keys), path)
    if entry is None:
        raise InvalidRequest(f'cannot fetch sysview for path "{path}"')
    data: dict[str, Any] = {
        "default_lease_ttl": int(entry.config.get("default_lease_ttl") or DEFAULT_LEASE_TTL),
        "max_lease_ttl": int(entry.config.get("max_lease_ttl") or DEFAULT_LEASE_TTL),
        "force_no_cache": bool(entry.config.get("force_no_cache", False)),
        "description": entry.description,
    }
    if entry.options:
        data["options"] = entry.options
    return Response(data=data, sys_inject=True)


def _tuned_ttls(entry: MountEntry, f: TuneFields) -> dict[str, Any]:
    """Return the mount config with the requested TTLs applied.

    Raises:
        InvalidRequest: unparsable TTL, or a max below the default (checked only when either changes).
    """
    config = dict(entry.config)
    old = (int(config.get("default_lease_ttl", 0)), int(config.get("max_lease_ttl", 0)))
    new = tuple(
        old[i] if value is None or value == "" else _ttl(value, name)
        for i, (name, value) in enumerate(
            (("default TTL", f.default_lease_ttl), ("max TTL", f.max_lease_ttl))
        )
    )
    if new != old:
        default, maximum = new
        if default and maximum and maximum < default:
            raise InvalidRequest(
                f"backend max lease TTL of {maximum} would be less than backend default lease TTL of {default}"
            )
        config["default_lease_ttl"], config["max_lease_ttl"] = default, maximum
    return config


def _tuned_options(entry: MountEntry, requested: dict[str, Any]) -> tuple[dict[str, str] | None, str | None]:
    """Return the merged options and, for a KV upgrade, the warning Vault answers with.

    Raises:
        InvalidRequest: an invalid or downgrading KV version.
    """
    options = {str(k): "" if v is None else str(v) for k, v in requested.items()}
    warning = None
    if "version" in options:
        current = int(entry.version or 0)
        try:
            wanted = int(options["version"] or 0)
        except ValueError:
            raise InvalidRequest(f"unable to parse options: invalid version {options['version']!r}") from None
        if wanted not in (1, 2):
            raise InvalidRequest(f"invalid version provided: {wanted}")
        if current > wanted:
            raise InvalidRequest(f"cannot downgrade mount from version {current}")
        if current < wanted:
            warning = (
                f"Upgrading mount from version {current} to version {wanted}. This mount will be "
                "unavailable for a brief period and will resume service shortly."
            )
    merged = dict(entry.options or {})
    for key, value in options.items():
        # An empty value removes an option, except version, which can never be removed (no downgrade).
        if value == "" and key != "version":
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged, warning


async def write_tune(ctx: Context, req: Request, f: TuneFields) -> Response | None:
    path = normalize_mount_path(f.path)
    if path.startswith(_UNTUNABLE):
        for name in req.data:
            if name in _TUNE_FIELD_NAMES and name not in _UNTUNABLE_FIELDS:
                raise InvalidRequest(f"cannot tune parameter {name} of {path}")
    table = await load_table(ctx.tx, ctx.keys)
    entry = _matching(table, path)
    if entry is None:
        raise InvalidRequest(f'tune of path "{path}" failed: no mount entry found')
    config = _tuned_ttls(entry, f) if not path.startswith(_UNTUNABLE) else dict(entry.config)
    if f.force_no_cache is not None:
        config["force_no_cache"] = f.force_no_cache
    if f.listing_visibility is not None:
        if f.listing_visibility not in ("", "hidden", "unauth"):
            raise InvalidRequest(f"invalid listing_visibility {f.listing_visibility}")
        config["listing_visibility"] = f.listing_visibility
    for key in ("audit_non_hmac_request_keys", "audit_non_hmac_response_keys"):
        if getattr(f, key) is not None:
            config[key] = getattr(f, key)
    options, warning = (entry.options, None) if not f.options else _tuned_options(entry, f.options)
    updated = dataclasses.replace(
        entry,
        config=config,
        options=options,
        description=f.description if f.description is not None else entry.description,
    )
    if entry.type == "kv" and entry.version != "2" and updated.version == "2":
        # The data moves to the v2 layout in this same transaction: readers see v1 or v2, never a mix.
        await upgrade_v1_to_v2(ctx.keys.records(ctx.tx, "m", entry.uuid), ctx.clock.now())
    store_table(ctx.tx, ctx.keys, table.replaced(updated))
    return Response(warnings=[warning]) if warning else None


_TUNE_FIELD_NAMES = frozenset(f.name for f in dataclasses.fields(TuneFields))


@dataclass(frozen=True)
class UiMountFields:
    path: str = ""


async def read_ui_mount(ctx: Context, req: Request, f: UiMountFields) -> Response:
    # Vault's CLI calls this with any token to learn a mount's KV version; it answers for any mount the
    # token can reach at all, and with the same 403 for unknown mounts (no probing for mount names).
    if not f.path:
        raise InvalidRequest("path not set")
    path = f.path.strip("/") + "/"
    entry = (await load_table(ctx.tx, ctx.keys)).match(path)
    if entry is None or not _visible(ctx, entry):
        raise PermissionDenied(
            "preflight capability check returned 403, please ensure client's policies grant access "
            f'to path "{path}"'
        )
    view = _mount_view(entry)
    view["path"] = entry.path
    return Response(data=view)


def _visible(ctx: Context, entry: MountEntry) -> bool:
    """Vault's rule: a mount is listed when its listing visibility is ``unauth`` or the caller can reach
    something inside it (an anonymous caller has a deny-all ACL)."""
    if entry.config.get("listing_visibility") == "unauth":
        return True
    full = entry.path if entry.kind == "secret" else "auth/" + entry.path
    return ctx.caller is not None and ctx.acl.has_access_under(full)


async def list_ui_mounts(ctx: Context, req: Request, f: NoFields) -> Response:
    table = await load_table(ctx.tx, ctx.keys)
    secret = {e.path: _mount_view(e) for e in table.by_kind("secret") if _visible(ctx, e)}
    auth = {e.path: _mount_view(e) for e in table.by_kind("auth") if _visible(ctx, e)}
    return Response(data={"secret": secret, "auth": auth})


ROUTES: list[SysRoute] = [
    Route("mounts", NoFields, {Operation.READ: list_mounts}),
    Route(
        "mounts/{path:*}",
        MountFields,
        {Operation.UPDATE: enable_mount, Operation.READ: read_mount, Operation.DELETE: disable_mount},
    ),
    Route("mounts/{path:*}/tune", TuneFields, {Operation.READ: read_tune, Operation.UPDATE: write_tune}),
    # Unauthenticated in Vault too: the UI and CLIs discover mounts (and KV versions) through them; each
    # handler shows only what the caller may see.
    Route("internal/ui/mounts", NoFields, {Operation.READ: list_ui_mounts},
          self_authorizing=True, unauthenticated=True),
    Route("internal/ui/mounts/{path:*}", UiMountFields, {Operation.READ: read_ui_mount},
          self_authorizing=True, unauthenticated=True),
]
