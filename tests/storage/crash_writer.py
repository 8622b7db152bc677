"""Child process of test_sqlite_crash: commits groups of keys forever, acknowledging each on stdout.

Usage: ``crash_writer.py DB ROUND``. Transaction ``i`` of writer task ``w`` writes ``ROUND/w/i/0`` ..
``ROUND/w/i/4``, all with value ``i``; the line ``w i`` is printed and flushed only after the commit
returned.
"""

from __future__ import annotations

import asyncio
import sys

from strongroom.storage.sqlite import SqliteStore

GROUP = 5


async def writer(store: SqliteStore, rnd: int, w: int) -> None:
    i = 0
    while True:
        async with store.transaction() as tx:
            for j in range(GROUP):
                tx.set(b"%d/%d/%08d/%d" % (rnd, w, i, j), b"%d" % i)
        sys.stdout.write(f"{w} {i}\n")
        sys.stdout.flush()
        i += 1


async def main() -> None:
    store = SqliteStore(sys.argv[1])  # synchronous=FULL, the default
    await asyncio.gather(*(writer(store, int(sys.argv[2]), w) for w in range(4)))


if __name__ == "__main__":
    asyncio.run(main())
