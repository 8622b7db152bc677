"""Token expiry cleanup: a background job that removes dead token records in bounded batches.

A token is dead when :meth:`TokenStore.get_by_hash` no longer returns it although its record is stored:
it expired, or an ancestor expired or was revoked. Lookups never depend on this job (expiry is enforced at
lookup, :mod:`strongroom.auth.tokens`); it only reclaims the space, as Vault's token tidy does, and it
removes exactly what ``auth/token/tidy`` removes, without reading every token in one transaction.

How one run goes (on the node holding the job's lease, :mod:`strongroom.core.background`):

1. Page through one namespace's ``("tok", "id", hash)`` records in key order, ``PAGE`` records per
   read-only transaction, and pick the dead ones (a token whose expiry passed, or whose parent is not live;
   a parent's liveness is read once per page).
2. Remove them in write transactions of at most ``batch`` tokens. Each such transaction first checks the
   job's lease (the fence: a runner whose lease passed on writes nothing more), then re-reads every
   candidate and removes it only if it is still stored and still dead, with its accessor index, its link
   from its parent and its children's links (:meth:`TokenStore._remove`, the step ``revoke`` takes per
   token). A token renewed meanwhile stays; one removed meanwhile is skipped.

Guarantees: idempotent and safe to run concurrently, twice, or after a crash (every removal re-checks in
its own transaction); never removes a live token; at most ``batch`` tokens per transaction, and ``batch``
is capped by the store's operation limit (etcd counts up to 9 operations per removed token and allows 128
per transaction), halved again if a transaction is still refused as too large. Children of a dead parent
are dead too and are removed when the pass reaches them (their parent link is gone or the parent is
expired), so one pass leaves no dead token behind that was dead when the pass read it.

Which namespaces: every tick cleans the root namespace and the next page of the other namespaces
(:func:`~strongroom.core.namespace_sweep.sweep`: at most
:data:`~strongroom.core.namespace_sweep.NAMESPACES_PER_TICK` per tick, resumed at a cursor stored under the
job's lease), each opened with keys from storage (a tenant's from its stored key copy); sealed tenants are
skipped until they are unsealed. Each namespace's tokens live in its own token store, so the steps above
run per namespace, unchanged.

Cost: per namespace visited, every token record once (in pages) plus each distinct parent once per page:
O(tokens of the visited namespaces) reads per tick on one node of the cluster. An index by expiry time
would make this proportional to the expired tokens only.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import orjson

from strongroom.auth.tokens import TokenEntry, TokenStore
from strongroom.core.background import Job, JobRun
from strongroom.core.job_settings import batch_override
from strongroom.core.namespace_sweep import label, sweep
from strongroom.core.node import Node
from strongroom.core.vault import Vault
from strongroom.errors import CorruptRecord, RecordTooLarge
from strongroom.storage.base import Transaction, transactional

__all__ = ["DEFAULT_BATCH", "JOB", "JOB_NAME", "PAGE", "remove_dead_tokens"]

log = logging.getLogger(__name__)

JOB_NAME = "token-expiry-cleanup"
DEFAULT_BATCH = 64
PAGE = 256
OPS_PER_TOKEN = 10
"""Upper bound of the storage operations one removal costs (etcd: clears write shadow keys, a prefix
clear a tombstone), to keep a batch inside the store's ``max_transaction_ops``."""

Fence = Callable[[Transaction], Awaitable[None]]


