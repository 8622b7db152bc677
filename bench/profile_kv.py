"""In-process CPU micro-benchmark of the KV v2 request path (no HTTP server, no sockets).

Run: ``PYTHONPATH=. .venv/bin/python -m bench.profile_kv [read|write|write32|all] [--store sqlite|memory]
[--profile] [--reps 5]``.

It drives the real ASGI application directly (as ``tests/support/vault.py`` does) and reports
``time.process_time()`` per operation, which counts every thread of the process (the SQLite writer
thread included) and is far less sensitive to a noisy shared machine than wall time. Each figure is the
best of ``--reps`` repetitions. ``--profile`` prints a cProfile of one more repetition.

* ``read``: ``sys/health`` (unauthenticated floor), ``auth/token/lookup-self`` (authenticated baseline)
  and a KV v2 read of a 1 KiB secret;
* ``write``: sequential KV v2 writes of 1 KiB to new paths;
* ``write32``: 32 (``--writers``) concurrent writers (as the HTTP benchmark's concurrency 32), with the writer
  thread's own CPU per item, the group-commit batch size and the number of conflicts.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import itertools
import pstats
import tempfile
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from strongroom.storage.base import Store
from strongroom.storage.memory import MemoryStore
from strongroom.storage.sqlite import SqliteStore
from tests.support.vault import InProcessVault, start_vault

BODY = orjson.dumps({"data": {"v": "x" * 1024}})


async def call(app: Any, method: str, path: str, token: str, body: bytes = b"") -> int:
    """Send one request straight to the ASGI app; return the status."""
    scope = {"type": "http", "method": method, "path": path, "query_string": b"",
             "headers": [(b"x-vault-token", token.encode())]}
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return int(sent[0]["status"])


def make_store(kind: str, synchronous: str) -> Store:
    if kind == "sqlite":
        return SqliteStore(tempfile.mkdtemp(prefix="profile-kv-") + "/s.db", synchronous=synchronous)
    return MemoryStore()


async def measure(label: str, n: int, reps: int, body: Callable[[int], Awaitable[None]]) -> float:
    """Run ``body(n)`` ``reps`` times; print and return the best CPU microseconds per operation."""
    best = float("inf")
    wall = main = 0.0
    for _ in range(reps):
        cpu, w, m = time.process_time(), time.perf_counter(), time.thread_time()
        await body(n)
        per = (time.process_time() - cpu) / n * 1e6
        if per < best:
            best, wall, main = per, (time.perf_counter() - w) / n * 1e6, (time.thread_time() - m) / n * 1e6
    print(f"{label:40s} {best:7.0f} us cpu/op  (event-loop thread {main:.0f} us, wall {wall:.0f} us)")
    return best


async def profiled(body: Callable[[int], Awaitable[None]], n: int, lines: int = 45) -> None:
    # CPU time of the event-loop thread: waiting for the writer thread or for I/O is not counted.
    prof = cProfile.Profile(time.thread_time)
    prof.enable()
    await body(n)
    prof.disable()
    pstats.Stats(prof).sort_stats("cumulative").print_stats(lines)


async def bench_read(v: InProcessVault, reps: int, profile: bool) -> None:
    await v.ok("POST", "secret/data/foo", json={"data": {"x": "y" * 1000}})
    app, tok = v.app, v.root_token
    for path in ["/v1/sys/health", "/v1/auth/token/lookup-self", "/v1/secret/data/foo"]:
        async def loop(n: int, path: str = path) -> None:
            for _ in range(n):
                status = await call(app, "GET", path, tok)
                assert status == 200, status
        await measure(f"GET {path}", 3000, reps, loop)
    if profile:
        async def reads(n: int) -> None:
            for _ in range(n):
                await call(app, "GET", "/v1/secret/data/foo", tok)
        await profiled(reads, 3000)


class WriterStats:
    """Counts the SQLite writer thread's CPU, group sizes and conflicts while installed."""

    def __init__(self) -> None:
        self.writer_s = 0.0
        self.batches = 0
        self.items = 0
        self.conflicts = 0

    def report(self) -> None:
        if self.items:
            print(f"  writer thread {self.writer_s / self.items * 1e6:.0f} us cpu/item, "
                  f"{self.items / self.batches:.1f} items/group, {self.conflicts} conflicts")

    def __enter__(self) -> WriterStats:
        import strongroom.storage.sqlite_writer as sq
        from strongroom import errors

        self._orig = (sq.SqliteWriter._write_batch, errors.TransactionConflict.__init__)
        orig_batch, orig_conflict = self._orig
        stats = self

        def write_batch(store: sq.SqliteWriter, batch: list[Any]) -> Any:
            t = time.thread_time()
            try:
                return orig_batch(store, batch)
            finally:
                stats.writer_s += time.thread_time() - t
                stats.batches += 1
                stats.items += len(batch)

        def conflict(exc: Exception, *a: Any) -> None:
            stats.conflicts += 1
            orig_conflict(exc, *a)

        sq.SqliteWriter._write_batch = write_batch  # type: ignore[method-assign]
        errors.TransactionConflict.__init__ = conflict  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        import strongroom.storage.sqlite_writer as sq
        from strongroom import errors

        sq.SqliteWriter._write_batch, errors.TransactionConflict.__init__ = self._orig  # type: ignore[method-assign]


async def bench_write(v: InProcessVault, reps: int, profile: bool) -> None:
    app, tok = v.app, v.root_token
    counter = itertools.count()

    async def loop(n: int) -> None:
        for _ in range(n):
            i = next(counter)
            status = await call(app, "POST", f"/v1/secret/data/a/t{i % 7}/k{i}", tok, BODY)
            assert status == 200, status
    with WriterStats() as stats:
        await measure("POST secret/data (sequential)", 1000, reps, loop)
    stats.report()
    if profile:
        await profiled(loop, 1000, 60)


async def bench_write32(v: InProcessVault, reps: int, profile: bool, writers: int = 32) -> None:
    app, tok = v.app, v.root_token
    counter = itertools.count()
    async def worker(wid: int, n: int) -> None:
        for _ in range(n):
            i = next(counter)
            status = await call(app, "POST", f"/v1/secret/data/r/t{wid}/k{i}", tok, BODY)
            assert status == 200, status

    async def loop(n: int) -> None:
        await asyncio.gather(*(worker(w, n // writers) for w in range(writers)))

    with WriterStats() as stats:
        await measure(f"POST secret/data ({writers} concurrent)", writers * (1920 // writers), reps, loop)
    stats.report()
    if profile:
        await profiled(loop, writers * (1920 // writers), 60)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", nargs="?", default="all", choices=["read", "write", "write32", "all"])
    parser.add_argument("--store", default="sqlite", choices=["sqlite", "memory"])
    parser.add_argument("--synchronous", default="FULL")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--writers", type=int, default=32, help="concurrent writers of write32")
    args = parser.parse_args()
    v = await start_vault(make_store(args.store, args.synchronous))
    await v.ok("POST", "sys/mounts/secret", json={"type": "kv", "options": {"version": "2"}})
    print(f"store: {args.store}")
    if args.what in ("read", "all"):
        await bench_read(v, args.reps, args.profile)
    if args.what in ("write", "all"):
        await bench_write(v, args.reps, args.profile)
    if args.what in ("write32", "all") and args.store == "sqlite":
        await bench_write32(v, args.reps, args.profile, args.writers)
    await v.client.aclose()
    await v.node.store.close()


if __name__ == "__main__":
    asyncio.run(main())
