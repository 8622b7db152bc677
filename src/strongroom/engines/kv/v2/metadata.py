"""KV v2 ``metadata/:path``: read, write, merge-patch and delete a secret's metadata; list secrets.

A metadata write creates the secret's metadata (with no versions) if needed, so a path can be configured
before its first data write. ``DELETE`` removes the metadata and every version for good. ``LIST`` shows
every secret that has metadata, including secrets whose versions are all deleted, as Vault does.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from strongroom.engines.context import Context
from strongroom.engines.framework import Operation, Request, Response, Route
from strongroom.engines.kv.common import merge_patch, no_trailing_slash, signed_duration, uint32
from strongroom.engines.kv.v2.model import META_KEY, KeyMeta, Secrets
from strongroom.errors import InvalidRequest

MAX_CUSTOM_KEYS = 64
MAX_CUSTOM_KEY_LENGTH = 128
MAX_CUSTOM_VALUE_LENGTH = 512
_PREFIX = "custom_metadata validation failed"
_SETTINGS = ("max_versions", "cas_required", "delete_version_after", "custom_metadata")
_CAS_WARNING = '"cas_required" set to false, but is mandated by backend config. This value will be ignored.'


@dataclass(frozen=True)
class MetadataFields:
    """Fields of ``metadata/:path``; ``delete_version_after`` is checked by :func:`_dva`."""

    path: str = ""
    max_versions: int | None = None
    cas_required: bool | None = None
    delete_version_after: Any = None
    custom_metadata: dict[str, Any] | None = None


def _dva(value: Any) -> int:
    seconds = signed_duration(value, "delete_version_after")
    if seconds < 0:
        raise InvalidRequest(
            f"error converting input for field \"delete_version_after\": cannot provide negative value '{seconds}'"
        )
    return seconds


def _as_string(value: Any) -> str:
    """Vault's weak decoding of one custom_metadata value to a string."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int | float):
        return str(value)
    go_type = "map[string]interface {}" if isinstance(value, dict) else "[]interface {}"
    raise InvalidRequest(
        f"{_PREFIX}: '' expected type 'string', got unconvertible type '{go_type}'"
    )


def _q(text: str) -> str:
    """Quote like Go's ``%q`` (double quotes, escapes), so messages read exactly as Vault's."""
    return json.dumps(text, ensure_ascii=False)


def _multierror(errors: list[str]) -> str:
    # Vault renders these with go-multierror; keep the text identical for clients that show it.
    if len(errors) == 1:
        return f"1 error occurred:\n\t* {errors[0]}\n\n"
    return f"{len(errors)} errors occurred:\n\t" + "\n\t".join(f"* {e}" for e in errors) + "\n\n"


def custom_metadata(raw: dict[str, Any], *, drop_nulls: bool) -> dict[str, str]:
    """Convert and validate ``custom_metadata`` with Vault's limits and messages.

    At most 64 keys; keys 1..128 and values 1..512 bytes, all printable. With ``drop_nulls`` (patch),
    ``null`` values are left out instead of failing as empty strings.

    Raises:
        InvalidRequest: a limit is exceeded or a value is not a scalar.
    """
    out = {str(k): _as_string(v) for k, v in raw.items() if not (drop_nulls and v is None)}
    if len(out) > MAX_CUSTOM_KEYS:
        raise InvalidRequest(
            _multierror([f"{_PREFIX}: payload must contain at most {MAX_CUSTOM_KEYS} keys, provided {len(out)}"])
        )
    errors = []
    for key, value in out.items():
        klen, vlen = len(key.encode()), len(value.encode())
        if klen == 0 or klen > MAX_CUSTOM_KEY_LENGTH:
            errors.append(
                f"{_PREFIX}: length of key {_q(key)} is {klen} but must be 0 < len(key) <= {MAX_CUSTOM_KEY_LENGTH}"
            )
        if vlen == 0 or vlen > MAX_CUSTOM_VALUE_LENGTH:
            errors.append(
                f"{_PREFIX}: length of value for key {_q(key)} is {vlen} but must be "
                f"0 < len(value) <= {MAX_CUSTOM_VALUE_LENGTH}"
            )
        if not key.isprintable():
            errors.append(f"{_PREFIX}: key {_q(key)} contains unprintable characters")
        if not value.isprintable():
            errors.append(f"{_PREFIX}: value for key {_q(key)} contains unprintable characters")
    if errors:
        raise InvalidRequest(_multierror(errors))
    return out


async def exists(ctx: Context, req: Request, f: MetadataFields) -> bool:
    """Existence check: the secret has metadata."""
    if not f.path or f.path.endswith("/"):
        return False
    return await Secrets(ctx).entry(f.path).exists(*META_KEY)


