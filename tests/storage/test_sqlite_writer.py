"""SQLite writer and transaction details: a failing commit group, the per-transaction read cache."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from strongroom.errors import StorageError, TransactionConflict
from strongroom.storage import sqlite_writer
from strongroom.storage.sqlite import SqliteStore

# Generous: only a hang could take this long.
NO_HANG_S = 10.0


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    s = SqliteStore(tmp_path / "s.db", synchronous="NORMAL")
    yield s
    await s.close()


async def _get(store: SqliteStore, key: bytes) -> bytes | None:
    async with store.transaction() as tx:
        return await tx.get(key)


async def _put(store: SqliteStore, key: bytes, value: Any) -> None:
    async with store.transaction() as tx:
        tx.set(key, value)


async def _one_group(store: SqliteStore, writes: list[tuple[bytes, Any]]) -> list[BaseException | None]:
    """Commit one transaction per write, all in one event-loop turn, so they reach the writer together."""
    results = await asyncio.wait_for(
        asyncio.gather(*(_put(store, k, v) for k, v in writes), return_exceptions=True), NO_HANG_S
    )
    return [r if isinstance(r, BaseException) else None for r in results]


# -- a failure inside a commit group ------------------------------------------------------------------


async def test_exception_in_apply_fails_the_group_and_the_writer_recovers(
    store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = sqlite_writer._apply

    def apply(conn: sqlite3.Connection, commit: sqlite_writer.Commit) -> None:
        if b"poison" in commit.writes:
            raise RuntimeError("injected")  # not a sqlite3.Error: any exception must be handled
        original(conn, commit)

    monkeypatch.setattr(sqlite_writer, "_apply", apply)
    # "a" is applied before "poison" fails: the group's rollback must undo it too.
    outcomes = await _one_group(store, [(b"a", b"1"), (b"poison", b"x"), (b"b", b"2")])
    assert all(isinstance(o, StorageError) for o in outcomes), outcomes
    assert not any(isinstance(o, TransactionConflict) for o in outcomes)
    for key in (b"a", b"poison", b"b"):
        assert await asyncio.wait_for(_get(store, key), NO_HANG_S) is None

    # The writer is still usable and the next transactions commit normally.
    await asyncio.wait_for(_put(store, b"after", b"ok"), NO_HANG_S)
    assert await _one_group(store, [(b"a", b"1"), (b"b", b"2")]) == [None, None]
    assert await _get(store, b"after") == b"ok"
    assert await _get(store, b"a") == b"1"


async def test_unbindable_value_fails_the_group_and_the_writer_recovers(store: SqliteStore) -> None:
    # A list passes the buffer's size checks (it has a len) but SQLite cannot bind it.
    outcomes = await _one_group(store, [(b"a", b"1"), (b"bad", [1, 2]), (b"b", b"2")])
    assert all(isinstance(o, StorageError) for o in outcomes), outcomes
    assert await _get(store, b"a") is None
    await asyncio.wait_for(_put(store, b"after", b"ok"), NO_HANG_S)
    assert await _get(store, b"after") == b"ok"


async def test_conflict_detection_still_works_after_a_failed_group(
    store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _put(store, b"k", b"0")
    original = sqlite_writer._apply

    def apply(conn: sqlite3.Connection, commit: sqlite_writer.Commit) -> None:
        if b"poison" in commit.writes:
            raise RuntimeError("injected")
        original(conn, commit)

    monkeypatch.setattr(sqlite_writer, "_apply", apply)

    async def scenario() -> None:
        async with store.transaction() as old:
            assert await old.get(b"k") == b"0"
            await _put(store, b"k", b"1")
            assert await _one_group(store, [(b"poison", b"x")]) != [None]
            old.set(b"j", b"1")

    with pytest.raises(TransactionConflict):
        await asyncio.wait_for(scenario(), NO_HANG_S)


# -- the per-transaction read cache --------------------------------------------------------------------


async def test_key_read_twice_returns_the_first_value_and_conflicts_at_commit(store: SqliteStore) -> None:
    await _put(store, b"k", b"v0")

    async def scenario() -> None:
        async with store.transaction() as t1:
            assert await t1.get(b"k") == b"v0"
            conn = t1._conn
            assert conn is not None
            statements: list[str] = []
            conn.set_trace_callback(statements.append)
            try:
                await _put(store, b"k", b"v1")  # commits between t1's two reads
                assert await t1.get(b"k") == b"v0"
            finally:
                conn.set_trace_callback(None)
            assert statements == [], "the second read should come from the cache, not SQLite"
            t1.set(b"other", b"x")

    with pytest.raises(TransactionConflict):
        await scenario()
    assert await _get(store, b"k") == b"v1"
    assert await _get(store, b"other") is None


async def test_cached_absent_key_conflicts_when_another_store_inserts_it(tmp_path: Path) -> None:
    # The other store's commit is unknown to this store's write log: the full re-check must use the
    # cached None and see the insert.
    a = SqliteStore(tmp_path / "s.db", synchronous="NORMAL")
    b = SqliteStore(tmp_path / "s.db", synchronous="NORMAL")
    try:

        async def scenario() -> None:
            async with a.transaction() as t1:
                assert await t1.get(b"k") is None
                await _put(b, b"k", b"new")
                assert await t1.get(b"k") is None
                t1.set(b"k", b"mine")

        with pytest.raises(TransactionConflict):
            await scenario()
        assert await _get(a, b"k") == b"new"
    finally:
        await a.close()
        await b.close()


# -- value comparison --------------------------------------------------------------------------------


async def test_rewrite_with_the_value_read_does_not_conflict(store: SqliteStore) -> None:
    # SQLite re-checks reads by value (docs/spec/storage-layout.md, sqlite): a read key written since the
    # snapshot but holding the value read is still valid at the commit point, so the commit serializes.
    await _put(store, b"k", b"0")
    async with store.transaction() as t1:
        assert await t1.get(b"k") == b"0"
        await _put(store, b"k", b"1")
        await _put(store, b"k", b"0")
        t1.set(b"j", b"1")
    assert await _get(store, b"j") == b"1"
