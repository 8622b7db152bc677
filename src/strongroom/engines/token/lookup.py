"""``auth/token/lookup``, ``lookup-self``, ``lookup-accessor`` and the ``accessors`` LIST.

As in Vault: ``lookup`` reads the token in the body (POST) or the query (GET) and falls back to the caller's
own token when none is given; an invalid token is a 403 ``bad token``; an accessor lookup shows ``id`` as
``""``; ``accessors`` is root-protected (sudo) and lists the accessors of live tokens.

When the caller looks itself up, ``num_uses`` is shown after this request's use is counted (``-1`` on the
last use), because Vault counts the use before the handler runs and shows the stored value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from strongroom.auth.tokens import USES_EXHAUSTED, TokenEntry
from strongroom.engines.context import Context
from strongroom.engines.fields import NoFields
from strongroom.engines.framework import Operation, Request, Response, Route
from strongroom.engines.sys import iam_auth
from strongroom.errors import InvalidRequest, PermissionDenied


@dataclass(frozen=True)
class LookupFields:
    """``token``: the token to look up (defaults to the caller's own)."""

    token: str = ""


@dataclass(frozen=True)
class AccessorFields:
    """``accessor``: the accessor of the token to act on."""

    accessor: str = ""


def describe(ctx: Context, entry: TokenEntry, token_id: str) -> dict[str, Any]:
    """Lookup data of ``entry``, with the caller's own use count shown as Vault shows it."""
    data = entry.lookup_data(token_id, ctx.clock.now())
    if ctx.caller is not None and entry.token_hash == ctx.caller.token_hash and entry.num_uses > 0:
        data["num_uses"] = entry.num_uses - 1 if entry.num_uses > 1 else USES_EXHAUSTED
    return data


async def lookup(ctx: Context, req: Request, f: LookupFields) -> Response:
    """Look up a token by its text.

    Raises:
        InvalidRequest: no token given and none presented (``missing token ID``).
        PermissionDenied: the token is not live (``bad token``).
    """
    token = f.token or ctx.caller_token
    if not token:
        raise InvalidRequest("missing token ID")
    entry = await ctx.tokens().lookup(token)
    if entry is None:
        raise PermissionDenied("bad token")
    return Response(data=describe(ctx, entry, token))


async def lookup_self(ctx: Context, req: Request, f: LookupFields) -> Response:
    """Look up the calling token (any ``token`` parameter is ignored, as in Vault).

    The router already authenticated the caller in this transaction, so its entry is used as is.
    """
    if ctx.caller is None:
        raise PermissionDenied("bad token")
    biscuit = iam_auth.lookup_self(ctx)  # a biscuit answers from its own facts (docs/spec/tokens.md 7)
    if biscuit is not None:
        return biscuit
    return Response(data=describe(ctx, ctx.caller, ctx.caller_token))


async def lookup_accessor(ctx: Context, req: Request, f: AccessorFields) -> Response:
    """Look up a token by accessor; ``id`` is blanked.

    Raises:
        InvalidRequest: ``missing accessor`` or ``invalid accessor``.
    """
    if not f.accessor:
        raise InvalidRequest("missing accessor")
    entry = await ctx.tokens().lookup_accessor(f.accessor)
    if entry is None:
        raise InvalidRequest("invalid accessor")
    return Response(data=describe(ctx, entry, ""))


async def list_accessors(ctx: Context, req: Request, f: NoFields) -> Response:
    """LIST the accessors of every live token (root-protected)."""
    return Response(data={"keys": sorted(await ctx.tokens().live_accessors())})


ROUTES: list[Route[Context, Any]] = [
    Route(
        "lookup", LookupFields, {Operation.READ: lookup, Operation.UPDATE: lookup}, summary="Look up a token."
    ),
    Route(
        "lookup-self",
        LookupFields,
        {Operation.READ: lookup_self, Operation.UPDATE: lookup_self},
        summary="Look up the calling token.",
    ),
    Route(
        "lookup-accessor",
        AccessorFields,
        {Operation.UPDATE: lookup_accessor},
        summary="Look up a token by accessor.",
    ),
    Route(
        "accessors", NoFields, {Operation.LIST: list_accessors}, sudo=True, summary="List token accessors."
    ),
    Route(
        "accessors/", NoFields, {Operation.LIST: list_accessors}, sudo=True, summary="List token accessors."
    ),
]
