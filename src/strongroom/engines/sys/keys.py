"""``sys/rotate`` (and OpenBao's ``sys/rotate/keyring``, which ``bao operator rotate`` calls) and
``sys/key-status``. ``sys/seal`` and ``sys/step-down`` live in :mod:`strongroom.engines.sys.seal`
because Vault answers them before its seal check.

Rotation writes the new keyring in the request's transaction and adopts it in memory only after the
commit, so a failed commit can never leave this node encrypting under a term storage does not have.
"""

from __future__ import annotations

from typing import Any

from strongroom.clock import rfc3339
from strongroom.core import rewrap, rewrap_state
from strongroom.core.namespace import ROOT_NAMESPACE_ID, NamespaceKeys
from strongroom.engines.context import Context
from strongroom.engines.fields import NoFields
from strongroom.engines.framework import Operation, Request, Response, Route

SysRoute = Route[Context, Any]


async def rotate(ctx: Context, req: Request, f: NoFields) -> None:
    vault = ctx.node.vault(req.namespace)
    keys = ctx.keys
    rotated = NamespaceKeys.build(keys.ns_id, keys.path, keys.root_key, keys.keyring.rotated(ctx.clock.now()))
    await vault.write_keyring(ctx.tx, rotated)
    # The re-wrap of every record to the new term starts in the same transaction (core/rewrap.py); on the
    # platform its record is written under the new term already.
    platform = rotated if keys.ns_id == ROOT_NAMESPACE_ID else await _platform(ctx)
    rewrap.start(ctx.tx, platform, keys.ns_id, rotated.keyring.active.number, ctx.clock.now())
    ctx.after_commit.append(lambda: vault.install(rotated))
    ctx.after_commit.append(lambda: rewrap.kick(ctx.node))


async def key_status(ctx: Context, req: Request, f: NoFields) -> Response:
    term = ctx.keys.keyring.active
    data = {
        "term": term.number,
        "install_time": rfc3339(term.install_time),
        "encryptions": ctx.node.vault(req.namespace).budget.encryptions(ctx.keys),
        # An addition to Vault's body (clients ignore unknown fields): the re-wrap after the last rotation.
        "rewrap": await rewrap_status(ctx),
    }
    return Response(data=data, sys_inject=True)


async def _platform(ctx: Context) -> NamespaceKeys:
    """The platform's keys in the request's transaction (they hold every re-wrap's state)."""
    if ctx.keys.ns_id == ROOT_NAMESPACE_ID:
        return ctx.keys
    return await ctx.node.root.current_keys(ctx.tx)


async def rewrap_status(ctx: Context) -> dict[str, Any]:
    """The ``rewrap`` object of the request's keyring owner (``core/rewrap_state.describe``)."""
    state = await rewrap_state.load(ctx.tx, await _platform(ctx), ctx.keys.ns_id)
    return rewrap_state.describe(state, ctx.keys.keyring)


ROUTES: list[SysRoute] = [
    Route("rotate", NoFields, {Operation.UPDATE: rotate}, sudo=True),
    Route("rotate/keyring", NoFields, {Operation.UPDATE: rotate}, sudo=True),
    Route("key-status", NoFields, {Operation.READ: key_status}),
]
