"""The etcd backend against real 3-member clusters (tests/support/etcd.py): limits, fail-over, quorum loss,
retry safety of commits, and the corners of conflict detection that the conformance suite cannot reach.

Tests that stop members use a cluster of their own (``private_etcd_cluster``); the others share the
session's cluster under a key prefix of their own, deleted afterwards.
"""

from __future__ import annotations

import asyncio
import binascii
import secrets
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import uvloop

from strongroom.errors import InvalidRequest, RecordTooLarge, StorageUnavailable, TransactionConflict
from strongroom.storage.base import Store, Transaction, transactional
from strongroom.storage.etcd import EtcdStore
from strongroom.storage.etcd_client import EtcdClient
from strongroom.storage.etcd_txn import b64s
from strongroom.storage.url import open_store
from tests.support.etcd import EtcdCluster, etcd_cluster, private_etcd_cluster

__all__ = ["etcd_cluster", "private_etcd_cluster"]  # fixtures used below

HANG_GUARD = 120.0  # seconds: a call that takes longer than this hangs (the store's own bounds are seconds)


def _store(
    cluster: EtcdCluster, indexes: list[int] | None = None, prefix: str = "", **options: object
) -> EtcdStore:
    store = open_store(cluster.url(prefix or f"test/{secrets.token_hex(8)}/", indexes, **options))
    assert isinstance(store, EtcdStore)
    return store


@pytest.fixture
async def store(etcd_cluster: EtcdCluster) -> AsyncIterator[EtcdStore]:
    s = _store(etcd_cluster)
    try:
        yield s
    finally:
        await s.purge()
        await s.close()


async def _put(store: Store, items: dict[bytes, bytes]) -> None:
    async with store.transaction() as tx:
        for k, v in items.items():
            tx.set(k, v)


async def _get(store: Store, key: bytes) -> bytes | None:
    async with store.transaction() as tx:
        return await tx.get(key)


async def _member_value(cluster: EtcdCluster, index: int, key: bytes) -> bytes | None:
    """What member ``index`` alone holds at ``key`` (a serializable read: no consensus, no other member)."""
    client = EtcdClient(
        [("127.0.0.1", cluster.members[index].client_port)], timeout=2, attempt_timeout=2, max_connections=1
    )
    try:
        answer, _ = await client.call(
            "/v3/kv/range", {"key": b64s(key), "serializable": True}, require_leader=False
        )
    finally:
        await client.close()
    kvs = answer.get("kvs")
    return binascii.a2b_base64(kvs[0].get("value", "")) if kvs else None


async def _until(check: Callable[[], Any], what: str, deadline: float = 60.0) -> None:
    """Poll the coroutine function ``check`` until it returns true; fail after ``deadline`` seconds."""
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    while True:
        try:
            if await check():
                return
        except StorageUnavailable:
            pass
        if loop.time() > end:
            pytest.fail(f"not within {deadline}s: {what}")
        await asyncio.sleep(0.2)


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


async def test_unreachable_cluster_is_unavailable_not_a_hang() -> None:
    store = open_store("etcd://127.0.0.1:1,127.0.0.1:2?timeout=0.5")
    try:
        with pytest.raises(StorageUnavailable):
            await asyncio.wait_for(_get(store, b"k"), HANG_GUARD)
        with pytest.raises(StorageUnavailable):
            await asyncio.wait_for(_put(store, {b"k": b"v"}), HANG_GUARD)
    finally:
        await store.close()


async def test_member_that_never_answers_is_left_behind(etcd_cluster: EtcdCluster) -> None:
    """A member that accepts connections but never answers (hung, or partitioned after the handshake):
    each attempt gives up after attempt_timeout and the request moves on to the next member."""
    accepted: list[asyncio.StreamWriter] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)  # reads nothing, answers nothing

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    real = ("127.0.0.1", etcd_cluster.members[0].client_port)
    prefix = f"test/{secrets.token_hex(8)}/".encode()
    store = EtcdStore([("127.0.0.1", port), real], prefix=prefix, timeout=5, attempt_timeout=0.3)
    alone = EtcdStore([("127.0.0.1", port)], prefix=prefix, timeout=1, attempt_timeout=0.3)
    try:
        await asyncio.wait_for(_put(store, {b"k": b"v"}), HANG_GUARD)
        assert accepted  # the silent member was tried first
        assert await _get(store, b"k") == b"v"
        with pytest.raises(StorageUnavailable):
            await asyncio.wait_for(_get(alone, b"k"), HANG_GUARD)
    finally:
        server.close()
        for writer in accepted:
            writer.close()
        await alone.close()
        await store.purge()
        await store.close()


