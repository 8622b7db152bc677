"""``GET sys/rotate/status``: the progress of the re-wrap that followed the namespace's last rotation.

An addition to Vault's API (Vault has no re-wrap: its old terms stay for ever), next to ``sys/rotate`` and
OpenBao's ``sys/rotate/keyring``; the same object is also returned as ``rewrap`` inside ``sys/key-status``
(:mod:`strongroom.engines.sys.keys`). Body: ``core/rewrap_state.describe``. The platform and every tenant
answer for their own keyring; a plain namespace has none and answers OpenBao's 400
``namespace is not sealable``, as ``sys/key-status`` does there.
"""

from __future__ import annotations

from typing import Any

from strongroom.core.namespace_tree import NOT_SEALABLE, PlainVault
from strongroom.engines.context import Context
from strongroom.engines.fields import NoFields
from strongroom.engines.framework import Operation, Request, Response, Route
from strongroom.engines.sys.keys import rewrap_status
from strongroom.errors import InvalidRequest


async def status(ctx: Context, req: Request, f: NoFields) -> Response:
    if isinstance(ctx.node.vault(req.namespace), PlainVault):
        raise InvalidRequest(NOT_SEALABLE)
    return Response(data=await rewrap_status(ctx))


ROUTES: list[Route[Context, Any]] = [
    Route("rotate/status", NoFields, {Operation.READ: status}, summary="progress of the re-wrap after sys/rotate"),
]
