"""PostgreSQL-specific behaviour: options and credentials, schema versioning, several stores on one schema,
pool bounds, timeouts, a server that is down, reconnection after ``pg_terminate_backend``, privileges.
Every test that touches the server uses its own random schema and drops it (``factory_postgresql``)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

import strongroom.storage.postgresql as module
from strongroom.errors import (
    InvalidRequest,
    RecordTooLarge,
    StorageError,
    StorageUnavailable,
    TransactionConflict,
)
from strongroom.storage.base import Transaction, transactional
from strongroom.storage.postgresql import MAX_KEY_BYTES, PostgresStore
from strongroom.storage.postgresql_config import PASSWORD_ENV, parse_url
from strongroom.storage.url import open_store
from tests.conformance.factory_postgresql import URL, admin, config, drop_schema, new_schema, require_server
from tests.conformance.suite import put
from tests.support.server import free_port

# -- URL and options (no server needed) -------------------------------------------------------------------


def test_url_options_and_defaults() -> None:
    cfg = parse_url(urlsplit("postgresql://alice@db.example:6432/vault"), {}, environ={})
    assert cfg.dsn == "postgresql://alice@db.example:6432/vault"
    assert (cfg.schema, cfg.pool_size, cfg.password) == ("strongroom", 10, None)
    assert (cfg.connect_timeout, cfg.command_timeout) == (5.0, 10.0)
    query = "schema=tenant_a&pool_size=3&connect_timeout=1.5&command_timeout=2&application_name=sr1"
    options = dict(parse_qsl(query + "&sslmode=verify-full&sslrootcert=/etc/ssl/pg-ca.pem"))
    cfg = parse_url(urlsplit("postgres://alice@db.example/vault"), options, environ={PASSWORD_ENV: "s3cret"})
    assert (cfg.schema, cfg.pool_size, cfg.connect_timeout, cfg.command_timeout) == ("tenant_a", 3, 1.5, 2.0)
    assert cfg.application_name == "sr1"
    # TLS settings travel in the DSN (asyncpg reads them there, as libpq does); the password never does.
    tls = "sslmode=verify-full&sslrootcert=%2Fetc%2Fssl%2Fpg-ca.pem"
    assert cfg.dsn == f"postgresql://alice@db.example/vault?{tls}"
    assert cfg.password == "s3cret"
    assert "s3cret" not in repr(cfg)


@pytest.mark.parametrize(
    ("url", "options", "message"),
    [
        ("postgresql://alice:pw@db/vault", {}, "must not contain passwords"),
        ("postgresql://db:notaport/vault", {}, "malformed"),
        ("postgresql://db/vault", {"password": "x"}, "unknown postgresql option"),
        ("postgresql://db/vault", {"schema": "Bad-Name"}, "schema"),
        ("postgresql://db/vault", {"schema": "x" * 64}, "schema"),
        ("postgresql://db/vault", {"pool_size": "0"}, "pool_size"),
        ("postgresql://db/vault", {"pool_size": "2.5"}, "pool_size"),
        ("postgresql://db/vault", {"connect_timeout": "soon"}, "connect_timeout"),
        ("postgresql://db/vault", {"command_timeout": "-1"}, "timeouts"),
        ("postgresql://db/vault", {"sslmode": "maybe"}, "sslmode"),
        ("postgresql://db/vault", {"passfile": "/nonexistent/pgpass"}, "passfile"),
    ],
)
def test_refused(url: str, options: dict[str, str], message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        parse_url(urlsplit(url), options, environ={})


def test_passfile_must_be_private(tmp_path: Path) -> None:
    passfile = tmp_path / "pgpass"
    passfile.write_text("*:*:*:strongroom:s3cret\n")
    passfile.chmod(0o644)
    with pytest.raises(InvalidRequest, match="chmod 600"):
        parse_url(urlsplit("postgresql://db/vault"), {"passfile": str(passfile)}, environ={})
    passfile.chmod(0o600)
    cfg = parse_url(urlsplit("postgresql://db/vault"), {"passfile": str(passfile)}, environ={})
    assert cfg.passfile == str(passfile)
    assert cfg.password is None


async def test_open_store_connects_lazily(monkeypatch: pytest.MonkeyPatch) -> None:
    # Opening never connects (nothing listens on port 1); the password comes from the environment.
    monkeypatch.setenv(PASSWORD_ENV, "not-in-the-url")
    for scheme in ("postgresql", "postgres"):
        store = open_store(f"{scheme}://nobody@127.0.0.1:1/none?connect_timeout=0.2")
        assert isinstance(store, PostgresStore)
        assert store.kind == "postgresql"
        assert store.config.password == "not-in-the-url"
        await store.close()


# -- against the server -----------------------------------------------------------------------------------


@pytest.fixture
async def schema() -> AsyncIterator[str]:
    require_server()
    name = new_schema()
    yield name
    await drop_schema(name)


def make(schema: str, **options: str) -> PostgresStore:
    return PostgresStore(config(schema, application_name=schema, **options))


async def test_schema_is_created_and_versioned(schema: str) -> None:
    store = make(schema)
    await put(store, {b"\x00k": b"\x00\xffopaque"})
    await store.close()
    conn = await admin()
    try:
        assert await conn.fetchval(f'SELECT version FROM "{schema}".schema_version') == 1
        # Exactly the bytes given, in bytea columns: the store adds nothing readable.
        rows = await conn.fetch(f'SELECT key, value, pg_typeof(key), pg_typeof(value) FROM "{schema}".kv')
        assert [(r[0], r[1], str(r[2]), str(r[3])) for r in rows] == [
            (b"\x00k", b"\x00\xffopaque", "bytea", "bytea")
        ]
        # A newer strongroom wrote this schema: refuse it rather than misread it.
        await conn.execute(f'UPDATE "{schema}".schema_version SET version = 2')
    finally:
        await conn.close()
    newer = make(schema)
    try:
        with pytest.raises(StorageError, match=r"layout version 2.*upgrade strongroom"):
            async with newer.transaction() as tx:
                await tx.get(b"\x00k")
        with pytest.raises(StorageError, match="layout version 2"):
            async with newer.transaction() as tx:
                tx.set(b"k", b"v")
    finally:
        await newer.close()


async def test_two_stores_on_one_schema_detect_conflicts(schema: str) -> None:
    # Two stores share nothing but the schema, as two nodes of a cluster do.
    a, b = make(schema), make(schema)
    try:
        await put(a, {b"k": b"0", b"dir/1": b"1"})

        async def lost_update() -> None:
            async with a.transaction() as t1:
                assert await t1.get(b"k") == b"0"
                async with b.transaction() as t2:
                    assert await t2.get(b"k") == b"0"
                    t2.set(b"k", b"b")
                t1.set(b"k", b"a")

        with pytest.raises(TransactionConflict):
            await lost_update()

        async with a.transaction() as tx:
            assert await tx.range(b"", b"\xff") == [(b"dir/1", b"1"), (b"k", b"b")]
    finally:
        await a.close()
        await b.close()


async def test_pool_wait_is_bounded(schema: str) -> None:
    store = make(schema, pool_size="2", connect_timeout="2")
    try:
        await put(store, {b"k": b"v"})
        async with store.transaction() as t1, store.transaction() as t2:
            await t1.get(b"k")
            await t2.get(b"k")  # both connections now held by open transactions

            async def third() -> None:
                async with store.transaction() as t3:
                    await t3.get(b"k")

            with pytest.raises(StorageUnavailable, match="no PostgreSQL connection became free"):
                await asyncio.wait_for(third(), 30)
        async with store.transaction() as t4:  # the held connections came back
            assert await t4.get(b"k") == b"v"
    finally:
        await store.close()


async def test_statement_timeout_is_unavailable_then_recovers(schema: str) -> None:
    writer = make(schema)  # the default timeout: only the blocked statements below may time out
    await put(writer, {b"k": b"v"})
    await writer.close()
    store = make(schema, command_timeout="2")
    try:
        conn = await admin()
        try:
            # Another session locks the table: a read would wait forever without command_timeout.
            await conn.execute("BEGIN")
            await conn.execute(f'LOCK TABLE "{schema}".kv IN ACCESS EXCLUSIVE MODE')

            async def read() -> None:
                async with store.transaction() as tx:
                    await tx.get(b"k")

            with pytest.raises(StorageUnavailable):
                await asyncio.wait_for(read(), 30)
            with pytest.raises(StorageUnavailable, match="outcome is unknown"):
                await asyncio.wait_for(put(store, {b"k": b"w"}), 30)
            await conn.execute("ROLLBACK")
        finally:
            await conn.close()
        async with store.transaction() as tx:
            assert await tx.get(b"k") in (b"v", b"w")  # the timed-out commit was cancelled or not
    finally:
        await store.close()


async def test_server_down_is_unavailable() -> None:
    async def attempt(store: PostgresStore) -> None:
        try:
            async with store.transaction() as tx:
                await tx.get(b"k")
        finally:
            await store.close()

    refused = open_store(f"postgresql://postgres@127.0.0.1:{free_port()}/test?connect_timeout=1")  # refused
    assert isinstance(refused, PostgresStore)
    with pytest.raises(StorageUnavailable, match="connect"):
        await asyncio.wait_for(attempt(refused), 30)

    # Something accepts but never answers (a hung server or a black-holing network): connect_timeout.
    accepted: list[asyncio.StreamWriter] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        hung = open_store(f"postgresql://postgres@127.0.0.1:{port}/test?connect_timeout=0.3&sslmode=disable")
        assert isinstance(hung, PostgresStore)
        with pytest.raises(StorageUnavailable, match="TimeoutError"):
            await asyncio.wait_for(attempt(hung), 30)
        assert accepted  # it did reach the silent server
    finally:
        for writer in accepted:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_reconnects_after_pg_terminate_backend_under_load(schema: str) -> None:
    store = make(schema, pool_size="4")
    workers, per_worker = 6, 60
    acknowledged = [0] * workers
    unavailable = [0] * workers
    progress = asyncio.Event()

    def bump(worker: int) -> Callable[[Transaction], Awaitable[None]]:
        async def run(tx: Transaction) -> None:
            key = b"counter/%d" % worker
            tx.set(key, b"%d" % (int(await tx.get(key) or b"0") + 1))
            await tx.range(b"counter/", b"counter0", limit=2)

        return run

    async def load(worker: int) -> None:
        for i in range(per_worker):
            try:
                await transactional(store, bump(worker))
            except StorageUnavailable:
                unavailable[worker] += 1  # in flight when its connection was killed: allowed
            else:
                acknowledged[worker] += 1
            if i == 10:
                progress.set()

    async def terminate_all() -> int:
        conn = await admin()
        try:
            rows: list[Any] = await conn.fetch(
                "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE application_name = $1",
                schema,
            )
        finally:
            await conn.close()
        return sum(1 for r in rows if r[0])

    async def killer() -> int:
        await progress.wait()
        killed = 0
        for _ in range(3):
            killed += await terminate_all()
            await asyncio.sleep(0.05)
        return killed

    try:
        *_, killed = await asyncio.wait_for(asyncio.gather(*(load(w) for w in range(workers)), killer()), 120)
        assert killed > 0
        # After the storm every transaction succeeds again.
        for _ in range(20):
            await transactional(store, bump(0))
            acknowledged[0] += 1
        # Another terminate while idle: the dead idle connections are replaced, nothing fails.
        assert await terminate_all() > 0
        for _ in range(10):
            await transactional(store, bump(1))
            acknowledged[1] += 1
        async with store.transaction() as tx:
            counters = dict(await tx.range(b"counter/", b"counter0"))
        for w in range(workers):
            value = int(counters.get(b"counter/%d" % w, b"0"))
            # Every acknowledged commit is there; an unavailable one may or may not have happened.
            assert acknowledged[w] <= value <= acknowledged[w] + unavailable[w], (w, value)
    finally:
        await store.close()


async def test_concurrent_inserts_into_one_index_page_do_not_conflict(schema: str) -> None:
    # Each transaction reads a key as absent and writes it; all keys share one B-tree page, so SSI's page
    # locks make the commits look dependent. Those false failures are retried inside the store and never
    # reach the caller: only a real change of a read is a TransactionConflict.
    store = make(schema, pool_size="8")
    try:

        async def task(i: int) -> None:
            for j in range(4):
                async with store.transaction() as tx:
                    key = b"n/%03d/%d" % (i, j)
                    assert await tx.get(key) is None
                    assert await tx.range(b"n/%03d/" % i, b"n/%03d0" % i) == [
                        (b"n/%03d/%d" % (i, n), b"x") for n in range(j)
                    ]
                    tx.set(key, b"x")
                    await asyncio.sleep(0)

        await asyncio.gather(*(task(i) for i in range(40)))
        async with store.transaction() as tx:
            assert len(await tx.range(b"n/", b"n0")) == 160
    finally:
        await store.close()


async def test_exclusive_commit_run(schema: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # Every commit takes the path otherwise used only after serialization failures: arguments as SQL
    # literals in one multi-statement query. Same results, same conflict detection.
    monkeypatch.setattr(module, "_OPTIMISTIC_ATTEMPTS", 0)
    store = make(schema)
    tricky = bytes(range(256)) + b"'\\\"$$;--"
    try:
        await put(store, {b"a": b"1", b"b": tricky, b"c": b"", b"d/1": b"x", b"d/2": b"y"})
        async with store.transaction() as tx:
            assert await tx.get(b"b") == tricky
            assert await tx.get(b"absent") is None
            assert await tx.range(b"d/", b"d0", limit=1, reverse=True) == [(b"d/2", b"y")]
            tx.clear_range(b"d/", b"d0")
            tx.clear(b"a")
            tx.set(b"d/3", tricky[::-1])
            tx.set(tricky, b"key with every byte")
        async with store.transaction() as tx:
            assert dict(await tx.range(b"", b"\xff\xff")) == {
                b"b": tricky,
                b"c": b"",
                b"d/3": tricky[::-1],
                tricky: b"key with every byte",
            }

        async def phantom() -> None:
            async with store.transaction() as t1:
                assert await t1.get(b"absent") is None
                async with store.transaction() as t2:
                    t2.set(b"absent", b"now present")
                t1.set(b"e", b"1")

        with pytest.raises(TransactionConflict):
            await phantom()
    finally:
        await store.close()


async def test_longest_key(schema: str) -> None:
    store = make(schema)
    assert store.limits.max_key_bytes == MAX_KEY_BYTES  # capped below the default StoreLimits
    longest = os.urandom(MAX_KEY_BYTES)  # incompressible, like real keys
    try:
        await put(store, {longest: b"v"})
        async with store.transaction() as tx:
            assert await tx.get(longest) == b"v"
            with pytest.raises(RecordTooLarge):
                tx.set(longest + b"x", b"v")
    finally:
        await store.close()


async def test_least_privilege_role(schema: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # The grants docs/storage/postgresql.md lists are enough once the schema exists.
    owner = make(schema)
    await put(owner, {b"k": b"v"})
    await owner.close()
    role = f"{schema}_role"
    conn = await admin()
    try:
        await conn.execute(f'CREATE ROLE "{role}" LOGIN')
        await conn.execute(f'GRANT USAGE ON SCHEMA "{schema}" TO "{role}"')
        await conn.execute(f'GRANT SELECT, INSERT, UPDATE, DELETE ON "{schema}".kv TO "{role}"')
        await conn.execute(f'GRANT SELECT ON "{schema}".schema_version TO "{role}"')
        await conn.execute(f'GRANT UPDATE ON "{schema}".commit_lock TO "{role}"')
        parts = urlsplit(URL)
        url = parts._replace(netloc=f"{role}@{parts.hostname}:{parts.port or 5432}")
        store = PostgresStore(parse_url(url, {"schema": schema}))
        try:
            async with store.transaction() as tx:
                assert await tx.get(b"k") == b"v"
                assert await tx.range(b"", b"\xff") == [(b"k", b"v")]
                tx.set(b"k2", b"v2")
                tx.clear_range(b"a", b"b")
            monkeypatch.setattr(module, "_OPTIMISTIC_ATTEMPTS", 0)  # the exclusive commit too
            async with store.transaction() as tx:
                assert await tx.get(b"k2") == b"v2"
                tx.clear(b"k2")
        finally:
            await store.close()
    finally:
        await conn.execute(f'DROP OWNED BY "{role}"')
        await conn.execute(f'DROP ROLE IF EXISTS "{role}"')
        await conn.close()


async def test_read_only_anomaly_is_a_conflict(schema: str) -> None:
    # Two serializable writers whose commits overlap (as two sr_commit calls can): A reads y, B rewrites y
    # and commits, A writes x and commits. SSI orders A before B. A read-only snapshot taken after B's
    # commit that then reads x (A invisible) would show B without A: no serial order gives that. With
    # REPEATABLE READ it would pass silently; SERIALIZABLE READ ONLY makes it a TransactionConflict.
    store = make(schema)
    await put(store, {b"x": b"0", b"y": b"0"})
    a, b = await admin(), await admin()
    kv = f'"{schema}".kv'
    try:
        await a.execute("BEGIN ISOLATION LEVEL SERIALIZABLE")
        assert await a.fetchval(f"SELECT value FROM {kv} WHERE key = 'y'") == b"0"
        await b.execute(
            f"BEGIN ISOLATION LEVEL SERIALIZABLE; UPDATE {kv} SET value = 'b' WHERE key = 'y'; COMMIT"
        )
        async with store.transaction() as ro:
            assert await ro.get(b"y") == b"b"
            await a.execute(f"UPDATE {kv} SET value = 'a' WHERE key = 'x'")
            await a.execute("COMMIT")
            with pytest.raises(TransactionConflict):
                await ro.get(b"x")
    finally:
        await a.close()
        await b.close()
        await store.close()