# -- limits ----------------------------------------------------------------------------------------------


async def test_limits_match_what_etcd_accepts(store: EtcdStore) -> None:
    limits = store.limits
    assert limits.max_value_bytes < 1_572_864
    assert limits.max_transaction_ops == 127
    await _put(store, {b"big": b"v" * limits.max_value_bytes})  # exactly at the limit: etcd takes it
    assert await _get(store, b"big") == b"v" * limits.max_value_bytes
    async with store.transaction() as tx:
        with pytest.raises(RecordTooLarge):
            tx.set(b"bigger", b"v" * (limits.max_value_bytes + 1))
    # As many operations as advertised, each of the costliest kind, fit in one etcd txn.
    await _put(store, {b"op%03d" % i: b"x" for i in range(limits.max_transaction_ops)})
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


# -- conflicts beyond the conformance suite ------------------------------------------------------------------


async def test_many_reads_are_coalesced_and_still_conflict(store: EtcdStore) -> None:
    keys = [b"r%04d" % i for i in range(400)]
    await _put(store, dict.fromkeys(keys[:100], b"0"))
    await _put(store, dict.fromkeys(keys[100:200], b"0"))
    async with store.transaction() as tx:  # 400 point reads, 200 range reads: far over 128 compares
        for k in keys:
            await tx.get(k)
        for i in range(0, 400, 2):
            await tx.range(keys[i] + b"/", keys[i + 1])
        tx.set(b"out", b"1")
    assert await _get(store, b"out") == b"1"

    async def scenario() -> None:
        async with store.transaction() as t1:
            for k in keys:
                await t1.get(k)
            await _put(store, {keys[357]: b"changed"})  # one key among the 400, absent before
            t1.set(b"out", b"2")

    with pytest.raises(TransactionConflict):
        await scenario()
    assert await _get(store, b"out") == b"1"


async def test_snapshot_compacted_away_is_a_conflict(store: EtcdStore) -> None:
    await _put(store, {b"a": b"1", b"b": b"1"})

    async def scenario() -> None:
        async with store.transaction() as tx:
            await tx.get(b"a")
            await _put(store, {b"b": b"2"})
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
    await _put(store, {b"m/1": b"1", b"z/1": b"1"})
    async with store.transaction() as t1:
        await t1.range(b"m/", b"m0")
        for i in range(3):  # several tombstones since t1's snapshot, none overlapping its range
            async with store.transaction() as t2:
                t2.clear_range(b"z/", b"z0")
                t2.set(b"z/%d" % i, b"again")
        t1.set(b"m/2", b"2")
    assert await _get(store, b"m/2") == b"2"


async def test_lost_lease_is_replaced(store: EtcdStore) -> None:
    await _put(store, {b"k": b"1"})
    assert store._leases.lease is not None
    await store._client.call("/v3/lease/revoke", {"ID": store._leases.lease})
    await _put(store, {b"k": b"2"})  # the commit finds its lease gone, takes a new one and succeeds
    assert await _get(store, b"k") == b"2"


async def test_shadow_keys_are_removed_by_clear_range(store: EtcdStore) -> None:
    await _put(store, {b"s/1": b"1"})
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


# -- retry safety: a commit whose answer was lost --------------------------------------------------------


