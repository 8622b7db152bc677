"""KV v2 ``subkeys/:path``: a version's key structure with every leaf value replaced by ``null``.

``depth`` limits the nesting shown (0: unlimited); a map at the limit, an empty map, a list or a scalar
is a leaf. Deleted or destroyed versions answer 404 carrying the version metadata, as data reads do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from strongroom.engines.context import Context
from strongroom.engines.framework import Operation, Request, Response, Route
from strongroom.engines.kv.common import status_response
from strongroom.engines.kv.v2.model import Secrets


@dataclass(frozen=True)
class SubkeysFields:
    """Fields of ``subkeys/:path``."""

    path: str = ""
    version: int = 0
    depth: int = 0


def strip_values(data: Any, max_depth: int, depth: int = 1) -> Any:
    """Return ``data`` (a map) with its leaves replaced by ``None`` (Vault's ``removeValues``)."""
    if not isinstance(data, dict):
        return data
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict) and value and (max_depth == 0 or depth + 1 <= max_depth):
            out[key] = strip_values(value, max_depth, depth + 1)
        else:
            out[key] = None
    return out


async def read(ctx: Context, req: Request, f: SubkeysFields) -> Response | None:
    """Return ``{"subkeys": ..., "metadata": ...}`` for a version (the current one by default).

    Raises:
        InvalidRequest: ``version`` or ``depth`` is not an integer, or the path is invalid.
    """
    if not f.path or f.path.endswith("/"):
        return None
    secrets = Secrets(ctx)
    found = await secrets.version(f.path, f.version)
    if found is None:
        return None
    entry, meta, number, vm = found
    body: dict[str, Any] = {"metadata": meta.version_response(number, vm), "subkeys": None}
    if vm.destroyed or vm.deleted(ctx.clock.now()):
        return status_response(ctx, 404, body)
    body["subkeys"] = strip_values(await secrets.version_data(entry, number), f.depth)
    return Response(data=body)


ROUTES: list[Route[Context, Any]] = [
    Route(
        "subkeys/{path:*?}",
        SubkeysFields,
        {Operation.READ: read},
        summary="Read the structure of a secret version without its values.",
    ),
]
