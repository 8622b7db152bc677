"""KV v2 ``delete/:path``, ``undelete/:path`` and ``destroy/:path``: act on listed versions.

All three take ``versions`` (a list of integers or a comma-separated string), answer 204, and silently
skip versions that do not exist or are destroyed, as Vault does. ``destroy`` removes the version data for
good (its metadata stays, marked ``destroyed``); delete and undelete only move ``deletion_time``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from strongroom.engines.context import Context
from strongroom.engines.framework import Operation, Request, Route
from strongroom.engines.kv.common import int_list
from strongroom.engines.kv.v2.model import KeyMeta, Secrets, deletion_time
from strongroom.errors import InvalidRequest


@dataclass(frozen=True)
class VersionsFields:
    """``versions`` is parsed by :func:`~strongroom.engines.kv.common.int_list` (Vault's comma-int slice)."""

    path: str = ""
    versions: Any = None


def _versions(f: VersionsFields, missing: str) -> list[int]:
    versions = int_list(f.versions, "versions")
    if not versions:
        raise InvalidRequest(missing)
    return versions


async def _load(ctx: Context, path: str) -> tuple[Secrets, KeyMeta | None]:
    secrets = Secrets(ctx)
    if not path or path.endswith("/"):
        return secrets, None
    return secrets, await secrets.meta(secrets.entry(path))


async def delete_versions(ctx: Context, req: Request, f: VersionsFields) -> None:
    """Soft-delete the listed versions (those not already deleted get ``deletion_time`` = now).

    Raises:
        InvalidRequest: no versions, or a version that is not an integer.
    """
    versions = _versions(f, "No version number provided")
    secrets, meta = await _load(ctx, f.path)
    if meta is None:
        return
    now = ctx.clock.now()
    for number in versions:
        vm = meta.versions.get(number)
        if vm is None or vm.destroyed or vm.deleted(now):
            continue
        vm.deletion = now
    await secrets.save_meta(f.path, secrets.entry(f.path), meta, new=False)


async def undelete_versions(ctx: Context, req: Request, f: VersionsFields) -> None:
    """Restore the listed versions; ``delete_version_after`` restarts from now, as in Vault.

    Raises:
        InvalidRequest: no versions, or a version that is not an integer.
    """
    versions = _versions(f, "No version number provided")
    secrets, meta = await _load(ctx, f.path)
    if meta is None:
        return
    config = await secrets.config()
    now = ctx.clock.now()
    for number in versions:
        vm = meta.versions.get(number)
        if vm is None or vm.destroyed:
            continue
        vm.deletion = deletion_time(now, config, meta)
    await secrets.save_meta(f.path, secrets.entry(f.path), meta, new=False)


async def destroy_versions(ctx: Context, req: Request, f: VersionsFields) -> None:
    """Permanently remove the listed versions' data; their metadata stays with ``destroyed: true``.

    Raises:
        InvalidRequest: no versions, or a version that is not an integer.
    """
    versions = _versions(f, "no version number provided")
    secrets, meta = await _load(ctx, f.path)
    if meta is None:
        return
    entry = secrets.entry(f.path)
    for number in versions:
        vm = meta.versions.get(number)
        if vm is not None:
            vm.destroyed = True
        secrets.clear_version(entry, number)
    await secrets.save_meta(f.path, entry, meta, new=False)


ROUTES: list[Route[Context, Any]] = [
    Route(
        "delete/{path:*?}",
        VersionsFields,
        {Operation.UPDATE: delete_versions},
        summary="Soft-delete versions of a secret.",
    ),
    Route(
        "undelete/{path:*?}",
        VersionsFields,
        {Operation.UPDATE: undelete_versions},
        summary="Restore soft-deleted versions of a secret.",
    ),
    Route(
        "destroy/{path:*?}",
        VersionsFields,
        {Operation.UPDATE: destroy_versions},
        summary="Permanently remove versions of a secret.",
    ),
]
