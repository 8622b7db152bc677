"""Re-wrapping after a keyring rotation: every record brought to the active term, then older terms dropped.

``sys/rotate`` (platform or tenant) adds a keyring term and, in the same transaction, (re)starts the
owner's re-wrap (:mod:`strongroom.core.rewrap_state`). The background job ``keyring-rewrap`` (one runner
at a time under its lease, :mod:`strongroom.core.background`) then walks every record the owner's keyring
encrypts, in key order, a bounded page per transaction:

1. **counting**: a read-only pass that counts the records (the progress bar's total);
2. **rewrapping**: each record whose barrier header names an older term is decrypted and encrypted again
   under the active term, at the same physical key, in the transaction that read it: optimistic
   concurrency makes a concurrent change of the record (or of the keyring) conflict, and the retry
   re-reads it, so a record is only ever replaced by the re-encryption of its current value;
3. **verifying**: another pass that must find no record under an older term (it re-wraps any it finds and
   passes again). In the transaction that ends it the older terms are removed from the keyring (a new
   keyring generation, sealed by the owner's root key) and their encryption counters cleared.

Each step's transaction first checks the job's lease (the fence), reads the owner's keyring (so it works
with the keys storage holds now), re-checks the state (a second rotation restarts the walk toward the new
term) and advances the stored cursor with its work: a crash loses at most the step in flight, and whoever
holds the lease next resumes at the cursor. Every step is idempotent (a record already under the active
term is left alone).

**Why dropping older terms is safe** (how nodes agree, without messages): every transaction that encrypts a
barrier record reads the owner's keyring record in that same transaction (``Vault.current_keys``), so once a
rotation committed no transaction can commit a record under an older term: one that read the old keyring
conflicts with the rotation and retries with the new one. A node that has not served a request since
simply adopts the new generation at its first transaction. A pass that started after the rotation
therefore leaves no older-term record behind, and the verifying pass checks that before the drop, which is
itself a keyring change every in-flight writer conflicts with. Records that do not decrypt are counted
(``failed``) and left alone; then the older terms are kept.

Bounds: a page is at most :data:`PAGE` records, at most the store's operations per transaction less a few
for the state record, and at most half its transaction bytes; a conflict or an oversize transaction halves
the page for the rest of the run. Tenants: a sealed tenant's re-wrap waits (its keys are nowhere) and goes
on once it is unsealed; a deleted tenant's is dropped.
"""

from __future__ import annotations

import asyncio
import logging
import os
import weakref
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from enum import Enum

from strongroom.barrier.barrier import Barrier
from strongroom.core.background import BackgroundRunner, Job, JobRun
from strongroom.core.jobs import LeaseLost
from strongroom.core.namespace import ROOT_NAMESPACE_ID, NamespaceKeys
from strongroom.core.node import Node
from strongroom.core.rewrap_state import (
    Phase,
    RewrapState,
    forget,
    load,
    owned_spaces,
    start,
    store,
    unfinished,
)
from strongroom.core.tenant_seal import KEY_COPIES, TenantVault
from strongroom.errors import (
    CorruptRecord,
    InvalidRequest,
    RecordTooLarge,
    Sealed,
    StrongroomError,
    TransactionConflict,
)
from strongroom.storage.base import Transaction, transactional
from strongroom.storage.subspace import Subspace

__all__ = ["JOB", "JOB_NAME", "PAGE", "install", "kick", "rewrap_pending", "start"]

log = logging.getLogger(__name__)

JOB_NAME = "keyring-rewrap"
PAGE = 256
"""Records examined per transaction at most."""
MAX_PASSES = 8
"""Verifying passes that keep finding (and re-wrapping) records end the re-wrap with the older terms kept:
that would mean a writer ignores the keyring rule above, and dropping would lose its records."""
_OVERHEAD_OPS = 8
"""Operations a step keeps for itself: the state record, the keyring and counter clears of the drop."""

BATCH_ENV = "STRONGROOM_TEST_REWRAP_BATCH"
STEPS_ENV = "STRONGROOM_TEST_REWRAP_STEPS"
"""Hidden testing knobs (like ``core/job_settings.py``'s): records per transaction, and transactions per run of
the job (so that a test can stop a node in the middle of a re-wrap). Unset in production."""

Fence = Callable[[Transaction], Awaitable[None]]


