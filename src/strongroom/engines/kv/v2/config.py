"""KV v2 ``config``: the mount-wide ``max_versions``, ``cas_required`` and ``delete_version_after``.

``delete_version_after`` is signed here, as in Vault: a negative duration disables the feature for every
key (stored and shown as ``-1s``), zero clears it. A write that sets nothing changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from strongroom.engines.context import Context
from strongroom.engines.framework import Operation, Request, Response, Route
from strongroom.engines.kv.common import signed_duration, uint32
from strongroom.engines.kv.v2.invalid import invalid_path
from strongroom.engines.kv.v2.model import DVA_DISABLED, Secrets


@dataclass(frozen=True)
class ConfigFields:
    """Fields of ``config``; ``delete_version_after`` is a signed duration parsed by :func:`~strongroom.engines.kv.common.signed_duration`."""

    max_versions: int | None = None
    cas_required: bool | None = None
    delete_version_after: Any = None


async def read(ctx: Context, req: Request, f: ConfigFields) -> Response:
    """Return the mount configuration (defaults when never written)."""
    return Response(data=(await Secrets(ctx).config()).to_response())


async def write(ctx: Context, req: Request, f: ConfigFields) -> None:
    """Update the given settings (204).

    Raises:
        InvalidRequest: a value of the wrong type or out of range.
    """
    if f.max_versions is None and f.cas_required is None and f.delete_version_after is None:
        return
    dva = None if f.delete_version_after is None else signed_duration(f.delete_version_after, "delete_version_after")
    if f.max_versions is not None:
        uint32(f.max_versions, "max_versions")
    secrets = Secrets(ctx)
    config = await secrets.config()
    if f.max_versions is not None:
        config.max_versions = f.max_versions
    if f.cas_required is not None:
        config.cas_required = f.cas_required
    if dva is not None:
        config.delete_version_after = DVA_DISABLED if dva < 0 else dva
    secrets.save_config(config)


ROUTES: list[Route[Context, Any]] = [
    Route(
        "config",
        ConfigFields,
        # LIST arrives here without Vault's trailing slash; answer it as Vault answers "config/".
        {Operation.READ: read, Operation.UPDATE: write, Operation.LIST: invalid_path},
        summary="Configure the mount-wide KV v2 settings.",
    ),
]
