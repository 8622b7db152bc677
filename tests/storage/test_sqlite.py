"""SQLite-specific behaviour: files, several stores/processes on one file, crash safety."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from strongroom.errors import TransactionConflict
from strongroom.storage.base import Transaction, transactional
from strongroom.storage.sqlite import SqliteStore

HERE = Path(__file__).parent


async def test_creates_private_directories_and_file(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "store.db"
    store = SqliteStore(path)
    async with store.transaction() as tx:
        tx.set(b"k", b"v")
    await store.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "a").stat().st_mode) == 0o700


async def test_reopen_keeps_data(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db")
    async with store.transaction() as tx:
        tx.set(b"k", b"v")
    await store.close()
    store = SqliteStore(tmp_path / "s.db")
    async with store.transaction() as tx:
        assert await tx.get(b"k") == b"v"
    await store.close()


async def test_two_stores_on_one_file_detect_conflicts(tmp_path: Path) -> None:
    # Two stores share nothing but the file, as two worker processes do.
    a = SqliteStore(tmp_path / "s.db", synchronous="NORMAL")
    b = SqliteStore(tmp_path / "s.db", synchronous="NORMAL")
    try:
        async with a.transaction() as tx:
            tx.set(b"k", b"0")

        async def scenario1() -> None:
            async with a.transaction() as t1:
                assert await t1.get(b"k") == b"0"
                async with b.transaction() as t2:
                    assert await t2.get(b"k") == b"0"
                    t2.set(b"k", b"b")
                t1.set(b"k", b"a")

        with pytest.raises(TransactionConflict):
            await scenario1()
        async with a.transaction() as tx:
            assert await tx.get(b"k") == b"b"
    finally:
        await a.close()
        await b.close()


COUNTER_CHILD = """
import asyncio, sys
from strongroom.storage.base import transactional
from strongroom.storage.sqlite import SqliteStore

async def bump(tx):
    tx.set(b"n", b"%d" % (int(await tx.get(b"n") or b"0") + 1))

async def main():
    store = SqliteStore(sys.argv[1], synchronous="NORMAL")
    for _ in range(int(sys.argv[2])):
        await transactional(store, bump, attempts=10_000)
    await store.close()

asyncio.run(main())
"""


def test_several_processes_increment_one_counter(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    asyncio.run(SqliteStore(path).close())  # create the schema once, before the children race
    procs = [subprocess.Popen([sys.executable, "-c", COUNTER_CHILD, str(path), "60"]) for _ in range(3)]
    assert [p.wait(timeout=60) for p in procs] == [0, 0, 0]

    async def read() -> bytes | None:
        store = SqliteStore(path)
        async with store.transaction() as tx:
            value = await tx.get(b"n")
        await store.close()
        return value

    assert asyncio.run(read()) == b"180"


async def test_group_commit_decides_each_transaction(tmp_path: Path) -> None:
    # Many transactions reach the writer together; the counter proves each one was validated on its own.
    store = SqliteStore(tmp_path / "s.db", synchronous="NORMAL")

    async def bump(tx: Transaction) -> None:
        tx.set(b"n", b"%d" % (int(await tx.get(b"n") or b"0") + 1))

    await asyncio.gather(*(transactional(store, bump, attempts=10_000) for _ in range(50)))
    async with store.transaction() as tx:
        assert await tx.get(b"n") == b"50"
    await store.close()


def _check_store(path: Path, rnd: int, acked: set[tuple[int, int]]) -> int:
    """Check every group is complete and every acknowledged one of round ``rnd`` present; count groups."""

    async def read() -> dict[bytes, bytes]:
        store = SqliteStore(path)
        async with store.transaction() as tx:
            rows = dict(await tx.range(b"", b"\xff"))
        await store.close()
        return rows

    rows = asyncio.run(read())
    groups: dict[tuple[int, int, int], int] = {}
    for key, value in rows.items():
        r, w, i, _ = (int(part) for part in key.split(b"/"))
        assert value == b"%d" % i
        groups[(r, w, i)] = groups.get((r, w, i), 0) + 1
    assert all(n == 5 for n in groups.values()), "a partial transaction survived"
    missing = {(rnd, w, i) for w, i in acked} - set(groups)
    assert not missing, f"acknowledged transactions lost: {sorted(missing)[:5]}"
    return len(groups)


def test_kill_9_loses_no_acknowledged_commit(tmp_path: Path) -> None:
    rng = random.Random(1234)
    path = tmp_path / "crash.db"
    total = 0
    for rnd in range(4):
        proc = subprocess.Popen(
            [sys.executable, str(HERE / "crash_writer.py"), str(path), str(rnd)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        first = proc.stdout.readline()  # wait until it is committing
        assert first
        time.sleep(rng.uniform(0.0, 0.4))
        os.kill(proc.pid, signal.SIGKILL)
        rest = proc.stdout.read()
        proc.stdout.close()
        proc.wait()
        acked = {(int(w), int(i)) for w, i in (line.split() for line in (first + rest).splitlines())}
        committed = _check_store(path, rnd, acked)
        assert committed >= total + len(acked)  # earlier rounds' groups are all still there
        total = committed
    assert total > 0