class _Step(Enum):
    MORE = "more"
    FINISHED = "finished"
    WAITING = "waiting"  # a sealed tenant


def knob_overrides(environ: Mapping[str, str] | None = None) -> tuple[int | None, int | None]:
    """``(batch, steps)`` from the testing variables, ``None`` where unset.

    Raises:
        InvalidRequest: a variable is set to something other than a positive whole number.
    """
    env = os.environ if environ is None else environ
    out: list[int | None] = []
    for name in (BATCH_ENV, STEPS_ENV):
        raw = env.get(name, "")
        if not raw:
            out.append(None)
            continue
        if not raw.isdigit() or int(raw) < 1:
            raise InvalidRequest(f"{name} must be a positive whole number, not {raw!r}")
        out.append(int(raw))
    return out[0], out[1]


@dataclass
class _Owner:
    """One keyring owner worked on during a run: its tenant vault (not the platform) and subspaces."""

    ns_id: bytes
    tenant: TenantVault | None
    spaces: list[Subspace] | None = None

    async def keys(self, tx: Transaction, platform: NamespaceKeys) -> NamespaceKeys | None:
        """The owner's keys read in ``tx``; ``None`` while a tenant is sealed (it has no key copy)."""
        if self.tenant is None:
            return platform
        if await tx.get(platform.space.key("sys", KEY_COPIES, self.ns_id)) is None:
            return None
        return await self.tenant.keys_in(tx, platform)


@dataclass
class _Run:
    node: Node
    fence: Fence | None
    page: int


def _page(node: Node, wanted: int | None) -> int:
    limits = node.store.limits
    return max(1, min(wanted or PAGE, limits.max_transaction_ops - _OVERHEAD_OPS))


async def _step(tx: Transaction, run: _Run, owner: _Owner) -> _Step:
    """One transaction of ``owner``'s re-wrap (see the module docstring)."""
    if run.fence is not None:
        await run.fence(tx)
    platform = await run.node.root.current_keys(tx)
    state = await load(tx, platform, owner.ns_id)
    if state is None or state.phase is Phase.COMPLETE:
        return _Step.FINISHED
    if owner.spaces is None:
        owner.spaces = await owned_spaces(tx, platform, owner.ns_id)
        if owner.spaces is None:
            forget(tx, platform, owner.ns_id)  # the tenant was deleted: nothing left to re-wrap
            return _Step.FINISHED
    keys = await owner.keys(tx, platform)
    if keys is None:
        return _Step.WAITING
    active = keys.keyring.active.number
    now = run.node.clock.now()
    if state.term != active:
        start(tx, platform, owner.ns_id, active, now)  # rotated again meanwhile: walk toward the new term
        return _Step.MORE
    state = await _scan(tx, run, owner.spaces, keys, state)
    if state.cursor is not None:
        store(tx, platform, owner.ns_id, state)
        return _Step.MORE
    clears = max(0, run.node.store.limits.max_transaction_ops - _OVERHEAD_OPS)
    state = _end_of_pass(tx, keys, state, now, clears)
    store(tx, platform, owner.ns_id, state)
    return _Step.FINISHED if state.phase is Phase.COMPLETE else _Step.MORE


