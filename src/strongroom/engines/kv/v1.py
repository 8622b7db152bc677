"""KV version 1: Vault's non-versioned pass-through key/value store.

Every path under the mount holds one JSON object, replaced whole by each write. Paths go through the
mount's blind :class:`~strongroom.barrier.paths.PathIndex` (area ``"k"``), so no secret name reaches a
physical key; the object is the entry's ``("data",)`` record, encrypted by the barrier.

Behaviour follows Vault's ``PassthroughBackend``: a read reports ``lease_duration`` from the stored
``ttl`` (or ``lease``) key when it parses as a duration, else the mount's default lease TTL (32 days by
default); a write with no fields is refused with ``missing data fields``; listing shows children sorted,
directories with a trailing ``/``; an empty or missing directory lists as 404.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from strongroom.barrier.paths import PathIndex
from strongroom.core.mounts import DEFAULT_LEASE_TTL
from strongroom.engines.context import Context
from strongroom.engines.fields import parse_duration
from strongroom.engines.framework import Operation, Request, Response, Route
from strongroom.engines.kv.common import MAX_DURATION_SECONDS, PATH_AREA, no_trailing_slash
from strongroom.errors import CorruptRecord, InvalidRequest

DATA_KEY = ("data",)
"""Record of an entry holding the secret's JSON object."""


@dataclass(frozen=True)
class PathFields:
    """Only the captured path: a v1 secret's fields are its data, read from the raw request."""

    path: str = ""


def _index(ctx: Context) -> PathIndex:
    # The same index as ctx.paths(PATH_AREA), through the namespace's cache of packed area prefixes.
    return ctx.keys.paths(ctx.tx, "m", ctx.mount.uuid, PATH_AREA)


def _is_entry_path(path: str) -> bool:
    # "" and "dir/" name no secret; reading them is a plain 404 as in Vault.
    return path != "" and not path.endswith("/")


async def exists(ctx: Context, req: Request, f: PathFields) -> bool:
    """Existence check: whether a secret is stored at the path (decides ACL create vs update)."""
    if not _is_entry_path(f.path):
        return False
    index = _index(ctx)
    return await index.entry(index.id_of(f.path)).exists(*DATA_KEY)


def lease_seconds(ctx: Context, data: dict[str, Any]) -> int:
    """Return the lease duration a v1 read reports for ``data``.

    The stored ``ttl`` key (or, failing that, ``lease``) wins when it parses as a duration; otherwise the
    mount's default lease TTL, which itself defaults to the system's 32 days.
    """
    name = "ttl" if "ttl" in data else "lease"
    if name in data:
        try:
            seconds = parse_duration(data[name], name)
        except InvalidRequest:
            seconds = None  # Vault ignores an unparsable ttl and falls back to the default.
        # Go cannot represent longer durations either (it falls back to the default too).
        if seconds is not None and abs(seconds) <= MAX_DURATION_SECONDS:
            return seconds
    default = int(ctx.mount.config.get("default_lease_ttl", 0) or 0)
    return default or DEFAULT_LEASE_TTL


async def read(ctx: Context, req: Request, f: PathFields) -> Response | None:
    """Return the stored object, or ``None`` (404) when nothing is stored.

    Raises:
        InvalidRequest: the path has an empty or dot component.
        CorruptRecord: the stored record is not a JSON object.
    """
    if not _is_entry_path(f.path):
        return None
    index = _index(ctx)
    data = await index.entry(index.id_of(f.path)).get_json(*DATA_KEY)
    if data is None:
        return None
    if not isinstance(data, dict):
        raise CorruptRecord("stored KV record is not an object")
    return Response(data=data, lease_duration=lease_seconds(ctx, data))


async def write(ctx: Context, req: Request, f: PathFields) -> None:
    """Replace the object at the path with the request's fields (204).

    Raises:
        InvalidRequest: no fields, a path ending in ``/``, or an invalid path.
    """
    no_trailing_slash(f.path)
    if not f.path:
        raise InvalidRequest("missing path")
    if not req.data:
        raise InvalidRequest("missing data fields")
    index = _index(ctx)
    entry_id = await index.link(f.path)
    index.entry(entry_id).put(DATA_KEY, orjson.dumps(dict(req.data)))


async def delete(ctx: Context, req: Request, f: PathFields) -> None:
    """Delete the object at the path (204 whether or not it existed); empty directories disappear.

    Raises:
        InvalidRequest: the path has an empty or dot component.
    """
    if not _is_entry_path(f.path):
        return
    index = _index(ctx)
    entry = index.entry(index.id_of(f.path))
    if await entry.exists(*DATA_KEY):
        entry.clear(*DATA_KEY)
        await index.unlink(f.path)


async def list_keys(ctx: Context, req: Request, f: PathFields) -> Response:
    """List the children of a directory (``""`` is the mount root); empty lists become 404.

    Raises:
        InvalidRequest: the path has an empty or dot component.
    """
    return Response(data={"keys": await _index(ctx).list(f.path)})


ROUTES: list[Route[Context, Any]] = [
    Route(
        "{path:*?}",
        PathFields,
        {
            Operation.READ: read,
            Operation.CREATE: write,
            Operation.UPDATE: write,
            Operation.DELETE: delete,
            Operation.LIST: list_keys,
        },
        existence=exists,
        summary="Read, write, delete and list KV v1 secrets.",
    ),
]
