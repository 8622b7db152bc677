"""Fail-over of the etcd backend on real 3-member clusters (tests/support/etcd.py): unreachable and silent
members, a commit whose answer is lost, the leader killed under write load and restarted (it catches
up), quorum lost (bounded StorageUnavailable) and regained. Tests that stop members run on a cluster of
their own (``private_etcd_cluster``). URLs, limits and conflict corners: test_etcd_limits.py; TLS and
logins: test_etcd_security.py."""

from __future__ import annotations

import asyncio
import secrets

import pytest

from strongroom.errors import StorageUnavailable
from strongroom.storage.base import Transaction, transactional
from strongroom.storage.etcd import EtcdStore
from strongroom.storage.url import open_store
from tests.support.etcd import (
    HANG_GUARD,
    EtcdCluster,
    etcd_cluster,
    get,
    leader,
    member_value,
    open_test_store,
    private_etcd_cluster,
    put,
    until,
)

__all__ = ["etcd_cluster", "private_etcd_cluster"]  # fixtures used below


async def test_unreachable_cluster_is_unavailable_not_a_hang() -> None:
    store = open_store("etcd://127.0.0.1:1,127.0.0.1:2?timeout=0.5")
    try:
        with pytest.raises(StorageUnavailable):
            await asyncio.wait_for(get(store, b"k"), HANG_GUARD)
        with pytest.raises(StorageUnavailable):
            await asyncio.wait_for(put(store, {b"k": b"v"}), HANG_GUARD)
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
        await asyncio.wait_for(put(store, {b"k": b"v"}), HANG_GUARD)
        assert accepted  # the silent member was tried first
        assert await get(store, b"k") == b"v"
        with pytest.raises(StorageUnavailable):
            await asyncio.wait_for(get(alone, b"k"), HANG_GUARD)
    finally:
        server.close()
        for writer in accepted:
            writer.close()
        await alone.close()
        await store.purge()
        await store.close()


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
        assert await get(store, b"n") == b"5"
    finally:
        server.close()
        await store.purge()
        await store.close()


# -- fail-over -------------------------------------------------------------------------------------------


async def test_one_member_down_during_writes_then_back(private_etcd_cluster: EtcdCluster) -> None:
    """The leader, which is also the member the store talks to, is killed under write load."""
    cluster = private_etcd_cluster
    first = await leader(cluster)
    order = [first] + [i for i in range(3) if i != first]
    store = open_test_store(cluster, order, timeout=10)
    workers, increments = 8, 30
    done = 0
    victim = -1

    async def bump(tx: Transaction) -> None:
        tx.set(b"counter", b"%d" % (int(await tx.get(b"counter") or b"0") + 1))

    async def worker(w: int) -> None:
        nonlocal done, victim
        for i in range(increments):
            await transactional(store, bump, attempts=1000)
            await put(store, {b"w%d/%03d" % (w, i): b"x"})
            done += 1
            if done == workers * increments // 3:
                victim = order[store._client.current]
                assert victim == first  # the member the store talks to, and the leader: an election
                cluster.stop_member(victim)  # SIGKILL while the other workers' requests are in flight

    try:
        await asyncio.wait_for(asyncio.gather(*(worker(w) for w in range(workers))), HANG_GUARD)
        assert victim >= 0
        total = workers * increments
        # Every write succeeded (none raised), and each increment applied exactly once.
        assert await get(store, b"counter") == b"%d" % total
        async with store.transaction() as tx:
            assert len(await tx.range(b"w", b"x")) == total

        cluster.start_member(victim)
        key = store._space.data + b"counter"

        async def caught_up() -> bool:
            return await member_value(cluster, victim, key) == b"%d" % total

        await until(caught_up, f"member {victim} catches up")
        alone = open_test_store(cluster, [victim], prefix=store._space.prefix.decode())
        try:
            await put(alone, {b"after": b"1"})  # the restarted member serves writes again
            assert await get(store, b"after") == b"1"
        finally:
            await alone.close()
    finally:
        await store.close()


async def test_quorum_lost_fails_fast_then_recovers(private_etcd_cluster: EtcdCluster) -> None:
    cluster = private_etcd_cluster
    store = open_test_store(cluster, timeout=2, attempt_timeout=1)
    try:
        await put(store, {b"k": b"before"})
        cluster.stop_member(0)
        cluster.stop_member(1)
        # Bounded by the store's timeout; the guard only turns a hang into a failure.
        with pytest.raises(StorageUnavailable):
            await asyncio.wait_for(put(store, {b"k": b"during"}), HANG_GUARD)
        with pytest.raises(StorageUnavailable):
            async with store.transaction() as tx:
                await asyncio.wait_for(tx.get(b"k"), HANG_GUARD)
        cluster.start_member(1)

        async def writes() -> bool:
            await put(store, {b"k": b"after"})
            return True

        await until(writes, "writes succeed once a quorum is back")
        assert await get(store, b"k") == b"after"
    finally:
        await store.close()
