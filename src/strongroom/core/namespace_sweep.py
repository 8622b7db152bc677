"""Background jobs over every unsealed namespace: the root each tick, then a bounded page of the others.

A job that works per namespace (transit auto-rotation, token expiry cleanup) calls :func:`sweep` once per
tick with a function that does its work in one namespace's :class:`~strongroom.core.vault.Vault`. A sweep:

1. works in the root namespace (the platform), as every tick did before namespaces existed;
2. reads, in one read-only transaction, the job's cursor and the next ``per_tick`` namespaces of the
   platform's registry after it (``("sys", "ns-registry", id)``, :mod:`strongroom.core.namespaces`: every
   namespace, in id order, with its parent and whether it is a tenant), and finds the owner of each one's
   keys by following parents through point reads of the registry: the namespace itself for a tenant, the
   nearest tenant above it or the platform for a plain one;
3. opens each namespace as a request would, with keys from storage: a tenant's from its stored key copy
   (:class:`~strongroom.core.tenant_seal.TenantVault`), a plain one's re-scoped from its owner's
   (:class:`~strongroom.core.namespace_tree.PlainVault`). A namespace whose owner is **sealed** (no key
   copy) is skipped: a job never unseals anything, and nothing of a sealed tenant can be read anyway. So is
   one the job fails in (logged), so that one damaged namespace does not stop the others;
4. stores the cursor (the last id of the page, or the start again after the last page) in a transaction
   that first checks the job's lease (the fence), so a runner whose lease passed on moves nothing.

So one tick costs the root's work plus at most ``per_tick`` namespaces' (default
:data:`NAMESPACES_PER_TICK`), whatever the number of tenants; with N namespaces each one is visited every
ceil(N / per_tick) ticks (10,000 tenants: every 157 ticks, about 2.6 hours at the default 60 s tick). The
cursor is a barrier record of the root namespace, ``("sys", "job-cursor", job)`` = ``{"after": hex id}``;
ids are random, so it reveals no name, and the order says nothing about creation.

Guarantees: the work function must be idempotent and fence its own writes (it gets the fence and keep-alive
of the job); a crash or a lost lease repeats at most the page in flight. Namespaces created after the cursor
passed are visited on the next round; deleted ones drop out of the registry. Vaults opened here are this
sweep's own (never the node's request caches) and are dropped when it returns, keys included.

Cost of reading: one registry page per tick plus, for plain namespaces, one registry point read per level
up to their owner, and per visited namespace its key copy and keyring (what a request into it reads).
Encryptions the work does in a tenant are counted through the sweep's own vault of that tenant, which
reserves a block of the tenant's encryption budget (:mod:`strongroom.core.encryption_budget`) at its first
write: at most one block per visit that writes goes unused, which errs toward an earlier rotation.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import Enum

import orjson

from strongroom.core.jobs import LeaseLost
from strongroom.core.namespace import ROOT_NAMESPACE_ID, NamespaceKeys
from strongroom.core.namespace_tree import NamespaceTree, PlainVault
from strongroom.core.namespaces import REGISTRY, NamespaceEntry
from strongroom.core.node import Node
from strongroom.core.tenant_seal import TenantVault
from strongroom.core.vault import Vault
from strongroom.errors import CorruptRecord, Sealed, StorageError, StrongroomError
from strongroom.storage.base import Transaction, transactional

__all__ = ["CURSORS", "NAMESPACES_PER_TICK", "Visited", "label", "sweep"]

log = logging.getLogger(__name__)

NAMESPACES_PER_TICK = 64
"""Namespaces other than the root that one tick of a job visits at most."""
CURSORS = "job-cursor"
"""Area (in the root namespace's ``sys`` records) of the jobs' cursors, one record per job name."""
MAX_DEPTH = 256
"""Parent links followed to find an owner before the registry is declared damaged (a loop)."""

Work = Callable[[Vault], Awaitable[object]]
Fence = Callable[[Transaction], Awaitable[None]]


def label(ns_id: bytes) -> str:
    """How logs name a namespace: ``root``, or the start of its random id (the job does not know names)."""
    return "root" if ns_id == ROOT_NAMESPACE_ID else "ns " + ns_id.hex()[:12]


@dataclass(frozen=True)
class Visited:
    """What one sweep did, by namespace id (the root is ``b"root"``)."""

    worked: list[bytes]
    """Worked in, the root first."""
    sealed: list[bytes]
    """Skipped: sealed (their tenant's key copy is absent)."""
    failed: list[bytes]
    """Skipped: the work failed there (logged); visited again on the next round."""
    wrapped: bool
    """Whether this page was the last one: the next sweep starts again at the first namespace."""


class _Outcome(Enum):
    WORKED = "worked"
    SEALED = "sealed"
    FAILED = "failed"


@dataclass(frozen=True)
class _Target:
    ns_id: bytes
    owner: bytes
    """The id of the namespace whose keys it uses: itself (a tenant), a tenant above it, or the root."""


def _parse(raw: bytes) -> tuple[bytes, bool]:
    try:
        doc = orjson.loads(raw)
        return bytes.fromhex(doc["parent"]), bool(doc["sealable"])
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise CorruptRecord("malformed namespace registry record") from exc


async def _page(
    tx: Transaction, platform: NamespaceKeys, job: str, per_tick: int
) -> tuple[list[_Target], bytes, bytes | None]:
    """The next ``per_tick`` namespaces after the job's cursor, each with its owner; the cursor read
    (``b""``: the start); and the new cursor (``None``: this was the last page)."""
    cursor = await platform.records(tx, "sys", CURSORS).get_json(job)
    space = platform.space.sub("sys", REGISTRY)
    begin, end = space.range()
    after = bytes.fromhex(cursor["after"]) if isinstance(cursor, dict) and cursor.get("after") else b""
    if after:
        begin = space.key(after) + b"\x00"
    rows = await tx.range(begin, end, limit=per_tick)
    known: dict[bytes, tuple[bytes, bool]] = {}
    page: list[bytes] = []
    for key, value in rows:
        page.append(bytes(space.unpack(key)[0]))
        known[page[-1]] = _parse(platform.barrier.decrypt(key, value))
    targets = []
    for ns_id in page:  # _owner adds the parents it reads to ``known``
        owner = await _owner(tx, platform, ns_id, known)
        if owner is not None:
            targets.append(_Target(ns_id, owner))
    following = bytes(space.unpack(rows[-1][0])[0]) if len(rows) == per_tick else None
    return targets, after, following


async def _owner(
    tx: Transaction, platform: NamespaceKeys, ns_id: bytes, known: dict[bytes, tuple[bytes, bool]]
) -> bytes | None:
    """The namespace whose keys ``ns_id`` uses; ``None`` if a parent was deleted meanwhile."""
    current = ns_id
    for _ in range(MAX_DEPTH):
        if current == ROOT_NAMESPACE_ID:
            return current
        entry = known.get(current)
        if entry is None:
            raw = await platform.records(tx, "sys", REGISTRY).get(current)
            if raw is None:
                return None
            entry = known[current] = _parse(raw)
        parent, sealable = entry
        if sealable:
            return current
        current = parent
    raise CorruptRecord("the namespace registry has a parent loop")


class _Opener:
    """Opens namespaces for one sweep, with vaults of its own (a tenant's shared by its plain children)."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.tree = NamespaceTree(node.root, unseal_expiry=node.settings.unseal_expiry_seconds)
        self.tenants: dict[bytes, TenantVault] = {}

    def vault(self, target: _Target) -> Vault:
        owner: Vault = self.node.root
        if target.owner != ROOT_NAMESPACE_ID:
            tenant = self.tenants.get(target.owner)
            if tenant is None:
                tenant = self.tenants[target.owner] = TenantVault(
                    self.node.root, target.owner, "", unseal_expiry=self.node.settings.unseal_expiry_seconds
                )
            owner = tenant
        if target.ns_id == target.owner:
            return owner
        entry = NamespaceEntry(ns_id=target.ns_id, uuid="", accessor="", path="", sealable=False)
        return PlainVault(self.tree, owner, entry)

    def close(self) -> None:
        """Forget this sweep's copies of the tenants' keys (and the plain namespaces' derived ones)."""
        for tenant in self.tenants.values():
            tenant.seal()
        self.tree.forget_all()


async def sweep(
    node: Node,
    job: str,
    work: Work,
    *,
    fence: Fence | None = None,
    keep_alive: Callable[[], Awaitable[None]] | None = None,
    per_tick: int = NAMESPACES_PER_TICK,
) -> Visited:
    """Run ``work`` in the root namespace, then in the next ``per_tick`` unsealed namespaces after the
    cursor of ``job`` (see the module docstring). Does nothing while the platform is sealed on ``node``.

    Raises:
        LeaseLost: ``fence`` or ``keep_alive`` (or ``work``) found the job's lease gone; the cursor stays.
        Sealed: the platform sealed during the sweep.
        CorruptRecord: the registry or the cursor is damaged.
        StorageError: the store failed (the next sweep repeats this page).
    """
    if node.root.sealed:
        return Visited([], [], [], False)
    outcomes: dict[_Outcome, list[bytes]] = {outcome: [] for outcome in _Outcome}
    outcomes[await _visit(node, node.root, ROOT_NAMESPACE_ID, work)].append(ROOT_NAMESPACE_ID)

    async def read(tx: Transaction) -> tuple[list[_Target], bytes, bytes | None]:
        return await _page(tx, await node.root.current_keys(tx), job, per_tick)

    targets, after, following = await transactional(node.store, read)
    opener = _Opener(node)
    try:
        for target in targets:
            if keep_alive is not None:
                await keep_alive()
            outcomes[await _visit(node, opener.vault(target), target.ns_id, work)].append(target.ns_id)
    finally:
        opener.close()

    async def move(tx: Transaction) -> None:
        if fence is not None:
            await fence(tx)
        platform = await node.root.current_keys(tx)
        platform.records(tx, "sys", CURSORS).put_json((job,), {"after": following.hex() if following else ""})

    if (following or b"") != after:  # all namespaces in one page: the cursor stays at the start, unwritten
        await transactional(node.store, move)
        await node.root.account_encryptions()
    return Visited(
        outcomes[_Outcome.WORKED], outcomes[_Outcome.SEALED], outcomes[_Outcome.FAILED], following is None
    )


async def _visit(node: Node, vault: Vault, ns_id: bytes, work: Work) -> _Outcome:
    """Work in one namespace, unless it is sealed; a failure there is logged, not raised.

    Raises:
        LeaseLost: the job's lease passed on.
        Sealed: the platform itself is sealed.
        StorageError: the store failed (but a damaged record only skips the namespace).
    """
    try:
        # Read the keys as a request would (a tenant's key copy, then its keyring): Sealed if there are none.
        await transactional(node.store, vault.current_keys)
        await work(vault)
    except Sealed:
        if node.root.sealed:
            raise
        log.debug("%s: sealed, skipped", label(ns_id))
        return _Outcome.SEALED
    except LeaseLost:
        raise
    except CorruptRecord as exc:
        log.warning("%s: skipped, damaged record: %s", label(ns_id), exc.message)
        return _Outcome.FAILED
    except StorageError:
        raise
    except StrongroomError as exc:
        log.warning("%s: skipped: %s", label(ns_id), exc.message)
        return _Outcome.FAILED
    return _Outcome.WORKED
