"""Storage micro-benchmark: single-key read transactions and 1 KiB write transactions per second.

Usage: ``.venv/bin/python bench/storage_micro.py [--seconds 1.5] [--concurrency 16]``

Prints memory and sqlite (FULL and NORMAL) side by side: sequential rates (one task) and concurrent
rates (``--concurrency`` tasks, where SQLite's writer thread commits waiting transactions as a group).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from collections.abc import Awaitable, Callable

from strongroom.storage.base import Store
from strongroom.storage.memory import MemoryStore
from strongroom.storage.sqlite import SqliteStore

KEYS = 10_000
VALUE = os.urandom(1024)


async def fill(store: Store) -> None:
    for start in range(0, KEYS, 1000):
        async with store.transaction() as tx:
            for i in range(start, start + 1000):
                tx.set(b"key/%08d" % i, VALUE)


async def rate(op: Callable[[int], Awaitable[None]], seconds: float, concurrency: int) -> float:
    done = 0
    deadline = time.perf_counter() + seconds

    async def worker(w: int) -> None:
        nonlocal done
        i = w
        while time.perf_counter() < deadline:
            for _ in range(20):
                await op(i)
                i += concurrency
            done += 20

    start = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(concurrency)))
    return done / (time.perf_counter() - start)


async def measure(store: Store, seconds: float, concurrency: int) -> dict[str, float]:
    await fill(store)

    async def read(i: int) -> None:
        async with store.transaction() as tx:
            await tx.get(b"key/%08d" % (i % KEYS))

    async def write(i: int) -> None:
        async with store.transaction() as tx:
            tx.set(b"key/%08d" % (i % KEYS), VALUE)

    async def read_modify_write(i: int) -> None:
        async with store.transaction() as tx:
            key = b"key/%08d" % (i * 7919 % KEYS)
            await tx.get(key)
            tx.set(key, VALUE)

    results = {}
    for name, op in (("read tx", read), ("write tx 1KiB", write), ("read+write tx", read_modify_write)):
        results[f"{name} x1"] = await rate(op, seconds, 1)
        results[f"{name} x{concurrency}"] = await rate(op, seconds, concurrency)
    await store.close()
    return results


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=1.5)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        columns = {
            "memory": await measure(MemoryStore(), args.seconds, args.concurrency),
            "sqlite FULL": await measure(
                SqliteStore(os.path.join(tmp, "full.db")), args.seconds, args.concurrency
            ),
            "sqlite NORMAL": await measure(
                SqliteStore(os.path.join(tmp, "normal.db"), synchronous="NORMAL"),
                args.seconds,
                args.concurrency,
            ),
        }
    rows = next(iter(columns.values())).keys()
    print(f"{'transactions/s':<22}" + "".join(f"{name:>15}" for name in columns))
    for row in rows:
        print(f"{row:<22}" + "".join(f"{columns[name][row]:>15,.0f}" for name in columns))


if __name__ == "__main__":
    asyncio.run(main())