def batch_size(node: Node, wanted: int | None = None) -> int:
    """Tokens per write transaction: ``wanted`` (default :data:`DEFAULT_BATCH`), capped by the store."""
    cap = max(1, (node.store.limits.max_transaction_ops - 8) // OPS_PER_TOKEN)
    return max(1, min(wanted or DEFAULT_BATCH, cap))


def _entry(raw: bytes) -> TokenEntry:
    try:
        return TokenEntry.from_json(orjson.loads(raw))
    except orjson.JSONDecodeError:
        raise CorruptRecord("malformed token entry") from None


async def _scan(node: Node, vault: Vault, cursor: bytes | None) -> tuple[list[bytes], bytes | None]:
    """One page from ``cursor``: the hashes of the tokens that look dead, and where the next page starts."""

    async def run(tx: Transaction) -> tuple[list[bytes], bytes | None]:
        keys = await vault.current_keys(tx)
        store = TokenStore(tx, keys, node.clock)
        space = store.records.subspace.sub("id")
        begin, end = space.range()
        rows = await tx.range(cursor or begin, end, limit=PAGE)
        now = node.clock.now()
        parents: dict[bytes, bool] = {}
        dead = []
        for key, value in rows:
            entry = _entry(store.records.barrier.decrypt(key, value))
            if entry.expired(now):
                dead.append(entry.token_hash)
                continue
            parent = entry.parent_hash
            if parent:
                if parent not in parents:
                    parents[parent] = await store.get_by_hash(parent) is not None
                if not parents[parent]:
                    dead.append(entry.token_hash)
        following = rows[-1][0] + b"\x00" if len(rows) == PAGE else None
        return dead, following

    return await transactional(node.store, run)


async def _remove(node: Node, vault: Vault, hashes: list[bytes], fence: Fence | None) -> int:
    """Remove those of ``hashes`` that are still stored and still dead; return how many went."""

    async def run(tx: Transaction) -> int:
        if fence is not None:
            await fence(tx)
        store = TokenStore(tx, await vault.current_keys(tx), node.clock)
        removed = 0
        for token_hash in hashes:
            if await store.records.exists("id", token_hash) and await store.get_by_hash(token_hash) is None:
                # The one-token step of TokenStore.revoke: record, accessor index, parent and child links.
                removed += int(await store._remove(token_hash))
        return removed

    removed = await transactional(node.store, run)
    if removed:
        await vault.account_encryptions()
    return removed


async def remove_dead_tokens(
    node: Node,
    *,
    vault: Vault | None = None,
    batch: int | None = None,
    fence: Fence | None = None,
    keep_alive: Callable[[], Awaitable[None]] | None = None,
    fence_id: int = 0,
) -> int:
    """Run one pass over one namespace's tokens, ``vault``'s (default: the root namespace's; see the module
    docstring); return how many went.

    Does nothing while that namespace is sealed on ``node``.

    Raises:
        LeaseLost: ``fence`` or ``keep_alive`` found the job's lease gone; nothing more is written.
        Sealed: the namespace (or the platform) sealed during the pass.
        CorruptRecord: a token record is damaged.
        StorageError: the store failed (the next run starts the pass again).
    """
    vault = node.root if vault is None else vault
    if vault.sealed:
        return 0
    size = batch_size(node, batch)
    where = label(vault.ns_id)
    total = 0
    cursor: bytes | None = None
    while True:
        dead, cursor = await _scan(node, vault, cursor)
        while dead:
            chunk = dead[:size]
            try:
                removed = await _remove(node, vault, chunk, fence)
            except RecordTooLarge:
                if size == 1:
                    raise
                size = max(1, size // 2)
                continue
            del dead[: len(chunk)]
            total += removed
            if removed:
                log.debug(
                    "token cleanup: removed %d dead tokens (lease fence %d) in %s", removed, fence_id, where
                )
            if keep_alive is not None:
                await keep_alive()
        if cursor is None:
            break
        if keep_alive is not None:
            await keep_alive()
    if total:
        log.info(
            "token cleanup removed %d expired or orphaned tokens (lease fence %d) in %s",
            total,
            fence_id,
            where,
        )
    return total


async def _job(run: JobRun) -> None:
    batch = batch_override()

    async def work(vault: Vault) -> None:
        await remove_dead_tokens(
            run.node,
            vault=vault,
            batch=batch,
            fence=run.check,
            keep_alive=run.keep_alive,
            fence_id=run.lease.fence,
        )

    await sweep(run.node, JOB_NAME, work, fence=run.check, keep_alive=run.keep_alive)


JOB = Job(JOB_NAME, _job)
"""The job to register with the node's :class:`~strongroom.core.background.BackgroundRunner`."""
