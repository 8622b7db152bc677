"""More conflict cases of the conformance suite (docs/spec/storage-layout.md §5, "Conflicts").

These target the shortcuts a backend may take when checking a read set: reads near the edges of what a
limited or reversed range actually read, deletions inside read ranges, conflicts between transactions
committed together, and snapshots older than any bounded log of recent commits.
"""

from __future__ import annotations

import asyncio

import pytest

from strongroom.errors import TransactionConflict
from strongroom.storage.base import Store

from .suite import dump, put


async def test_delete_inside_read_range_conflicts(store: Store) -> None:
    await put(store, {b"r/1": b"1", b"r/2": b"2"})

    async def scenario() -> None:
        async with store.transaction() as t1:
            assert len(await t1.range(b"r/", b"r0")) == 2
            async with store.transaction() as t2:
                t2.clear(b"r/2")
            t1.set(b"count", b"2")

    with pytest.raises(TransactionConflict):
        await scenario()
    assert await dump(store) == {b"r/1": b"1"}


async def test_reverse_limited_range_reads_only_its_tail(store: Store) -> None:
    await put(store, {b"q/1": b"1", b"q/2": b"2", b"q/3": b"3"})
    async with store.transaction() as t1:
        assert [k for k, _ in await t1.range(b"q/", b"q0", limit=2, reverse=True)] == [b"q/3", b"q/2"]
        async with store.transaction() as t2:
            t2.set(b"q/0", b"0")  # before the last key t1 read: outside its read set
            t2.clear(b"q/1")
        t1.set(b"out", b"ok")
    assert (await dump(store))[b"out"] == b"ok"

    async def scenario() -> None:
        async with store.transaction() as t3:
            await t3.range(b"q/", b"q0", limit=2, reverse=True)
            async with store.transaction() as t4:
                t4.set(b"q/25", b"inside")  # between the two keys read
            t3.set(b"out", b"again")

    with pytest.raises(TransactionConflict):
        await scenario()


async def test_clear_range_overlapping_read_range_edge_conflicts(store: Store) -> None:
    await put(store, {b"m/5": b"5", b"n/1": b"1"})

    async def scenario() -> None:
        async with store.transaction() as t1:
            await t1.range(b"m/", b"m0")
            async with store.transaction() as t2:
                t2.clear_range(b"m/4", b"n/2")  # starts inside t1's range, ends beyond it
            t1.set(b"x", b"1")

    with pytest.raises(TransactionConflict):
        await scenario()


async def test_clear_range_adjacent_to_read_range_does_not_conflict(store: Store) -> None:
    await put(store, {b"m/5": b"5", b"m0": b"edge"})
    async with store.transaction() as t1:
        await t1.range(b"m/", b"m0")
        await t1.get(b"l")
        async with store.transaction() as t2:
            t2.clear_range(b"m0", b"n")  # begins exactly at t1's (exclusive) end
        t1.set(b"x", b"1")
    assert await dump(store) == {b"m/5": b"5", b"x": b"1"}


async def test_transactions_committed_together_are_checked_against_each_other(store: Store) -> None:
    await put(store, {b"k": b"0"})
    started = asyncio.Event()
    ready = 0

    async def bump(name: bytes) -> None:
        nonlocal ready
        async with store.transaction() as tx:
            value = await tx.get(b"k")
            ready += 1
            if ready == 2:
                started.set()
            await started.wait()  # both have read before either commits
            tx.set(b"k", (value or b"") + name)

    results = await asyncio.gather(bump(b"a"), bump(b"b"), return_exceptions=True)
    assert sum(isinstance(r, TransactionConflict) for r in results) == 1
    assert sum(r is None for r in results) == 1
    assert (await dump(store))[b"k"] in (b"0a", b"0b")


async def test_old_snapshot_conflicts_after_many_later_commits(store: Store) -> None:
    # More commits than a backend would keep in a log of recent writes (the SQLite writer's window is a
    # few thousand commits): the read must still be checked.
    await put(store, {b"k": b"0"})

    async def blind(i: int) -> None:
        async with store.transaction() as tx:
            tx.set(b"filler/%05d" % (i % 50), b"%d" % i)

    async def scenario() -> None:
        async with store.transaction() as old:
            assert await old.get(b"k") == b"0"
            await put(store, {b"k": b"1"})
            for start in range(0, 10_000, 1000):
                await asyncio.gather(*(blind(i) for i in range(start, start + 1000)))
            old.set(b"j", b"1")

    with pytest.raises(TransactionConflict):
        await scenario()
    assert b"j" not in await dump(store)
