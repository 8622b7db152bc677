"""The Redis backend beyond the conformance suite: URLs, credentials, failures, history and pruning.

Runs against the real Redis of ``tests/conformance/factory_redis.py`` (skipped locally if absent, a
failure in CI). Every store uses its own random key prefix and deletes it when closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis.asyncio
import redis.exceptions

import strongroom.storage.redis as backend
from strongroom.errors import InvalidRequest, StorageUnavailable, TransactionConflict
from strongroom.storage.base import Transaction, transactional
from strongroom.storage.redis import PASSWORD_ENV, RedisStore
from strongroom.storage.redis_scripts import COMMIT
from strongroom.storage.url import open_store
from tests.conformance.factory_redis import (
    URL,
    DroppingRedisStore,
    admin,
    delete_prefix,
    open_test_store,
    require_redis,
)
from tests.support.require import require_binary
from tests.support.server import free_port


@pytest.fixture
async def store() -> AsyncIterator[DroppingRedisStore]:
    s = open_test_store()
    yield s
    await s.close()


async def put(store: RedisStore, items: Mapping[bytes, bytes | None]) -> None:
    async with store.transaction() as tx:
        for k, v in items.items():
            if v is None:
                tx.clear(k)
            else:
                tx.set(k, v)


async def keys_under(prefix: str) -> set[bytes]:
    client = admin()
    try:
        return {k async for k in client.scan_iter(match=prefix + "*", count=1000)}
    finally:
        await client.aclose()


# -- module and URLs ------------------------------------------------------------------------------------


def test_module_does_not_shadow_the_redis_package() -> None:
    import redis
    import redis.asyncio

    # strongroom/storage/redis.py must not be what "import redis" finds (absolute imports).
    assert "strongroom" not in Path(redis.__file__).parts
    assert backend.__name__ == "strongroom.storage.redis"
    assert redis.asyncio.Redis is not None


def test_open_url_options(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PASSWORD_ENV, raising=False)
    store = open_store("redis://127.0.0.1:6390/3?prefix=app1:&timeout=0.5&snapshot_window=2")
    assert isinstance(store, RedisStore)
    assert store.kind == "redis"
    assert store.prefix == "app1:"
    assert store._window_ms == 2000
    params = store._client._params
    assert (params["host"], params["port"], params["db"]) == ("127.0.0.1", 6390, 3)
    assert store._client._timeout == 0.5
    assert params["password"] is None
    defaults = open_store("redis://localhost")
    assert isinstance(defaults, RedisStore)
    assert defaults.prefix == "strongroom:"
    assert (defaults._client._params["port"], defaults._client._params["db"]) == (6379, 0)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("redis://localhost/0?durable=1", "unknown redis option"),
        ("redis://localhost/zero", "database number"),
        ("redis://localhost:99999/0", "invalid port"),
        ("redis://localhost/0?prefix=", "must not be empty"),
        ("redis://localhost/0?timeout=-1", "must be positive"),
        ("redis://localhost/0?timeout=soon", "must be numbers"),
        ("redis://user:secret@localhost/0", "must not contain passwords"),
    ],
)
def test_refused_urls(url: str, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        open_store(url)


async def test_password_comes_from_the_environment_and_least_privilege_suffices(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The ACL user docs/storage/redis.md recommends: its prefix only and the commands the backend uses
    # (no CONFIG: the start-up check of the eviction policy then quietly does without it).
    require_redis()
    user, password = f"srtest-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    prefix = f"srtest:{uuid.uuid4().hex}:"
    client = admin()
    await client.execute_command(  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated
        "ACL", "SETUSER", user, "on", f">{password}", f"~{prefix}*", "resetchannels", "-@all",
        *(f"+{c}" for c in backend.ACL_COMMANDS),
    )  # fmt: skip
    parts = urlsplit(URL)
    url = f"redis://{user}@{parts.hostname}:{parts.port or 6379}{parts.path}?prefix={prefix}"
    try:
        monkeypatch.setenv(PASSWORD_ENV, password)
        good = open_store(url)
        assert isinstance(good, RedisStore)
        assert password not in url
        async with good.transaction() as tx:
            tx.set(b"k", b"v")
        async with good.transaction() as tx:
            assert await tx.get(b"k") == b"v"
            assert await tx.range(b"", b"\xff") == [(b"k", b"v")]
            tx.clear_range(b"", b"\xff")
        await good.close()

        monkeypatch.setenv(PASSWORD_ENV, "wrong")
        bad = open_store(url)
        with pytest.raises(StorageUnavailable, match="refused the credentials"):
            async with bad.transaction() as tx:
                await tx.get(b"k")
        await bad.close()
    finally:
        await client.acl_deluser(user)
        await client.aclose()
        await delete_prefix(prefix)


# -- failures ---------------------------------------------------------------------------------------------


async def test_unreachable_server_is_storage_unavailable() -> None:
    store = RedisStore("127.0.0.1", free_port(), timeout=2)  # nothing listens there
    with pytest.raises(StorageUnavailable):
        async with store.transaction() as tx:
            await tx.get(b"k")
    with pytest.raises(StorageUnavailable):
        async with store.transaction() as tx:
            tx.set(b"k", b"v")
    await store.close()


async def test_silent_server_times_out() -> None:
    # Accepts connections and never answers: every operation must give up after the timeout.
    held: list[asyncio.StreamWriter] = []

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    store = RedisStore("127.0.0.1", port, timeout=0.2)

    async def get() -> None:
        async with store.transaction() as tx:
            await tx.get(b"k")

    try:
        with pytest.raises(StorageUnavailable, match="timed out"):
            await get()
        # Many at once: beyond the one-call connections they wait on the shared one, which times out too.
        results = await asyncio.gather(*(get() for _ in range(10)), return_exceptions=True)
        assert all(isinstance(r, StorageUnavailable) for r in results), results
    finally:
        await store.close()
        for w in held:
            w.close()
        server.close()
        await server.wait_closed()


async def test_client_kill_during_load_recovers(store: DroppingRedisStore) -> None:
    workers, rounds = 8, 60
    done = 0
    outcomes: list[str] = []

    async def bump(tx: Transaction) -> None:
        value = int(await tx.get(b"counter") or b"0")
        await asyncio.sleep(0)
        tx.set(b"counter", b"%d" % (value + 1))

    killer = admin()
    killed = 0

    async def worker() -> None:
        nonlocal done, killed
        for _ in range(rounds):
            try:
                await transactional(store, bump, attempts=1000)
                outcomes.append("ok")
            except StorageUnavailable:
                outcomes.append("unavailable")
            done += 1
            if done in (50, 150, 300):
                # Cut every client connection (not the killer's own) while the others are mid-flight.
                killed += await killer.client_kill_filter(_type="normal", skipme=True)

    try:
        await asyncio.gather(*(worker() for _ in range(workers)))
    finally:
        await killer.aclose()
    assert killed > 0  # the load's connections really were cut
    assert len(outcomes) == workers * rounds
    # A lost connection is retried once on a fresh one (a kill never cuts the retry), so no caller saw it.
    assert outcomes.count("unavailable") == 0
    ok = outcomes.count("ok")
    async with store.transaction() as tx:  # the store works again
        final = int(await tx.get(b"counter") or b"0")
        tx.set(b"after", b"1")
    # Every increment is there exactly once: a retried commit is not applied twice.
    assert final == ok
    async with store.transaction() as tx:
        assert await tx.get(b"after") == b"1"


async def test_script_flush_is_survived(store: DroppingRedisStore) -> None:
    await put(store, {b"a": b"1"})
    client = admin()
    try:
        await client.script_flush()
    finally:
        await client.aclose()
    async with store.transaction() as tx:
        assert await tx.get(b"a") == b"1"
        tx.set(b"b", b"2")
    async with store.transaction() as tx:
        assert await tx.range(b"", b"\xff") == [(b"a", b"1"), (b"b", b"2")]
    client = admin()
    try:
        await client.script_flush()
    finally:
        await client.aclose()

    async def get() -> bytes | None:
        async with store.transaction() as tx:
            return await tx.get(b"b")

    # Concurrent calls (most on the shared pipelined connection) all reload and succeed.
    assert await asyncio.gather(*(get() for _ in range(20))) == [b"2"] * 20


async def test_evicting_redis_is_refused() -> None:
    require_redis()
    client = admin()
    before = str((await client.config_get("maxmemory-policy"))["maxmemory-policy"])
    store = open_test_store()
    try:
        await client.config_set("maxmemory-policy", "allkeys-lru")
        with pytest.raises(StorageUnavailable, match="noeviction"):
            async with store.transaction() as tx:
                await tx.get(b"k")
    finally:
        await client.config_set("maxmemory-policy", before)
        await client.aclose()
        await store.close()


# -- commits, history and pruning --------------------------------------------------------------------------


async def test_retried_commit_applies_once(store: DroppingRedisStore) -> None:
    await put(store, {b"n": b"0"})
    async with store.transaction() as tx:
        assert await tx.get(b"n") == b"0"
        tx.set(b"n", b"1")
        args = tx._commit_args()
        # The commit's first run, as if its reply was lost with the connection...
        assert await store._client.run(COMMIT, args) == 1
        # ...and the retry: recognised by its token, not applied again (nor refused as a conflict).
        assert await store._client.run(COMMIT, args) == 2
        tx._writes.clear()  # already committed above
    client = admin()
    try:
        assert await client.hget(store.prefix + "meta", "seq") == b"2"
    finally:
        await client.aclose()


async def test_old_snapshot_sees_every_earlier_version(store: DroppingRedisStore) -> None:
    await put(store, {b"k": b"v0", b"d": b"gone", b"r/1": b"1", b"r/3": b"3"})
    async with store.transaction() as reader:
        assert await reader.get(b"k") == b"v0"
        for i in range(1, 6):
            await put(store, {b"k": b"v%d" % i, b"r/2": b"new%d" % i})
        await put(store, {b"d": None, b"r/1": None})
        async with store.transaction() as tx:
            tx.clear_range(b"r/", b"r0")
        assert await reader.get(b"d") == b"gone"
        assert await reader.range(b"r/", b"r0") == [(b"r/1", b"1"), (b"r/3", b"3")]
        assert await reader.range(b"r/", b"r0", reverse=True, limit=1) == [(b"r/3", b"3")]
        assert await reader.range(b"", b"\xff", limit=2) == [(b"d", b"gone"), (b"k", b"v0")]
    async with store.transaction() as now:
        assert await now.get(b"k") == b"v5"
        assert await now.range(b"", b"\xff") == [(b"k", b"v5")]


async def test_snapshot_older_than_the_window_conflicts_and_is_retried() -> None:
    store = open_test_store(snapshot_window=0.001)
    try:
        await put(store, {b"a": b"0", b"b": b"0"})
        attempts = 0

        async def read_both(tx: Transaction) -> tuple[bytes | None, bytes | None]:
            nonlocal attempts
            attempts += 1
            a = await tx.get(b"a")
            if attempts == 1:
                await put(store, {b"b": b"1"})
                await asyncio.sleep(0.02)  # that commit is now older than the 1 ms window...
                await put(store, {b"c": b"1"})  # ...and this one prunes history up to it
            return a, await tx.get(b"b")

        assert await transactional(store, read_both) == (b"0", b"1")
        assert attempts == 2

        async def stale_commit() -> None:
            async with store.transaction() as tx:
                await tx.get(b"a")
                await put(store, {b"x": b"1"})
                await asyncio.sleep(0.02)
                await put(store, {b"y": b"1"})
                tx.set(b"a", b"stale")

        with pytest.raises(TransactionConflict):
            await stale_commit()
    finally:
        await store.close()


async def test_history_and_tombstones_are_pruned() -> None:
    store = open_test_store(snapshot_window=0.001)
    p = store.prefix
    try:
        await put(store, {b"k%d" % i: b"v" for i in range(20)})
        await put(store, {b"k%d" % i: (b"w" if i % 2 else None) for i in range(20)})
        async with store.transaction() as tx:
            tx.clear_range(b"k15", b"k19")
        # The clear_range just now gave history to the keys it removed (older history may already be gone:
        # commits more than 1 ms apart prune each other's).
        before = {k for k in await keys_under(p) if k.startswith((p + "h:").encode())}
        assert {(p + "h:k15").encode(), (p + "h:k17").encode()} <= before
        await asyncio.sleep(0.02)
        await put(store, {b"z": b"last"})  # prunes everything older than the window
        history = {k for k in await keys_under(p) if k.startswith((p + "h:").encode())}
        assert history == {(p + "h:z").encode()}
        client = admin()
        try:
            live = {b"k%d" % i for i in range(1, 20, 2) if not b"k15" <= b"k%d" % i < b"k19"} | {b"z"}
            assert set(await client.zrange(p + "idx", 0, -1)) == live  # no tombstones left
            assert await client.hkeys(p + "lw") == [b"z"]
            assert await client.zrange(p + "gc", 0, -1) == [b"z"]
            assert await client.hlen(p + "hv") == 0  # no old values kept (z had none)
        finally:
            await client.aclose()
        async with store.transaction() as tx:
            assert [k for k, _ in await tx.range(b"", b"\xff")] == sorted(live)
    finally:
        await store.close()
    assert await keys_under(p) == set()  # closing the test store deleted its prefix


async def test_more_keys_than_one_script_call_takes(store: DroppingRedisStore) -> None:
    # Lua's unpack() takes ~8000 values at most: the scripts work in chunks of 1000 keys.
    many = {b"m/%05d" % i: b"%d" % i for i in range(2500)}
    await put(store, many)

    async def stale() -> None:
        async with store.transaction() as t1:
            assert len(await t1.range(b"m/", b"m0")) == 2500
            for k in list(many)[:1200]:
                await t1.get(k)
            assert [k for k, _ in await t1.range(b"m/", b"m0", limit=3, reverse=True)] == [
                b"m/02499", b"m/02498", b"m/02497",
            ]  # fmt: skip
            await put(store, {b"m/01234": b"changed"})
            assert await t1.get(b"m/01234") == b"1234"
            t1.set(b"out", b"1")

    with pytest.raises(TransactionConflict):
        await stale()
    async with store.transaction() as t2:
        t2.clear_range(b"m/", b"m0")
    async with store.transaction() as t3:
        assert await t3.range(b"m/", b"m0") == []


async def test_prefixes_are_isolated() -> None:
    one, two = open_test_store(), open_test_store()
    try:
        await put(one, {b"k": b"one"})
        await put(two, {b"k": b"two"})
        async with one.transaction() as tx:
            assert await tx.range(b"", b"\xff") == [(b"k", b"one")]
    finally:
        await one.close()
        await two.close()


# -- a Redis of our own: kill -9, restarts, durability -------------------------------------------------------


class OwnRedis:
    """A ``redis-server`` this test starts on a free loopback port, in its own directory; stopped by PID."""

    def __init__(self, directory: Path, *settings: str) -> None:
        self.binary = require_binary("redis-server")
        self.directory = directory
        self.settings = settings
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def spawn(self) -> None:
        argv = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory),
                "--daemonize", "no", "--logfile", "redis.log", *self.settings]  # fmt: skip
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL)

    async def start(self) -> None:
        """Start it (again: same port and directory) and wait until it answers."""
        self.spawn()
        client = redis.asyncio.Redis(port=self.port)
        try:
            for _ in range(200):
                with contextlib.suppress(redis.exceptions.RedisError):
                    if await client.ping():
                        return
                await asyncio.sleep(0.05)
            raise AssertionError("redis-server did not start")
        finally:
            await client.aclose()

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, sig)
            self.proc.wait(10)
        self.proc = None


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[Callable[..., OwnRedis]]:
    started: list[OwnRedis] = []

    def make(*settings: str) -> OwnRedis:
        server = OwnRedis(tmp_path, *settings)
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop(signal.SIGKILL)


@pytest.mark.slow
async def test_acknowledged_commits_survive_redis_kill_9_with_aof(
    own_redis: Callable[..., OwnRedis],
) -> None:
    server = own_redis("--appendonly", "yes", "--appendfsync", "always", "--save", "")
    await server.start()
    store = RedisStore("127.0.0.1", server.port, timeout=2)
    acknowledged: list[int] = []
    failed: list[int] = []

    async def worker(w: int) -> None:
        # Each worker commits one transaction after another, so those started after the kill must fail.
        for j in range(50):
            i = w * 50 + j
            # Two keys per transaction: after the crash both must be there, or neither.
            try:
                async with store.transaction() as tx:
                    tx.set(b"a/%04d" % i, b"%d" % i)
                    tx.set(b"b/%04d" % i, b"%d" % i)
            except StorageUnavailable:
                failed.append(i)
            else:
                acknowledged.append(i)
                if len(acknowledged) == 150:
                    server.stop(signal.SIGKILL)  # mid-load, with other workers' commits in flight

    await asyncio.gather(*(worker(w) for w in range(8)))
    await store.close()
    assert len(acknowledged) >= 150
    assert failed  # the kill did cut the load short
    await server.start()  # same directory: replays the append-only file
    store = RedisStore("127.0.0.1", server.port, timeout=2)
    try:
        async with store.transaction() as tx:
            a = dict(await tx.range(b"a/", b"a0"))
            b = dict(await tx.range(b"b/", b"b0"))
        assert {int(v) for v in a.values()} >= set(acknowledged)  # nothing acknowledged was lost
        assert {k[2:] for k in a} == {k[2:] for k in b}  # and no transaction is half there
    finally:
        await store.close()


@pytest.mark.slow
async def test_redis_down_then_restarted_empty(own_redis: Callable[..., OwnRedis]) -> None:
    server = own_redis("--appendonly", "no", "--save", "")
    await server.start()
    store = RedisStore("127.0.0.1", server.port, timeout=1)
    try:
        await put(store, {b"k": b"1"})
        async with store.transaction() as old:
            assert await old.get(b"k") == b"1"
            server.stop()
            with pytest.raises(StorageUnavailable):  # down: an error, not a hang
                await old.get(b"j")
            await server.start()
            # Redis kept nothing (no AOF, no RDB): everything is gone, and the snapshot taken before is
            # refused instead of being mixed with the new, empty state.
            with pytest.raises(TransactionConflict):
                await old.get(b"j")
        async with store.transaction() as tx:  # scripts reloaded, store usable again
            assert await tx.get(b"k") is None
            tx.set(b"k", b"2")
        async with store.transaction() as tx:
            assert await tx.get(b"k") == b"2"
    finally:
        await store.close()


async def test_two_stores_transfer_money_and_every_snapshot_balances() -> None:
    # Two stores on one prefix stand for two strongroom processes. Transfers between accounts keep the
    # total constant, so every snapshot (a range over all accounts) must sum to it, and so must the end.
    first = open_test_store()
    parts = urlsplit(URL)
    second = RedisStore(
        parts.hostname or "127.0.0.1",
        parts.port or 6379,
        db=int(parts.path.strip("/") or "0"),
        username=parts.username,
        password=os.environ.get(PASSWORD_ENV) or None,
        prefix=first.prefix,
    )
    accounts, total = 12, 12 * 100
    await put(first, {b"acct/%02d" % i: b"100" for i in range(accounts)})
    sums: list[int] = []

    async def transfer(store: RedisStore, seed: int) -> None:
        for n in range(40):
            src, dst = (seed * 7 + n) % accounts, (seed * 5 + n * 3 + 1) % accounts
            if src == dst:
                continue

            async def move(tx: Transaction, src: int = src, dst: int = dst) -> None:
                a = int(await tx.get(b"acct/%02d" % src) or b"0")
                await asyncio.sleep(0)
                b = int(await tx.get(b"acct/%02d" % dst) or b"0")
                tx.set(b"acct/%02d" % src, b"%d" % (a - 3))
                tx.set(b"acct/%02d" % dst, b"%d" % (b + 3))

            await transactional(store, move, attempts=1000)

    async def audit(store: RedisStore) -> None:
        for _ in range(60):
            async with store.transaction() as tx:
                first_half = await tx.range(b"acct/", b"acct/06")
                await asyncio.sleep(0)  # commits land between the two reads of one snapshot
                second_half = await tx.range(b"acct/06", b"acct0")
                sums.append(sum(int(v) for _, v in first_half + second_half))

    try:
        await asyncio.gather(
            *(transfer(first if i % 2 else second, i) for i in range(8)), audit(first), audit(second)
        )
        assert sums
        assert set(sums) == {total}
        async with second.transaction() as tx:
            assert sum(int(v) for _, v in await tx.range(b"acct/", b"acct0")) == total
    finally:
        await second.close()
        await first.close()


@pytest.mark.slow
async def test_out_of_memory_refuses_whole_commits_and_reads_go_on(
    own_redis: Callable[..., OwnRedis],
) -> None:
    server = own_redis("--maxmemory", "4mb", "--maxmemory-policy", "noeviction", "--save", "")
    await server.start()
    store = RedisStore("127.0.0.1", server.port, timeout=2)
    value = b"v" * 8192
    try:
        refused: StorageUnavailable | None = None
        for i in range(2000):
            try:
                async with store.transaction() as tx:
                    tx.set(b"a/%04d" % i, value)
                    tx.set(b"b/%04d" % i, value)
            except StorageUnavailable as exc:
                refused = exc
                break
        assert refused is not None
        assert "OutOfMemoryError" in str(refused)
        async with store.transaction() as tx:  # reads still work (the read scripts are no-writes)
            a = dict(await tx.range(b"a/", b"a0"))
            b = dict(await tx.range(b"b/", b"b0"))
        assert a  # some commits went through before memory ran out...
        assert {k[2:] for k in a} == {k[2:] for k in b}  # ...and the refused one wrote nothing
    finally:
        await store.close()
