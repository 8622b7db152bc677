"""The write log's conflict decision equals re-reading everything, on random interleaved transactions.

The SQLite writer re-runs only the reads that :meth:`WriteLog.suspects` names. This test wraps the
writer's ``_stale`` (the documented test seam in ``strongroom.storage.sqlite_writer``) so that every
conflict check is also evaluated with ``found=None`` (re-run every recorded read) on the same write
connection at the same moment, and records any disagreement. Random transactions (point reads, limited
and reversed ranges, sets, clears, clear_range; several open at once, some long-lived; commits alone and
in groups) run against two stores sharing one file (each store's log is reset by the other's commits)
and against one store alone (the log is never reset by others). A small log window makes old snapshots
fall back too. Seeded and bounded by a step count.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from strongroom.errors import TransactionConflict
from strongroom.storage import sqlite_writer
from strongroom.storage.sqlite import SqliteStore, SqliteTransaction

KEYS = [b"a", b"a\x00", b"ab", b"b", b"b\x00", b"ba", b"c", b"d", b"d\xff", b"e"]
BOUNDS = [b"", b"a", b"a\x00", b"ab", b"b", b"b\x00\x00", b"c", b"d", b"e", b"f"]
VALUES = [b"0", b"1"]  # few values: a key often gets back a value it had (the ABA case)
STEPS = 3000


@dataclass
class Checks:
    """What the wrapped ``_stale`` saw."""

    by_log: int = 0
    """Checks answered through the log (``found`` not ``None``)."""
    by_log_conflicts: int = 0
    by_log_suspects_unchanged: int = 0
    """Log checks that named suspects whose values turned out unchanged (no conflict)."""
    fallbacks: int = 0
    """Checks where the log could not tell (``found`` is ``None``)."""
    mismatches: list[str] = field(default_factory=list)


@pytest.fixture
def checks(monkeypatch: pytest.MonkeyPatch) -> Checks:
    seen = Checks()
    original = sqlite_writer._stale

    def both(
        conn: sqlite3.Connection, commit: sqlite_writer.Commit, found: tuple[set[bytes], list[int]] | None
    ) -> bool:
        decision = original(conn, commit, found)
        if found is None:
            seen.fallbacks += 1
            return decision
        everything = original(conn, commit, None)  # read-only on the write connection: no side effects
        seen.by_log += 1
        seen.by_log_conflicts += decision
        if not decision and (found[0] or found[1]):
            seen.by_log_suspects_unchanged += 1
        if decision != everything:
            seen.mismatches.append(
                f"log={decision} full={everything} snapshot={commit.snapshot_seq} reads={commit.reads} "
                f"ranges={[(b, e) for b, e, _ in commit.ranges]} suspects={found}"
            )
        return decision

    # Runs on the writer thread; an assertion there would only fail the group, hence the list.
    monkeypatch.setattr(sqlite_writer, "_stale", both)
    return seen


async def _drive(stores: list[SqliteStore], seed: int) -> tuple[int, int]:
    """Run ``STEPS`` random actions; return (commits, conflicts)."""
    rng = random.Random(seed)
    open_txs: list[SqliteTransaction] = []
    commits = conflicts = 0

    async def commit(tx: SqliteTransaction) -> None:
        nonlocal commits, conflicts
        try:
            await tx.__aexit__(None, None, None)
            commits += 1
        except TransactionConflict:
            conflicts += 1

    # Laggards read at once and commit only dozens of steps later: their snapshots are older than the
    # log window by then.
    parked: list[tuple[int, SqliteTransaction]] = []
    for step in range(STEPS):
        if parked and parked[0][0] <= step:
            await commit(parked.pop(0)[1])
        if rng.random() < 0.02:
            tx = await rng.choice(stores).transaction().__aenter__()
            await tx.get(rng.choice(KEYS))
            await tx.range(*sorted(rng.sample(BOUNDS, 2)))
            tx.set(rng.choice(KEYS), rng.choice(VALUES))
            parked.append((step + rng.randint(20, 80), tx))
            parked.sort(key=lambda p: p[0])
            continue
        if not open_txs or (len(open_txs) < 6 and rng.random() < 0.2):
            tx = rng.choice(stores).transaction()
            open_txs.append(await tx.__aenter__())
            continue
        tx = rng.choice(open_txs)
        action = rng.random()
        if action < 0.25:
            await tx.get(rng.choice(KEYS))
        elif action < 0.4:
            b, e = sorted(rng.sample(BOUNDS, 2))
            await tx.range(b, e, limit=rng.choice([0, 0, 1, 2]), reverse=rng.random() < 0.3)
        elif action < 0.6:
            tx.set(rng.choice(KEYS), rng.choice(VALUES))
        elif action < 0.67:
            tx.clear(rng.choice(KEYS))
        elif action < 0.72:
            b, e = sorted(rng.sample(BOUNDS, 2))
            tx.clear_range(b, e)
        elif action < 0.88:
            # Leave some transactions open for long: their snapshots age past the log window.
            if rng.random() < 0.85 or len(open_txs) == 1:
                open_txs.remove(tx)
                await commit(tx)
        else:
            # Several commits reaching the writers in one event-loop turn form one group per store.
            group = rng.sample(open_txs, min(len(open_txs), rng.randint(2, 4)))
            for t in group:
                open_txs.remove(t)
            await asyncio.gather(*(commit(t) for t in group))
    await asyncio.gather(*(commit(t) for t in open_txs + [t for _, t in parked]))
    return commits, conflicts


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("shared", [False, True], ids=["alone", "shared-file"])
async def test_log_decision_equals_full_revalidation(
    tmp_path: Path, checks: Checks, seed: int, shared: bool
) -> None:
    stores = [SqliteStore(tmp_path / "s.db", synchronous="NORMAL") for _ in range(2 if shared else 1)]
    for store in stores:
        store._writer.log.keep = 4  # a small window, so that old snapshots fall back as well
    try:
        commits, conflicts = await _drive(stores, seed)
    finally:
        for store in stores:
            await store.close()
    assert checks.mismatches == []
    # The run must have exercised what it claims to check, not only the trivial paths (bounds far below
    # what these seeds produce; with two stores the other's commits send more checks to the fallback).
    assert commits > 300
    assert conflicts > 30
    assert checks.fallbacks > 5
    assert checks.by_log > (10 if shared else 50)
    assert checks.by_log_conflicts > (3 if shared else 20)
    if not shared:
        assert checks.by_log_suspects_unchanged > 3