async def _scan(
    tx: Transaction, run: _Run, spaces: list[Subspace], keys: NamespaceKeys, state: RewrapState
) -> RewrapState:
    """Examine one page from the cursor; return the state with the cursor moved (``None``: pass over)."""
    barrier, active = keys.barrier, keys.keyring.active.number
    writing = state.phase is not Phase.COUNTING
    budget = max(1, run.node.store.limits.max_transaction_bytes // 2)
    cursor, left, spent = state.cursor or b"", run.page, 0
    done = found = failed = rewrapped = 0
    for space in spaces:
        begin, end = space.range()
        if cursor >= end:
            continue
        skip = (space.key("seal"), space.key("keyring"))  # the clear seal config, the root-key-sealed keyring
        rows = await tx.range(max(cursor, begin), end, limit=left)
        for key, value in rows:
            if key in skip:
                continue
            term = Barrier.term_of(value) if len(value) >= 5 else 0
            if term == active:
                done += 1
                continue
            if writing and spent and spent + len(key) + len(value) > budget:
                return _advanced(state, key, done, found, failed, rewrapped)  # the rest in the next step
            found += 1
            done += 1
            if not writing:
                continue
            try:
                plaintext = barrier.decrypt(key, value)
            except CorruptRecord:
                # Damaged, or under a term no longer in the keyring: nothing can repair it here. Counted, so
                # that the older terms are kept and an operator sees it.
                failed += 1
                continue
            record = barrier.encrypt(key, plaintext)
            tx.set(key, record)
            spent += len(key) + len(record)
            rewrapped += 1
        if len(rows) == left:
            return _advanced(state, rows[-1][0] + b"\x00", done, found, failed, rewrapped)
        left -= len(rows)
        cursor = end
    return _advanced(state, None, done, found, failed, rewrapped)


def _advanced(state: RewrapState, cursor: bytes | None, done: int, found: int, failed: int, rewrapped: int) -> RewrapState:
    return replace(
        state, cursor=cursor, done=state.done + done, found=state.found + found, failed=state.failed + failed,
        rewrapped=state.rewrapped + rewrapped,
    )  # fmt: skip


def _end_of_pass(tx: Transaction, keys: NamespaceKeys, state: RewrapState, now: float, clears: int) -> RewrapState:
    """The transition at the end of a pass (module docstring of :mod:`strongroom.core.rewrap_state`)."""
    if state.phase is Phase.COUNTING and state.found:
        counted = replace(state, total=state.done, pending=state.found)
        return counted.next_pass(Phase.REWRAPPING)
    if state.phase is Phase.REWRAPPING:
        return state.next_pass(Phase.VERIFYING)
    if state.phase is Phase.COUNTING:
        state = replace(state, total=state.done, pending=0)
    if state.found == 0:
        dropped = _drop(tx, keys, clears)
        return replace(state, phase=Phase.COMPLETE, finished=now, passes=state.passes + 1, dropped=dropped)
    if state.found > state.failed and state.passes + 1 < MAX_PASSES:
        return state.next_pass(Phase.VERIFYING)
    log.warning(
        "keyring re-wrap of namespace %s: %d records could not be re-wrapped; older terms kept",
        keys.path or "(platform)", state.failed,
    )  # fmt: skip
    return replace(state, phase=Phase.COMPLETE, finished=now, passes=state.passes + 1)


def _drop(tx: Transaction, keys: NamespaceKeys, clears: int) -> tuple[int, ...]:
    """In ``tx``: remove the terms below the active one from the stored keyring; return their numbers.

    Clears the encryption counters of at most ``clears`` of them (the newest), to stay within the store's
    operations per transaction; a counter left behind is a small record nobody reads again.

    ``keys`` was read in ``tx`` (so a concurrent rotation or rekey conflicts with this commit). Every node
    adopts the new generation at its next transaction (``Vault.current_keys``).
    """
    ring = keys.keyring
    old = tuple(t.number for t in ring.terms if t.number < ring.active.number)
    if old:
        physical = keys.space.key("keyring")
        tx.set(physical, ring.retired(ring.active.number).seal(keys.root_key, physical))
        for number in old[-clears:] if clears else ():
            tx.clear(keys.space.key("ctr", "enc", number))  # that term's encryption count: no longer needed
    return old


async def _discover(node: Node) -> None:
    """Start the platform's re-wrap if its keyring has older terms and none covers them (a rotation made
    before re-wrapping existed, or an automatic one at the encryption bound, ``core/encryption_budget.py``).
    """

    async def run(tx: Transaction) -> None:
        platform = await node.root.current_keys(tx)
        active = platform.keyring.active.number
        if len(platform.keyring.terms) < 2:
            return
        state = await load(tx, platform, ROOT_NAMESPACE_ID)
        if state is None or (state.phase is Phase.COMPLETE and state.term != active):
            start(tx, platform, ROOT_NAMESPACE_ID, active, node.clock.now())

    await transactional(node.store, run)


async def _pending(node: Node) -> list[bytes]:
    async def run(tx: Transaction) -> list[bytes]:
        return await unfinished(tx, await node.root.current_keys(tx))

    return await transactional(node.store, run)


async def rewrap_pending(
    node: Node,
    *,
    fence: Fence | None = None,
    keep_alive: Callable[[], Awaitable[None]] | None = None,
    batch: int | None = None,
    max_steps: int | None = None,
) -> int:
    """Advance every unfinished re-wrap (the platform's first) until each completes or waits for a sealed
    tenant, at most ``max_steps`` transactions; return the transactions committed.

    Does nothing while the platform is sealed on ``node``.

    Raises:
        LeaseLost: ``fence`` or ``keep_alive`` found the job's lease gone; nothing more is written.
        Sealed: the platform sealed meanwhile.
        CorruptRecord: a state or registry record is damaged.
        StorageError: the store failed (the next run resumes at the stored cursor).
    """
    if node.root.sealed:
        return 0
    await _discover(node)
    run = _Run(node, fence, _page(node, batch))
    steps = 0
    for ns_id in await _pending(node):
        tenant = None if ns_id == ROOT_NAMESPACE_ID else TenantVault(node.root, ns_id, "")
        owner = _Owner(ns_id, tenant)
        while max_steps is None or steps < max_steps:
            outcome = await _one_step(run, owner)
            steps += 1
            if outcome is _Step.WAITING:
                log.debug("keyring re-wrap of a tenant waits: the tenant is sealed")
            if outcome is not _Step.MORE:
                break
            if keep_alive is not None:
                await keep_alive()
    return steps


async def _one_step(run: _Run, owner: _Owner) -> _Step:
    """One committed step, with the page halved (for the rest of the run) on conflicts or oversize."""

    async def body(tx: Transaction) -> _Step:
        return await _step(tx, run, owner)

    while True:
        try:
            outcome = await transactional(run.node.store, body, attempts=8)
        except (TransactionConflict, RecordTooLarge):
            if run.page == 1:
                raise
            run.page = max(1, run.page // 2)
            continue
        # The re-encryptions count toward the owner's encryption budget like any other.
        vault = owner.tenant if owner.tenant is not None else run.node.root
        await vault.account_encryptions()
        return outcome


# -- the background job --------------------------------------------------------------------------------

_LOCKS: weakref.WeakKeyDictionary[Node, asyncio.Lock] = weakref.WeakKeyDictionary()
_RUNNERS: weakref.WeakKeyDictionary[Node, BackgroundRunner] = weakref.WeakKeyDictionary()
_KICKS: set[asyncio.Task[None]] = set()


def _lock(node: Node) -> asyncio.Lock:
    # The runner's tick and a kick hold the same lease (one holder per process): one walk at a time.
    lock = _LOCKS.get(node)
    if lock is None:
        lock = _LOCKS[node] = asyncio.Lock()
    return lock


async def _job(run: JobRun) -> None:
    batch, steps = knob_overrides()
    async with _lock(run.node):
        await rewrap_pending(run.node, fence=run.check, keep_alive=run.keep_alive, batch=batch, max_steps=steps)


JOB = Job(JOB_NAME, _job)
"""The job (register it with :func:`install`, which also lets a rotation start it at once)."""


def install(runner: BackgroundRunner) -> None:
    """Register the re-wrap job with ``runner`` and let :func:`kick` use it.

    Raises:
        InvalidRequest: a testing variable is set to something other than a positive whole number.
        ValueError: already registered.
    """
    knob_overrides()
    runner.register(JOB)
    _RUNNERS[runner.node] = runner


def kick(node: Node) -> None:
    """After a rotation committed: run the job now on this node instead of at its next tick.

    Takes the job's lease like a tick would (if another node holds it, that node goes on at its tick).
    Does nothing where no runner was installed (tests, offline commands) or no event loop runs.
    """
    runner = _RUNNERS.get(node)
    if runner is None:
        return
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return
    task = loop.create_task(_kicked(runner), name="strongroom-rewrap-kick")
    _KICKS.add(task)
    task.add_done_callback(_KICKS.discard)


async def _kicked(runner: BackgroundRunner) -> None:
    try:
        lease = await runner.leases.acquire(JOB_NAME, runner.lease_ttl)
        if lease is not None:
            await _job(JobRun(runner.node, lease, runner.leases, runner.lease_ttl))
    except (LeaseLost, Sealed):
        return
    except StrongroomError as exc:
        # The periodic tick picks the work up again; nothing is lost.
        log.info("keyring re-wrap deferred to the next tick: %s", type(exc).__name__)
    except Exception:
        log.exception("keyring re-wrap started after a rotation failed; the next tick retries")
