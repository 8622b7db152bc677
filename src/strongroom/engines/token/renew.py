"""``auth/token/renew``, ``renew-self`` and ``renew-accessor``.

Vault's renewal (``ExpirationManager.RenewToken`` with the token store's ``authRenew``): a token that never
expires or was created non-renewable answers 400 ``lease is not renewable``; a periodic token's new TTL is
its period (whatever the increment), bounded only by its explicit max TTL; any other token gets the
increment, else its previous lease TTL, bounded by its creation time plus the smaller of the mount max and
its explicit max TTL. A token created from a role renews with the role's current period and explicit max
TTL. The renewed TTL counts from now; children are not renewed.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from strongroom.auth.tokens import TokenEntry
from strongroom.engines.context import Context
from strongroom.engines.framework import Operation, Request, Response, Route
from strongroom.engines.sys import iam_auth
from strongroom.engines.token.common import auth_response, calculate_ttl, caller, parse_seconds
from strongroom.engines.token.roles import load_role
from strongroom.errors import InvalidRequest


@dataclass(frozen=True)
class RenewFields:
    """``token`` to renew and the requested ``increment`` (a duration, 0 = the previous TTL)."""

    token: str = ""
    accessor: str = ""
    increment: Any = None


def _increment(f: RenewFields) -> int:
    if f.increment is None or f.increment == "":
        return 0
    return max(0, parse_seconds(f.increment, "increment"))


async def renew_entry(ctx: Context, entry: TokenEntry, increment: int, client_token: str) -> Response:
    """Renew ``entry`` and return the auth response (with ``client_token`` as given).

    Raises:
        InvalidRequest: the token is not renewable, its role is gone, or it is past its max TTL.
    """
    if not entry.expire_at or not entry.renewable:
        raise InvalidRequest("lease is not renewable")
    period, explicit_max = entry.period, entry.explicit_max_ttl
    if entry.role:
        role = await load_role(ctx, entry.role)
        if role is None:
            raise InvalidRequest(f'original token role "{entry.role}" could not be found, not renewing')
        period, explicit_max = role.token_period, role.token_explicit_max_ttl
    now = ctx.clock.now()
    ttl, warnings = calculate_ttl(
        ctx,
        now=now,
        start=entry.creation_time,
        increment=increment,
        backend_ttl=entry.lease_ttl,
        period=period,
        explicit_max_ttl=explicit_max,
    )
    renewed = dataclasses.replace(entry, expire_at=now + ttl, lease_ttl=ttl, last_renewal=now)
    ctx.tokens().put(renewed)
    return auth_response(renewed, client_token, ttl, True, warnings)


async def renew(ctx: Context, req: Request, f: RenewFields) -> Response:
    """Renew the token given in ``token``.

    Raises:
        InvalidRequest: ``missing token ID``, ``token not found`` or a renewal failure.
    """
    if not f.token:
        raise InvalidRequest("missing token ID")
    increment = _increment(f)
    entry = await ctx.tokens().lookup(f.token)
    if entry is None:
        raise InvalidRequest("token not found")
    return await renew_entry(ctx, entry, increment, f.token)


async def renew_self(ctx: Context, req: Request, f: RenewFields) -> Response:
    """Renew the calling token (any ``token`` parameter is ignored, as in Vault)."""
    caller(ctx)
    iam_auth.renew_self(ctx)  # a biscuit is not renewable (docs/spec/tokens.md 7)
    return await renew(ctx, req, RenewFields(token=ctx.caller_token, increment=f.increment))


async def renew_accessor(ctx: Context, req: Request, f: RenewFields) -> Response:
    """Renew the token with accessor ``accessor``; the response's ``client_token`` is blank.

    Raises:
        InvalidRequest: ``missing accessor``, ``invalid accessor`` or a renewal failure.
    """
    if not f.accessor:
        raise InvalidRequest("missing accessor")
    increment = _increment(f)
    entry = await ctx.tokens().lookup_accessor(f.accessor)
    if entry is None:
        raise InvalidRequest("invalid accessor")
    return await renew_entry(ctx, entry, increment, "")


ROUTES: list[Route[Context, Any]] = [
    Route("renew", RenewFields, {Operation.UPDATE: renew}, summary="Renew a token."),
    Route("renew-self", RenewFields, {Operation.UPDATE: renew_self}, summary="Renew the calling token."),
    Route(
        "renew-accessor",
        RenewFields,
        {Operation.UPDATE: renew_accessor},
        summary="Renew a token by accessor.",
    ),
]
