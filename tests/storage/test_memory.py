"""MemoryStore internals: version history is kept only while needed."""

from __future__ import annotations

from strongroom.storage.memory import MemoryStore


async def test_history_and_tombstones_pruned_when_readers_end() -> None:
    store = MemoryStore()
    async with store.transaction() as tx:
        for i in range(10):
            tx.set(b"k%d" % i, b"v")
    async with store.transaction() as reader:
        assert await reader.get(b"k1") == b"v"
        for i in range(5):
            async with store.transaction() as tx:
                tx.clear(b"k%d" % i)
                tx.set(b"n%d" % i, b"new")
        async with store.transaction() as tx:
            tx.clear_range(b"k5", b"k8")
        # The reader still sees its snapshot through tombstones and history.
        assert [k for k, _ in await reader.range(b"k", b"l")] == [b"k%d" % i for i in range(10)]
        assert await reader.range(b"n", b"o") == []
        assert store._history
    assert store._history == {}
    assert not store._log
    assert store._keys == sorted(store._data)
    assert store._keys == [b"k8", b"k9", b"n0", b"n1", b"n2", b"n3", b"n4"]


async def test_no_history_without_concurrent_readers() -> None:
    store = MemoryStore()
    for i in range(3):
        async with store.transaction() as tx:
            tx.set(b"k", b"%d" % i)
            tx.clear(b"gone")
    assert store._history == {}
    assert not store._log


async def test_overlapping_transactions_prune_incrementally() -> None:
    store = MemoryStore()
    old = store.transaction()
    await old.__aenter__()
    await old.get(b"k")
    for i in range(20):
        async with store.transaction() as tx:
            tx.set(b"k", b"%d" % i)
    assert len(store._history[b"k"]) == 20
    assert await old.get(b"k") is None
    await old.__aexit__(None, None, None)
    assert store._history == {}