async def read(ctx: Context, req: Request, f: MetadataFields) -> Response | None:
    """Return the secret's metadata and per-version metadata, or ``None`` (404)."""
    if not f.path or f.path.endswith("/"):
        return None
    secrets = Secrets(ctx)
    meta = await secrets.meta(secrets.entry(f.path))
    return None if meta is None else Response(data=meta.to_response())


async def write(ctx: Context, req: Request, f: MetadataFields) -> Response | None:
    """Set the given settings, creating the metadata if needed (204; 200 with a warning when the mount
    already mandates ``cas_required`` and the request sets it false). Nothing given: nothing changes.

    Raises:
        InvalidRequest: a bad value, a path ending in ``/``, or invalid ``custom_metadata``.
    """
    no_trailing_slash(f.path)
    if not f.path:
        raise InvalidRequest("missing path")
    if all(req.data.get(k) is None for k in _SETTINGS):
        return None
    dva = None if f.delete_version_after is None else _dva(f.delete_version_after)
    max_versions = None if f.max_versions is None else uint32(f.max_versions, "max_versions")
    custom = None if f.custom_metadata is None else custom_metadata(f.custom_metadata, drop_nulls=False)
    secrets = Secrets(ctx)
    config = await secrets.config()
    warnings = [_CAS_WARNING] if f.cas_required is False and config.cas_required else []
    entry = secrets.entry(f.path)
    meta = await secrets.meta(entry)
    new = meta is None
    if meta is None:
        now = ctx.clock.now()
        meta = KeyMeta(created=now, updated=now)
    if max_versions is not None:
        meta.max_versions = max_versions
    if f.cas_required is not None:
        meta.cas_required = f.cas_required
    if dva is not None:
        meta.delete_version_after = dva
    if custom is not None:
        meta.custom_metadata = custom
    await secrets.save_meta(f.path, entry, meta, new=new)
    return Response(warnings=warnings) if warnings else None


async def patch(ctx: Context, req: Request, f: MetadataFields) -> Response | None:
    """Merge-patch the settings of an existing secret: a ``null`` resets a setting to its default and
    ``custom_metadata`` merges key by key (a ``null`` value removes that key).

    Raises:
        InvalidRequest: a bad value or invalid ``custom_metadata``.
    """
    no_trailing_slash(f.path)
    if not f.path:
        raise InvalidRequest("missing path")
    if f.custom_metadata is not None:
        custom_metadata(f.custom_metadata, drop_nulls=True)
    dva = None if f.delete_version_after is None else _dva(f.delete_version_after)
    max_versions = None if f.max_versions is None else uint32(f.max_versions, "max_versions")
    secrets = Secrets(ctx)
    entry = secrets.entry(f.path)
    meta = await secrets.meta(entry)
    if meta is None:
        return Response.raw(None, 404)
    config = await secrets.config()
    warnings = [_CAS_WARNING] if f.cas_required is False and config.cas_required else []
    given = req.data
    if "max_versions" in given:
        meta.max_versions = max_versions or 0
    if "cas_required" in given:
        meta.cas_required = bool(f.cas_required)
    if "delete_version_after" in given:
        meta.delete_version_after = dva or 0
    if "custom_metadata" in given:
        if f.custom_metadata is None:
            meta.custom_metadata = None
        else:
            merged = merge_patch(meta.custom_metadata or {}, f.custom_metadata)
            meta.custom_metadata = custom_metadata(merged, drop_nulls=True) or None
    await secrets.save_meta(f.path, entry, meta, new=False)
    return Response(warnings=warnings) if warnings else None


async def delete(ctx: Context, req: Request, f: MetadataFields) -> None:
    """Delete the secret: metadata and every version, for good (204 even when absent)."""
    if not f.path or f.path.endswith("/"):
        return
    secrets = Secrets(ctx)
    entry = secrets.entry(f.path)
    if await entry.exists(*META_KEY):
        await secrets.remove(f.path, entry)


async def list_keys(ctx: Context, req: Request, f: MetadataFields) -> Response:
    """List the secrets and directories under a directory (``""`` is the root); none is a 404.

    Raises:
        InvalidRequest: the path has an empty or dot component.
    """
    return Response(data={"keys": await Secrets(ctx).index.list(f.path)})


ROUTES: list[Route[Context, Any]] = [
    Route(
        "metadata/{path:*?}",
        MetadataFields,
        {
            Operation.READ: read,
            Operation.CREATE: write,
            Operation.UPDATE: write,
            Operation.PATCH: patch,
            Operation.DELETE: delete,
            Operation.LIST: list_keys,
        },
        existence=exists,
        summary="Read, configure, patch and delete a secret's metadata; list secrets.",
    ),
]
