"""``sys/auth`` and ``sys/auth/:path``: the auth methods of a namespace.

Only the token method exists in this release (``auth/token/``, always mounted); ``vault auth list`` and
hvac's ``list_auth_methods`` see it. Enabling another method is refused as Vault refuses a plugin it does
not have, and the built-in token method cannot be disabled.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from strongroom.core.mounts import load_table, normalize_mount_path
from strongroom.engines.context import Context
from strongroom.engines.fields import NoFields
from strongroom.engines.framework import Operation, Request, Response, Route
from strongroom.errors import InvalidRequest


def _view(entry: Any) -> dict[str, Any]:
    view: dict[str, Any] = entry.describe()
    view["config"]["token_type"] = "default-service"
    return view


async def list_auth(ctx: Context, req: Request, f: NoFields) -> Response:
    table = await load_table(ctx.tx, ctx.keys)
    return Response(data={e.path: _view(e) for e in table.by_kind("auth")}, sys_inject=True)


@dataclass(frozen=True)
class AuthFields:
    path: str
    type: str = ""


async def read_auth(ctx: Context, req: Request, f: AuthFields) -> Response:
    table = await load_table(ctx.tx, ctx.keys)
    entry = table.find(f.path, "auth")
    if entry is None:
        raise InvalidRequest(f"No auth engine at {normalize_mount_path(f.path)}")
    return Response(data=_view(entry), sys_inject=True)


async def enable_auth(ctx: Context, req: Request, f: AuthFields) -> None:
    path = normalize_mount_path(f.path)
    if path == "token/" or f.type == "token":
        raise InvalidRequest("token credential backend cannot be instantiated")
    raise InvalidRequest(f"plugin not found in the catalog: {f.type or path.rstrip('/')}")


async def disable_auth(ctx: Context, req: Request, f: AuthFields) -> None:
    path = normalize_mount_path(f.path)
    if path == "token/":
        raise InvalidRequest("token credential backend cannot be disabled")
    # Disabling a method that is not mounted is a no-op, as in Vault.


ROUTES: list[Route[Context, Any]] = [
    Route("auth", NoFields, {Operation.READ: list_auth}),
    Route("auth/{path:*}", AuthFields,
          {Operation.READ: read_auth, Operation.UPDATE: enable_auth, Operation.DELETE: disable_auth}, sudo=True),
]
