"""KV v2 ``data/:path``: read a version, write a new version, merge-patch, soft-delete the latest.

Responses match Vault's: a write or patch answers 200 with the new version's metadata; reading a
deleted or destroyed version answers 404 with the full envelope and ``{"data": null, "metadata": ...}``;
a secret or version that does not exist is a plain 404.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from strongroom.barrier.records import Records
from strongroom.engines.context import Context
from strongroom.engines.framework import Operation, Request, Response, Route
from strongroom.engines.kv.common import merge_patch, no_trailing_slash, status_response
from strongroom.engines.kv.v2.model import META_KEY, Config, KeyMeta, Secrets, check_cas, deletion_time
from strongroom.errors import InvalidRequest


@dataclass(frozen=True)
class DataFields:
    """Fields of ``data/:path``; ``data`` and ``options`` must be JSON objects when given."""

    path: str = ""
    version: int = 0
    data: dict[str, Any] | None = None
    options: dict[str, Any] | None = None


def _names_secret(path: str) -> bool:
    return path != "" and not path.endswith("/")


async def exists(ctx: Context, req: Request, f: DataFields) -> bool:
    """Existence check: the secret has metadata (a write to it is an ``update``, else a ``create``)."""
    if not _names_secret(f.path):
        return False
    return await Secrets(ctx).entry(f.path).exists(*META_KEY)


async def append_version(
    ctx: Context, secrets: Secrets, path: str, entry: Records, meta: KeyMeta | None, config: Config, data: Any
) -> Response:
    """Store ``data`` as the next version of the secret (creating it if ``meta`` is ``None``).

    Prunes versions beyond the kept window in the same transaction and returns the new version's
    metadata as Vault's write response.
    """
    now = ctx.clock.now()
    new = meta is None
    if meta is None:
        meta = KeyMeta(created=now, updated=now)
    purged = meta.add_version(now, deletion_time(now, config, meta), config.max_versions)
    secrets.put_version(entry, meta.current_version, data)
    for number in purged:
        secrets.clear_version(entry, number)
    await secrets.save_meta(path, entry, meta, new=new)
    return Response(data=meta.version_response(meta.current_version, meta.versions[meta.current_version]))


async def read(ctx: Context, req: Request, f: DataFields) -> Response | None:
    """Return a version's data and metadata (``?version=N``; the current one by default).

    Raises:
        InvalidRequest: the path has an empty or dot component, or ``version`` is not an integer.
        CorruptRecord: stored records are damaged.
    """
    if not _names_secret(f.path):
        return None
    secrets = Secrets(ctx)
    found = await secrets.version(f.path, f.version)
    if found is None:
        return None
    entry, meta, number, vm = found
    body: dict[str, Any] = {"data": None, "metadata": meta.version_response(number, vm)}
    if vm.destroyed or vm.deleted(ctx.clock.now()):
        return status_response(ctx, 404, body)
    body["data"] = await secrets.version_data(entry, number)
    return Response(data=body)


async def write(ctx: Context, req: Request, f: DataFields) -> Response:
    """Write a new version from ``data``, honouring ``options.cas`` and ``cas_required``.

    Raises:
        InvalidRequest: no ``data``, a path ending in ``/``, a bad ``cas``, or ``cas`` required.
        CheckAndSetMismatch: ``cas`` is not the current version.
    """
    no_trailing_slash(f.path)
    if not f.path:
        raise InvalidRequest("missing path")
    if "data" not in req.data:
        raise InvalidRequest("no data provided")
    secrets = Secrets(ctx)
    config = await secrets.config()
    entry = secrets.entry(f.path)
    meta = await secrets.meta(entry)
    check_cas(f.options, config, meta)
    # An explicit JSON null is stored as such, as Vault does (a later read returns "data": null).
    return await append_version(ctx, secrets, f.path, entry, meta, config, f.data)


async def patch(ctx: Context, req: Request, f: DataFields) -> Response:
    """Merge-patch (RFC 7396) the current version's data into a new version.

    The current version must exist and be neither deleted nor destroyed: a missing secret is a 404
    without body, a deleted or destroyed one a 404 carrying the current version's metadata.

    Raises:
        InvalidRequest: no ``data``, a bad ``cas``, or ``cas`` required.
        CheckAndSetMismatch: ``cas`` is not the current version.
    """
    no_trailing_slash(f.path)
    if f.data is None:
        raise InvalidRequest("no data provided")
    if not f.path:
        return Response.raw(None, 404)
    secrets = Secrets(ctx)
    entry = secrets.entry(f.path)
    meta = await secrets.meta(entry)
    if meta is None:
        return Response.raw(None, 404)
    config = await secrets.config()
    check_cas(f.options, config, meta)
    vm = meta.versions.get(meta.current_version)
    if vm is None:
        return Response.raw(None, 404)
    if vm.destroyed or vm.deleted(ctx.clock.now()):
        return status_response(ctx, 404, meta.version_response(meta.current_version, vm))
    current = await secrets.version_data(entry, meta.current_version)
    patched = merge_patch(current, f.data)
    return await append_version(ctx, secrets, f.path, entry, meta, config, patched)


async def delete(ctx: Context, req: Request, f: DataFields) -> None:
    """Soft-delete the current version (204 whether or not there was anything to delete).

    Raises:
        InvalidRequest: the path has an empty or dot component.
    """
    if not _names_secret(f.path):
        return
    secrets = Secrets(ctx)
    entry = secrets.entry(f.path)
    meta = await secrets.meta(entry)
    if meta is None:
        return
    vm = meta.versions.get(meta.current_version)
    now = ctx.clock.now()
    if vm is None or vm.destroyed or vm.deleted(now):
        return
    vm.deletion = now
    await secrets.save_meta(f.path, entry, meta, new=False)


ROUTES: list[Route[Context, Any]] = [
    Route(
        "data/{path:*?}",
        DataFields,
        {
            Operation.READ: read,
            Operation.CREATE: write,
            Operation.UPDATE: write,
            Operation.PATCH: patch,
            Operation.DELETE: delete,
        },
        existence=exists,
        summary="Write, patch, read and soft-delete versions of a secret.",
    ),
]