async def test_commit_whose_answer_is_lost_applies_once(etcd_cluster: EtcdCluster) -> None:
    """A proxy forwards the first commit to member 0 but drops its answer: the client re-sends it to member
    1, whose marker check reports it committed. Counting increments proves each applied exactly once."""
    upstream = etcd_cluster.members[0].client_port
    dropped = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal dropped
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", upstream)

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter, drop: bool) -> None:
            nonlocal dropped
            while data := await src.read(65536):
                if drop and dropped == 0 and pending_txn:
                    dropped += 1
                    writer.close()  # the commit reached etcd; its answer never reaches the client
                    return
                dst.write(data)

        pending_txn = False

        async def requests() -> None:
            nonlocal pending_txn
            while data := await reader.read(65536):
                pending_txn = pending_txn or b"/v3/kv/txn" in data
                up_writer.write(data)
            up_writer.close()

        try:
            await asyncio.gather(requests(), pump(up_reader, writer, True), return_exceptions=True)
        finally:
            writer.close()
            up_writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    store = EtcdStore(
        [("127.0.0.1", port), ("127.0.0.1", etcd_cluster.members[1].client_port)],
        prefix=f"test/{secrets.token_hex(8)}/".encode(),
    )

    async def bump(tx: Transaction) -> None:
        tx.set(b"n", b"%d" % (int(await tx.get(b"n") or b"0") + 1))

    try:
        for _ in range(5):
            await transactional(store, bump)
        assert dropped == 1
        assert await _get(store, b"n") == b"5"
    finally:
        server.close()
        await store.purge()
        await store.close()


# -- fail-over -------------------------------------------------------------------------------------------


async def test_one_member_down_during_writes_then_back(private_etcd_cluster: EtcdCluster) -> None:
    cluster = private_etcd_cluster
    store = _store(cluster, timeout=10)
    workers, increments = 8, 30
    done = 0
    victim = -1

    async def bump(tx: Transaction) -> None:
        tx.set(b"counter", b"%d" % (int(await tx.get(b"counter") or b"0") + 1))

    async def worker(w: int) -> None:
        nonlocal done, victim
        for i in range(increments):
            await transactional(store, bump, attempts=1000)
            await _put(store, {b"w%d/%03d" % (w, i): b"x"})
            done += 1
            if done == workers * increments // 3:
                victim = store._client.current  # the member the store talks to: it must fail over
                cluster.stop_member(victim)  # SIGKILL while the other workers' requests are in flight

    try:
        await asyncio.wait_for(asyncio.gather(*(worker(w) for w in range(workers))), HANG_GUARD)
        assert victim >= 0
        total = workers * increments
        # Every write succeeded (none raised), and each increment applied exactly once.
        assert await _get(store, b"counter") == b"%d" % total
        async with store.transaction() as tx:
            assert len(await tx.range(b"w", b"x")) == total

        cluster.start_member(victim)
        key = store._space.data + b"counter"

        async def caught_up() -> bool:
            return await _member_value(cluster, victim, key) == b"%d" % total

        await _until(caught_up, f"member {victim} catches up")
        alone = _store(cluster, [victim], prefix=store._space.prefix.decode())
        try:
            await _put(alone, {b"after": b"1"})  # the restarted member serves writes again
            assert await _get(store, b"after") == b"1"
        finally:
            await alone.close()
    finally:
        await store.close()


async def test_quorum_lost_fails_fast_then_recovers(private_etcd_cluster: EtcdCluster) -> None:
    cluster = private_etcd_cluster
    store = _store(cluster, timeout=2, attempt_timeout=1)
    try:
        await _put(store, {b"k": b"before"})
        cluster.stop_member(0)
        cluster.stop_member(1)
        # Bounded by the store's timeout; the guard only turns a hang into a failure.
        with pytest.raises(StorageUnavailable):
            await asyncio.wait_for(_put(store, {b"k": b"during"}), HANG_GUARD)
        with pytest.raises(StorageUnavailable):
            async with store.transaction() as tx:
                await asyncio.wait_for(tx.get(b"k"), HANG_GUARD)
        cluster.start_member(1)

        async def writes() -> bool:
            await _put(store, {b"k": b"after"})
            return True

        await _until(writes, "writes succeed once a quorum is back")
        assert await _get(store, b"k") == b"after"
    finally:
        await store.close()


def test_works_on_uvloop(etcd_cluster: EtcdCluster) -> None:
    """The server runs on uvloop, whose transports are not asyncio's classes."""

    async def scenario() -> None:
        store = _store(etcd_cluster)
        try:
            await _put(store, {b"k": b"v" * 5000})  # an answer large enough to come chunked
            async with store.transaction() as tx:
                assert await tx.range(b"", b"\xff") == [(b"k", b"v" * 5000)]
        finally:
            await store.purge()
            await store.close()

    uvloop.run(scenario())
