"""The storage conformance suite: what every backend must guarantee (docs/spec/storage-layout.md §5).

Every test takes the ``store`` or ``store_factory`` fixture of ``conftest.py``, so each runs once per
backend in ``FACTORIES``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from strongroom.errors import RecordTooLarge, TransactionConflict
from strongroom.storage.base import Store, StoreLimits, Transaction, iterate_range, transactional

BINARY_KEYS = [
    b"\x00", b"\x00\x00", b"\x00\xff", b"\x01", b"a", b"a\x00", b"a\x00\x00", b"a\xff", b"b", b"\xff",
    b"\xff\x00", b"\xff\xff",
]  # fmt: skip


async def put(store: Store, items: dict[bytes, bytes]) -> None:
    async with store.transaction() as tx:
        for k, v in items.items():
            tx.set(k, v)


async def dump(store: Store) -> dict[bytes, bytes]:
    async with store.transaction() as tx:
        return dict(await tx.range(b"", b"\xff\xff\xff"))


# -- basic operations -------------------------------------------------------------------------------


async def test_identity(store: Store) -> None:
    assert isinstance(store.kind, str)
    assert store.kind
    assert isinstance(store.limits, StoreLimits)


async def test_set_get_clear(store: Store) -> None:
    await put(store, {b"k1": b"v1", b"k2": b"v2"})
    async with store.transaction() as tx:
        assert await tx.get(b"k1") == b"v1"
        assert await tx.get(b"k2") == b"v2"
        assert await tx.get(b"nope") is None
        tx.set(b"k1", b"v1b")
        tx.clear(b"k2")
        tx.clear(b"never-existed")
    async with store.transaction() as tx:
        assert await tx.get(b"k1") == b"v1b"
        assert await tx.get(b"k2") is None


async def test_empty_value_is_not_absent(store: Store) -> None:
    await put(store, {b"k": b""})
    async with store.transaction() as tx:
        assert await tx.get(b"k") == b""
        assert await tx.range(b"a", b"z") == [(b"k", b"")]


async def test_clear_range(store: Store) -> None:
    await put(store, {k: k for k in BINARY_KEYS})
    async with store.transaction() as tx:
        tx.clear_range(b"a", b"b")
        tx.clear_range(b"z", b"a")  # inverted: no effect
    assert sorted(await dump(store)) == [k for k in BINARY_KEYS if not b"a" <= k < b"b"]


async def test_binary_keys_order_limit_reverse(store: Store) -> None:
    await put(store, {k: b"v" + k for k in reversed(BINARY_KEYS)})
    async with store.transaction() as tx:
        everything = await tx.range(b"\x00", b"\xff\xff\xff")
        assert [k for k, _ in everything] == BINARY_KEYS
        assert all(v == b"v" + k for k, v in everything)
        assert [k for k, _ in await tx.range(b"\x00", b"\xff\xff\xff", reverse=True)] == BINARY_KEYS[::-1]
        assert [k for k, _ in await tx.range(b"a", b"b")] == [b"a", b"a\x00", b"a\x00\x00", b"a\xff"]
        assert [k for k, _ in await tx.range(b"a", b"b", limit=2)] == [b"a", b"a\x00"]
        assert [k for k, _ in await tx.range(b"a", b"b", limit=2, reverse=True)] == [b"a\xff", b"a\x00\x00"]
        assert [k for k, _ in await tx.range(b"a\x00", b"a\xff")] == [b"a\x00", b"a\x00\x00"]
        assert len(await tx.range(b"\x00", b"\xff\xff\xff", limit=100)) == len(BINARY_KEYS)


async def test_empty_ranges(store: Store) -> None:
    await put(store, {b"a": b"1", b"b": b"2"})
    async with store.transaction() as tx:
        assert await tx.range(b"a", b"a") == []
        assert await tx.range(b"b", b"a") == []
        assert await tx.range(b"c", b"d") == []
        assert await tx.range(b"b", b"a", reverse=True, limit=1) == []
        assert await tx.range(b"a", b"b") == [(b"a", b"1")]  # end is exclusive


async def test_iterate_range_batches(store: Store) -> None:
    await put(store, {b"i%04d" % i: b"%d" % i for i in range(25)})
    async with store.transaction() as tx:
        seen = [k async for k, _ in iterate_range(tx, b"i", b"j", batch=7)]
    assert seen == [b"i%04d" % i for i in range(25)]


# -- read-your-writes --------------------------------------------------------------------------------


async def test_read_your_writes_get(store: Store) -> None:
    await put(store, {b"a": b"1", b"b": b"2", b"c": b"3"})
    async with store.transaction() as tx:
        tx.set(b"new", b"n")
        tx.clear(b"a")
        tx.clear_range(b"b", b"c\x00")
        tx.set(b"c", b"3b")  # set after the clear_range that covered it wins
        assert await tx.get(b"new") == b"n"
        assert await tx.get(b"a") is None
        assert await tx.get(b"b") is None
        assert await tx.get(b"c") == b"3b"
        tx.clear_range(b"c", b"d")  # and a later clear_range wins over the set
        assert await tx.get(b"c") is None
    assert await dump(store) == {b"new": b"n"}


async def test_read_your_writes_range(store: Store) -> None:
    await put(store, {b"k%d" % i: b"s%d" % i for i in range(10)})
    async with store.transaction() as tx:
        tx.set(b"k3a", b"new")
        tx.set(b"k5", b"over")
        tx.clear(b"k1")
        tx.clear_range(b"k6", b"k9")
        tx.set(b"k7", b"back")
        expected = [
            (b"k0", b"s0"), (b"k2", b"s2"), (b"k3", b"s3"), (b"k3a", b"new"), (b"k4", b"s4"),
            (b"k5", b"over"), (b"k7", b"back"), (b"k9", b"s9"),
        ]  # fmt: skip
        assert await tx.range(b"k", b"l") == expected
        assert await tx.range(b"k", b"l", reverse=True) == expected[::-1]
        for n in range(1, len(expected) + 2):
            assert await tx.range(b"k", b"l", limit=n) == expected[:n]
            assert await tx.range(b"k", b"l", limit=n, reverse=True) == expected[::-1][:n]
    async with store.transaction() as tx:
        assert await tx.range(b"k", b"l") == expected


# -- atomicity and isolation ---------------------------------------------------------------------------


async def test_exception_discards_everything(store: Store) -> None:
    await put(store, {b"keep": b"1"})

    async def scenario1() -> None:
        async with store.transaction() as tx:
            tx.set(b"a", b"1")
            tx.clear(b"keep")
            tx.clear_range(b"", b"\xff")
            raise ZeroDivisionError

    with pytest.raises(ZeroDivisionError):
        await scenario1()
    assert await dump(store) == {b"keep": b"1"}


async def test_uncommitted_writes_invisible(store: Store) -> None:
    await put(store, {b"k": b"old"})
    async with store.transaction() as writer:
        writer.set(b"k", b"new")
        writer.set(b"other", b"x")
        async with store.transaction() as reader:
            assert await reader.get(b"k") == b"old"
            assert await reader.range(b"a", b"z") == [(b"k", b"old")]
    async with store.transaction() as reader:
        assert await reader.get(b"k") == b"new"


async def test_snapshot_stable_while_others_commit(store: Store) -> None:
    await put(store, {b"r1": b"a", b"r2": b"b"})
    async with store.transaction() as reader:
        assert await reader.get(b"r1") == b"a"
        async with store.transaction() as writer:
            writer.set(b"r1", b"changed")
            writer.set(b"r1x", b"inserted")
            writer.clear(b"r2")
        assert await dump(store) == {b"r1": b"changed", b"r1x": b"inserted"}
        assert await reader.get(b"r1") == b"a"
        assert await reader.get(b"r2") == b"b"
        assert await reader.range(b"r", b"s") == [(b"r1", b"a"), (b"r2", b"b")]
        assert await reader.range(b"r", b"s", reverse=True, limit=1) == [(b"r2", b"b")]


# -- conflicts -----------------------------------------------------------------------------------------


async def test_write_write_conflict_on_read_key(store: Store) -> None:
    await put(store, {b"k": b"0"})

    async def scenario2() -> None:
        async with store.transaction() as t1:
            assert await t1.get(b"k") == b"0"
            async with store.transaction() as t2:
                await t2.get(b"k")
                t2.set(b"k", b"t2")
            t1.set(b"k", b"t1")

    with pytest.raises(TransactionConflict):
        await scenario2()
    assert await dump(store) == {b"k": b"t2"}


async def test_phantom_insert_into_read_range_conflicts(store: Store) -> None:
    await put(store, {b"dir/a": b"1"})

    async def scenario3() -> None:
        async with store.transaction() as t1:
            assert len(await t1.range(b"dir/", b"dir0")) == 1
            async with store.transaction() as t2:
                t2.set(b"dir/b", b"phantom")
            t1.set(b"count", b"1")

    with pytest.raises(TransactionConflict):
        await scenario3()
    assert await dump(store) == {b"dir/a": b"1", b"dir/b": b"phantom"}


async def test_clear_range_over_read_key_conflicts(store: Store) -> None:
    await put(store, {b"x/1": b"1"})

    async def scenario4() -> None:
        async with store.transaction() as t1:
            await t1.get(b"x/1")
            async with store.transaction() as t2:
                t2.clear_range(b"x/", b"x0")
            t1.set(b"y", b"1")

    with pytest.raises(TransactionConflict):
        await scenario4()


async def test_write_beyond_limited_range_does_not_conflict(store: Store) -> None:
    await put(store, {b"q/1": b"1", b"q/2": b"2", b"q/3": b"3"})
    async with store.transaction() as t1:
        assert [k for k, _ in await t1.range(b"q/", b"q0", limit=2)] == [b"q/1", b"q/2"]
        async with store.transaction() as t2:
            t2.set(b"q/4", b"4")  # after the last key t1 read: outside its read set
        t1.set(b"out", b"ok")
    assert (await dump(store))[b"out"] == b"ok"


async def test_blind_write_never_conflicts(store: Store) -> None:
    async with store.transaction() as t1:
        t1.set(b"k", b"t1")
        async with store.transaction() as t2:
            await t2.get(b"k")
            t2.set(b"k", b"t2")
    assert await dump(store) == {b"k": b"t1"}


async def test_read_only_never_conflicts(store: Store) -> None:
    await put(store, {b"k": b"0"})
    async with store.transaction() as t1:
        await t1.get(b"k")
        await t1.range(b"", b"\xff")
        await put(store, {b"k": b"1", b"j": b"2"})


async def test_disjoint_writers_do_not_conflict(store: Store) -> None:
    await put(store, {b"a": b"0", b"b": b"0"})
    async with store.transaction() as t1:
        await t1.get(b"a")
        async with store.transaction() as t2:
            await t2.get(b"b")
            t2.set(b"b", b"2")
        t1.set(b"a", b"1")
    assert await dump(store) == {b"a": b"1", b"b": b"2"}


async def test_transactional_counter_with_contention(store: Store) -> None:
    workers, increments = 8, 15

    async def bump(tx: Transaction) -> int:
        value = int(await tx.get(b"counter") or b"0") + 1
        await asyncio.sleep(0)  # let the other workers interleave and collide
        tx.set(b"counter", b"%d" % value)
        return value

    async def worker() -> None:
        for _ in range(increments):
            await transactional(store, bump, attempts=1000)

    await asyncio.gather(*(worker() for _ in range(workers)))
    assert await dump(store) == {b"counter": b"%d" % (workers * increments)}


async def test_transactional_does_not_retry_other_errors(store: Store) -> None:
    calls = 0

    async def fail(tx: Transaction) -> None:
        nonlocal calls
        calls += 1
        tx.set(b"k", b"v")
        raise KeyError("boom")

    with pytest.raises(KeyError):
        await transactional(store, fail)
    assert calls == 1
    assert await dump(store) == {}


async def test_many_concurrent_tasks(store: Store) -> None:
    async def task(i: int) -> None:
        for j in range(5):
            async with store.transaction() as tx:
                assert await tx.get(b"t%03d/%d" % (i, j)) is None
                tx.set(b"t%03d/%d" % (i, j), b"%d" % j)
                await asyncio.sleep(0)

    await asyncio.gather(*(task(i) for i in range(100)))
    data = await dump(store)
    assert len(data) == 500
    assert data[b"t042/3"] == b"3"


# -- limits ----------------------------------------------------------------------------------------------


async def test_size_limits(store_factory: Callable[..., Store]) -> None:
    limits = StoreLimits(
        max_key_bytes=64, max_value_bytes=1024, max_transaction_bytes=4096, max_transaction_ops=10
    )
    store = store_factory(limits)
    try:

        async def scenario5() -> None:
            async with store.transaction() as tx:
                tx.set(b"ok", b"v")
                tx.set(b"k" * 65, b"v")

        with pytest.raises(RecordTooLarge):
            await scenario5()

        async def scenario6() -> None:
            async with store.transaction() as tx:
                tx.set(b"k", b"v" * 1025)

        with pytest.raises(RecordTooLarge):
            await scenario6()

        async def scenario7() -> None:
            async with store.transaction() as tx:
                for i in range(5):
                    tx.set(b"k%d" % i, b"v" * 1000)

        with pytest.raises(RecordTooLarge):
            await scenario7()

        async def scenario8() -> None:
            async with store.transaction() as tx:
                for i in range(11):
                    tx.clear(b"k%d" % i)

        with pytest.raises(RecordTooLarge):
            await scenario8()
        assert await dump(store) == {}
        await put(store, {b"k" * 64: b"v" * 1024})  # exactly at the limits is fine
        assert await dump(store) == {b"k" * 64: b"v" * 1024}
    finally:
        await store.close()
