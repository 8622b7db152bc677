"""``sys/storage/raft/snapshot`` (GET: save, POST/PUT: restore) and ``sys/storage/raft/snapshot-force``.

Vault's paths and verbs, so Vault tooling (``vault operator raft snapshot save|restore``, hvac's
``sys.take_raft_snapshot``/``restore_raft_snapshot``) drives them. Both are root-protected (``sudo``),
answered only in the root namespace, and both do their storage work *after* the request's own
transaction committed: the handler authorises and captures what it needs (the root keyring's KEK, the
cluster id), then returns a streamed raw body that the API layer runs (``strongroom.core.snapshot``).
A restore therefore never runs inside a transaction that could be retried.

The restore body is the snapshot file itself, not JSON: the API layer hands it over unread as the
``snapshot`` field (an async iterator of bytes), as Vault's HTTP layer does for these two paths.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from strongroom.core import snapshot
from strongroom.engines.context import Context
from strongroom.engines.framework import Operation, Request, Response, Route
from strongroom.errors import InvalidRequest, UnsupportedPath

SysRoute = Route[Context, Any]


@dataclass(frozen=True)
class RestoreFields:
    """``snapshot``: the request body as the API layer passes it (never JSON)."""

    snapshot: Any = None


def _root_only(req: Request) -> None:
    # The snapshot covers every namespace's records: only the platform may take or restore one.
    if req.namespace.strip("/"):
        raise UnsupportedPath()


async def save(ctx: Context, req: Request, f: RestoreFields) -> Response:
    _root_only(req)
    stream = snapshot.save_stream(ctx.node.store, ctx.keys.keyring.kek, now=ctx.clock.now())
    return Response.raw(stream, 200)


async def _restore(ctx: Context, req: Request, f: RestoreFields, *, force: bool) -> Response:
    _root_only(req)
    body = f.snapshot
    if not isinstance(body, AsyncIterator):
        raise InvalidRequest("the request body must be a snapshot file")
    vault = ctx.node.vault(req.namespace)

    async def seal() -> None:
        # Every worker of this node forgets the keys now (as sys/seal); other nodes seal themselves at their
        # next request, when they find no keyring (the restore clears the store first, writes keyrings last).
        await vault.seal_node()

    stream = snapshot.restore_stream(
        ctx.node.store,
        body,
        kek=ctx.keys.keyring.kek,
        cluster_id=await snapshot.current_cluster_id(ctx.tx),
        force=force,
        seal=seal,
    )
    return Response.raw(stream, 204)


async def restore(ctx: Context, req: Request, f: RestoreFields) -> Response:
    return await _restore(ctx, req, f, force=False)


async def restore_force(ctx: Context, req: Request, f: RestoreFields) -> Response:
    return await _restore(ctx, req, f, force=True)


ROUTES: list[SysRoute] = [
    Route(
        "storage/raft/snapshot",
        RestoreFields,
        {Operation.READ: save, Operation.UPDATE: restore},
        sudo=True,
        summary="take (GET) or restore (POST) a snapshot of the whole store",
    ),
    Route(
        "storage/raft/snapshot-force",
        RestoreFields,
        {Operation.UPDATE: restore_force},
        sudo=True,
        summary="restore a snapshot of another cluster",
    ),
]
