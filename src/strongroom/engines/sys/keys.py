"""``sys/rotate`` (and OpenBao's ``sys/rotate/keyring``, which ``bao operator rotate`` calls) and
``sys/key-status``. ``sys/seal`` and ``sys/step-down`` live in :mod:`strongroom.engines.sys.seal`
because Vault answers them before its seal check.

Rotation writes the new keyring in the request's transaction and adopts it in memory only after the
commit, so a failed commit can never leave this node encrypting under a term storage does not have.
"""

from __future__ import annotations

from typing import Any

from strongroom.clock import rfc3339
from strongroom.core.namespace import NamespaceKeys
from strongroom.engines.context import Context
from strongroom.engines.fields import NoFields
from strongroom.engines.framework import Operation, Request, Response, Route

SysRoute = Route[Context, Any]


async def rotate(ctx: Context, req: Request, f: NoFields) -> None:
    vault = ctx.node.vault(req.namespace)
    keys = ctx.keys
    rotated = NamespaceKeys.build(keys.ns_id, keys.path, keys.root_key, keys.keyring.rotated(ctx.clock.now()))
    await vault.write_keyring(ctx.tx, rotated)
    ctx.after_commit.append(lambda: vault.install(rotated))


async def key_status(ctx: Context, req: Request, f: NoFields) -> Response:
    term = ctx.keys.keyring.active
    data = {
        "term": term.number,
        "install_time": rfc3339(term.install_time),
        "encryptions": ctx.node.vault(req.namespace).budget.encryptions(ctx.keys),
    }
    return Response(data=data, sys_inject=True)


ROUTES: list[SysRoute] = [
    Route("rotate", NoFields, {Operation.UPDATE: rotate}, sudo=True),
    Route("rotate/keyring", NoFields, {Operation.UPDATE: rotate}, sudo=True),
    Route("key-status", NoFields, {Operation.READ: key_status}),
]
