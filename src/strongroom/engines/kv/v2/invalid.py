"""KV v2 catch-all: paths that are not part of the v2 API answer as Vault does, 404 with a hint.

A v1-style request on a v2 mount (``GET secret/foo``) gets Vault's warning naming the ``vault kv``
sub-command to use instead; an operation on the bare root of an endpoint family (``GET secret/data``)
gets the "non-listing operations" warning. ``LIST secret/metadata`` (no trailing slash) lists the root.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from strongroom.engines.context import Context
from strongroom.engines.framework import Operation, Request, Response, Route
from strongroom.engines.kv.common import PATH_AREA, status_response

_ROOTS = ("metadata", "data", "delete", "undelete", "destroy")
_COMMANDS = {
    Operation.CREATE: "put",
    Operation.UPDATE: "put",
    Operation.PATCH: "patch",
    Operation.READ: "get",
    Operation.LIST: "list",
    Operation.DELETE: "delete",
}


@dataclass(frozen=True)
class AnyPath:
    """The whole relative path."""

    path: str = ""


async def invalid_path(ctx: Context, req: Request, f: Any) -> Response:
    """Answer 404 with Vault's hint for a path the v2 API does not have."""
    if req.path in _ROOTS:
        if req.path == "metadata" and req.operation is Operation.LIST:
            keys = await ctx.paths(PATH_AREA).list("")
            return Response(data={"keys": keys})
        return status_response(
            ctx, 404, warnings=["Non-listing operations on the root of a K/V v2 mount are not supported."]
        )
    command = _COMMANDS.get(req.operation, "get")
    return status_response(
        ctx,
        404,
        warnings=[
            "Invalid path for a versioned K/V secrets engine. See the API docs for the appropriate API "
            f"endpoints to use. If using the Vault CLI, use 'vault kv {command}' for this operation."
        ],
    )


ROUTES: list[Route[Context, Any]] = [
    Route(
        "{path:*?}",
        AnyPath,
        dict.fromkeys(_COMMANDS, invalid_path),
        summary="Anything else: a 404 explaining the KV v2 API.",
    ),
]
