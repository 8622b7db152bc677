"""``auth/token/revoke``, ``revoke-self``, ``revoke-accessor``, ``revoke-orphan`` and ``tidy``.

Revocation removes the token and its whole subtree in the request's transaction (records, accessor
indexes, child links); revoking a token that is not live is a 204 no-op, as in Vault. ``revoke-orphan``
(root or sudo on its path) revokes only the token and turns its direct children into orphans.

``tidy`` removes expired tokens and dangling index entries synchronously (lookups never depend on it) and
answers 202 with a warning, the status Vault's asynchronous tidy returns.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from strongroom.engines.context import Context
from strongroom.engines.fields import NoFields
from strongroom.engines.framework import Operation, Request, Response, Route
from strongroom.engines.sys import iam_auth
from strongroom.engines.token.common import caller, envelope_with_status, has_sudo
from strongroom.errors import InvalidRequest

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RevokeFields:
    """``token`` (revoke, revoke-orphan) or ``accessor`` (revoke-accessor)."""

    token: str = ""
    accessor: str = ""


async def revoke(ctx: Context, req: Request, f: RevokeFields) -> None:
    """Revoke a token and all its descendants; an unknown token is a no-op.

    Raises:
        InvalidRequest: no ``token`` given (``missing token ID``).
    """
    if not f.token:
        raise InvalidRequest("missing token ID")
    store = ctx.tokens()
    entry = await store.lookup(f.token)
    if entry is not None:
        await store.revoke(entry)


async def revoke_self(ctx: Context, req: Request, f: NoFields) -> None:
    """Revoke the calling token and all its descendants (a biscuit: its last revocation id)."""
    if await iam_auth.revoke_self(ctx):
        return
    await ctx.tokens().revoke(caller(ctx))


async def revoke_accessor(ctx: Context, req: Request, f: RevokeFields) -> Response | None:
    """Revoke the token with this accessor (and its descendants); 200 with a warning if there is none.

    Raises:
        InvalidRequest: no ``accessor`` given.
    """
    if not f.accessor:
        raise InvalidRequest("missing accessor")
    store = ctx.tokens()
    entry = await store.lookup_accessor(f.accessor)
    if entry is None:
        return Response(warnings=["No token found with this accessor"])
    await store.revoke(entry)
    return None


async def revoke_orphan(ctx: Context, req: Request, f: RevokeFields) -> None:
    """Revoke a token and make its direct children orphans.

    Raises:
        InvalidRequest: no token given, the caller lacks root/sudo on the path, or the token is unknown.
    """
    if not f.token:
        raise InvalidRequest("missing token ID")
    if not has_sudo(ctx, req):
        raise InvalidRequest("root or sudo privileges required to revoke and orphan")
    store = ctx.tokens()
    entry = await store.lookup(f.token)
    if entry is None:
        raise InvalidRequest("token to revoke not found")
    await store.revoke(entry, orphan_children=True)


async def tidy(ctx: Context, req: Request, f: NoFields) -> Response:
    """Remove expired tokens and dangling indexes now; 202 with a warning, as Vault answers."""
    removed = await ctx.tokens().tidy()
    log.info("token tidy removed %d expired or invalid token records", removed)
    return envelope_with_status(
        ctx, 202, [f"Tidy operation completed: removed {removed} expired or invalid token records."]
    )


ROUTES: list[Route[Context, Any]] = [
    Route("revoke", RevokeFields, {Operation.UPDATE: revoke}, summary="Revoke a token and its children."),
    Route("revoke-self", NoFields, {Operation.UPDATE: revoke_self}, summary="Revoke the calling token."),
    Route(
        "revoke-accessor",
        RevokeFields,
        {Operation.UPDATE: revoke_accessor},
        summary="Revoke a token by accessor.",
    ),
    Route(
        "revoke-orphan",
        RevokeFields,
        {Operation.UPDATE: revoke_orphan},
        summary="Revoke a token, orphan its children.",
    ),
    Route("tidy", NoFields, {Operation.UPDATE: tidy}, summary="Clean up expired tokens and indexes."),
]
