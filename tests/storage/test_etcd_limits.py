"""The etcd backend against the session's 3-member cluster (tests/support/etcd.py), each test under a key
prefix of its own, deleted afterwards: URLs, limits, and the corners of conflict detection that the
conformance suite cannot reach. Fail-over is in test_etcd.py, TLS and logins in test_etcd_security.py."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import uvloop

from strongroom.errors import InvalidRequest, RecordTooLarge, TransactionConflict
from strongroom.storage.etcd import EtcdStore
from strongroom.storage.etcd_txn import b64s
from strongroom.storage.url import open_store
from tests.support.etcd import EtcdCluster, etcd_cluster, get, open_test_store, put

__all__ = ["etcd_cluster"]  # the fixture used below


@pytest.fixture
async def store(etcd_cluster: EtcdCluster) -> AsyncIterator[EtcdStore]:
    s = open_test_store(etcd_cluster)
    try:
        yield s
    finally:
        await s.purge()
        await s.close()


# -- URLs ------------------------------------------------------------------------------------------------


async def test_url_endpoints_and_options() -> None:
    store = open_store(
        "etcd://127.0.0.1:23790,[::1]:23791,etcd.example/?prefix=a/b/&timeout=2.5&max_txn_ops=64"
    )
    assert isinstance(store, EtcdStore)
    assert store.kind == "etcd"
    assert store.endpoints == [("127.0.0.1", 23790), ("::1", 23791), ("etcd.example", 2379)]
    assert store._space.prefix == b"a/b/"
    assert store.limits.max_transaction_ops == 63
    await store.close()


@pytest.mark.parametrize(
    "url",
    [
        "etcd://",
        "etcd://h:1/path",
        "etcd://user:secret@h:1",
        "etcd://h:99999",
        "etcd://h:1?colour=blue",
        "etcd://h:1?timeout=soon",
        "etcd://h:1?timeout=0",
        "etcd://h:1?timeout=31",
        "etcd://h:1?max_connections=2.5",
        "etcd://h:1?max_request_bytes=1000",
        "etcd://h:1?prefix=" + "p" * 201,
    ],
)
def test_bad_urls_are_refused(url: str) -> None:
    with pytest.raises(InvalidRequest):
        open_store(url)


# -- limits ----------------------------------------------------------------------------------------------


async def test_limits_match_what_etcd_accepts(store: EtcdStore) -> None:
    limits = store.limits
    assert limits.max_value_bytes < 1_572_864
    assert limits.max_transaction_ops == 127
    await put(store, {b"big": b"v" * limits.max_value_bytes})  # exactly at the limit: etcd takes it
    assert await get(store, b"big") == b"v" * limits.max_value_bytes
    async with store.transaction() as tx:
        with pytest.raises(RecordTooLarge):
            tx.set(b"bigger", b"v" * (limits.max_value_bytes + 1))
    # As many operations as advertised, each of the costliest kind, fit in one etcd txn.
    await put(store, {b"op%03d" % i: b"x" for i in range(limits.max_transaction_ops)})
    async with store.transaction() as tx:
        await tx.get(b"op000")
        await tx.range(b"op", b"oq")
        for i in range(limits.max_transaction_ops // 2):
            tx.clear(b"op%03d" % i)  # a delete and a shadow put each
    async with store.transaction() as tx:
        for i in range(limits.max_transaction_ops // 3):
            tx.clear_range(b"op%03d" % i, b"op%03d\x00" % i)  # two deletes and a tombstone each

    async def too_many() -> None:
        async with store.transaction() as tx:
            for i in range(limits.max_transaction_ops // 2 + 1):
                tx.clear(b"op%03d" % i)

    with pytest.raises(RecordTooLarge):
        await too_many()

    async def too_big() -> None:
        async with store.transaction() as tx:
            tx.set(b"a", b"v" * (limits.max_transaction_bytes // 2))
            tx.set(b"b", b"v" * (limits.max_transaction_bytes // 2))

    with pytest.raises(RecordTooLarge):
        await too_big()


async def test_limits_hold_with_the_longest_prefix(etcd_cluster: EtcdCluster) -> None:
    store = open_test_store(etcd_cluster, prefix="p" * 199 + "/")
    limits = store.limits
    try:
        await put(store, {b"r": b"1"})
        # Reads (a compare each), then as many operations and bytes as advertised, all in one request.
        async with store.transaction() as tx:
            await tx.get(b"r")
            await tx.range(b"a", b"z")
            n = limits.max_transaction_ops
            share = (limits.max_transaction_bytes - n * 4) // n
            for i in range(n):
                tx.set(b"%03d" % i, b"v" * share)
        async with store.transaction() as tx:
            assert len(await tx.range(b"0", b"9")) == n
            tx.set(b"big", b"v" * limits.max_value_bytes)
    finally:
        await store.purge()
        await store.close()


# -- conflicts beyond the conformance suite ------------------------------------------------------------------


async def test_many_reads_are_coalesced_and_still_conflict(store: EtcdStore) -> None:
    keys = [b"r%04d" % i for i in range(400)]
    await put(store, dict.fromkeys(keys[:100], b"0"))
    await put(store, dict.fromkeys(keys[100:200], b"0"))
    async with store.transaction() as tx:  # 400 point reads, 200 range reads: far over 128 compares
        for k in keys:
            await tx.get(k)
        for i in range(0, 400, 2):
            await tx.range(keys[i] + b"/", keys[i + 1])
        tx.set(b"out", b"1")
    assert await get(store, b"out") == b"1"

    async def scenario() -> None:
        async with store.transaction() as t1:
            for k in keys:
                await t1.get(k)
            await put(store, {keys[357]: b"changed"})  # one key among the 400, absent before
            t1.set(b"out", b"2")

    with pytest.raises(TransactionConflict):
        await scenario()
    assert await get(store, b"out") == b"1"


async def test_snapshot_compacted_away_is_a_conflict(store: EtcdStore) -> None:
    await put(store, {b"a": b"1", b"b": b"1"})

    async def scenario() -> None:
        async with store.transaction() as tx:
            await tx.get(b"a")
            await put(store, {b"b": b"2"})
            revision = tx._revision
            assert revision is not None
            await store._client.call("/v3/kv/compaction", {"revision": revision + 1, "physical": True})
            await tx.get(b"b")

    with pytest.raises(TransactionConflict):
        await scenario()


async def test_old_transaction_with_ranges_conflicts(store: EtcdStore) -> None:
    # Tombstones expire with their lease: a transaction older than max_age cannot trust their absence.
    store._max_age = 0.0

    async def scenario() -> None:
        async with store.transaction() as tx:
            await tx.range(b"a", b"b")
            await asyncio.sleep(0.01)
            tx.set(b"x", b"1")

    with pytest.raises(TransactionConflict):
        await scenario()
    async with store.transaction() as tx:  # point reads alone do not depend on tombstones
        await tx.get(b"a")
        tx.set(b"x", b"1")


async def test_clear_range_tombstone_far_away_does_not_conflict(store: EtcdStore) -> None:
    await put(store, {b"m/1": b"1", b"z/1": b"1"})
    async with store.transaction() as t1:
        await t1.range(b"m/", b"m0")
        for i in range(3):  # several tombstones since t1's snapshot, none overlapping its range
            async with store.transaction() as t2:
                t2.clear_range(b"z/", b"z0")
                t2.set(b"z/%d" % i, b"again")
        t1.set(b"m/2", b"2")
    assert await get(store, b"m/2") == b"2"


async def test_lost_lease_is_replaced(store: EtcdStore) -> None:
    await put(store, {b"k": b"1"})
    assert store._leases.lease is not None
    await store._client.call("/v3/lease/revoke", {"ID": store._leases.lease})
    await put(store, {b"k": b"2"})  # the commit finds its lease gone, takes a new one and succeeds
    assert await get(store, b"k") == b"2"


async def test_shadow_keys_are_removed_by_clear_range(store: EtcdStore) -> None:
    await put(store, {b"s/1": b"1"})
    async with store.transaction() as tx:
        tx.clear(b"s/1")
    shadow = store._space.shadow
    answer, _ = await store._client.call(
        "/v3/kv/range", {"key": b64s(shadow), "range_end": b64s(shadow + b"\xff")}
    )
    assert answer.get("count") == "1"
    async with store.transaction() as tx:
        tx.clear_range(b"s/", b"s0")
    answer, _ = await store._client.call(
        "/v3/kv/range", {"key": b64s(shadow), "range_end": b64s(shadow + b"\xff")}
    )
    assert "kvs" not in answer


def test_works_on_uvloop(etcd_cluster: EtcdCluster) -> None:
    """The server runs on uvloop, whose transports are not asyncio's classes."""

    async def scenario() -> None:
        store = open_test_store(etcd_cluster)
        try:
            await put(store, {b"k": b"v" * 5000})  # an answer large enough to come chunked
            async with store.transaction() as tx:
                assert await tx.range(b"", b"\xff") == [(b"k", b"v" * 5000)]
        finally:
            await store.purge()
            await store.close()

    uvloop.run(scenario())


async def test_reads_started_together_share_one_snapshot(
    store: EtcdStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Several first reads in flight at once (gather on one transaction): only one may pin the snapshot,
    the others must read at its revision."""
    await put(store, {b"a": b"1", b"b": b"2", b"c/1": b"3"})
    bodies: list[bytes] = []
    call = store._client.call

    async def recording(path: str, payload: Any, **kw: Any) -> Any:
        if path == "/v3/kv/range":
            bodies.append(payload)
        return await call(path, payload, **kw)

    monkeypatch.setattr(store._client, "call", recording)
    async with store.transaction() as tx:
        got = await asyncio.gather(tx.get(b"a"), tx.get(b"b"), tx.range(b"c/", b"c0"), tx.get(b"z"))
        assert got == [b"1", b"2", [(b"c/1", b"3")], None]
        pinned = [b for b in bodies if b'"revision"' not in b]
        assert len(pinned) == 1
        assert all(b'"revision":%d' % tx._revision in b for b in bodies if b not in pinned)
