"""Fill a stopped server's store with many KV v2 secrets through the storage layer, not over HTTP.

Run (the server on that store must be stopped)::

    .venv/bin/python -m bench.storage_fill STORE_URL UNSEAL_KEY_B64 COUNT [--mount secret] [--concurrency 8]

Each secret is written exactly as a KV v2 ``POST <mount>/data/<path>`` writes a new secret
(:func:`strongroom.engines.kv.v2.data.append_version` after the same config and metadata reads, through a
real :class:`~strongroom.core.node.Node` unsealed with the key: blind-indexed path, directory markers,
metadata and version records, all barrier-encrypted), but many secrets per transaction and without HTTP,
routing, ACL or the response envelope. The encryption budget is accounted after every transaction, as the
server does after each request.

Names: secret ``i`` (0-based) is ``fill/d<i // PER_DIR>/k<i>``, so directories hold ``PER_DIR`` secrets
each and one transaction fills whole directories (concurrent transactions never write the same
directory marker, so they never conflict). The value of every secret is ``{"v": <VALUE_BYTES random
characters>}`` (the same size for every fill, so reads of a small and of a large store return the same
bytes).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from base64 import b64encode

from strongroom.auth.acl import ACL
from strongroom.core.mounts import load_table
from strongroom.core.node import Node
from strongroom.engines.context import Context
from strongroom.engines.kv.v2.data import append_version
from strongroom.engines.kv.v2.model import Secrets
from strongroom.storage.base import Transaction, transactional
from strongroom.storage.url import open_store

PER_DIR = 1000
VALUE_BYTES = 96


def secret_path(i: int) -> str:
    """The path (inside the mount) of secret ``i``."""
    return f"fill/d{i // PER_DIR}/k{i}"


def _value() -> dict[str, str]:
    return {"v": b64encode(os.urandom(VALUE_BYTES * 3 // 4)).decode()}


async def _fill_directory(node: Node, mount_path: str, first: int, last: int) -> None:
    """Write secrets ``first`` .. ``last - 1`` (one directory or part of one) in one transaction."""

    async def run(tx: Transaction) -> None:
        keys = await node.root.current_keys(tx)
        mount = (await load_table(tx, keys)).find(mount_path)
        if mount is None or mount.type != "kv":
            raise SystemExit(f"no KV mount at {mount_path}")
        ctx = Context(node, keys, tx, mount, None, "", ACL([]), "bench-storage-fill")
        secrets = Secrets(ctx)
        config = await secrets.config()
        for i in range(first, last):
            path = secret_path(i)
            entry = secrets.entry(path)
            meta = await secrets.meta(entry)  # None: a new secret, as for a first write over HTTP
            await append_version(ctx, secrets, path, entry, meta, config, _value())

    await transactional(node.store, run)
    await node.root.account_encryptions()


async def fill(url: str, unseal_key: str, count: int, *, mount: str = "secret", concurrency: int = 8,
               progress: bool = True) -> float:  # fmt: skip
    """Write ``count`` secrets into the store at ``url``; return the seconds it took.

    Raises:
        SystemExit: the key does not unseal the store, or there is no KV mount at ``mount``.
    """
    store = open_store(url)
    node = Node(store)
    try:
        await node.root.submit_unseal(unseal_key)
        if node.root.sealed:
            raise SystemExit("the key did not unseal the store (a 1-of-1 share is expected)")
        started = time.monotonic()
        chunks = [
            (d * PER_DIR, min(count, (d + 1) * PER_DIR)) for d in range((count + PER_DIR - 1) // PER_DIR)
        ]
        pending = iter(chunks)
        done = 0

        async def worker() -> None:
            nonlocal done
            for first, last in pending:
                await _fill_directory(node, mount, first, last)
                done += last - first
                if progress and done % (50 * PER_DIR) == 0:
                    rate = done / (time.monotonic() - started)
                    print(f"  filled {done:,} of {count:,} ({rate:,.0f} secrets/s)", file=sys.stderr)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.monotonic() - started
    finally:
        await node.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("url")
    parser.add_argument("unseal_key")
    parser.add_argument("count", type=int)
    parser.add_argument("--mount", default="secret")
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args(argv)
    seconds = asyncio.run(fill(args.url, args.unseal_key, args.count, mount=args.mount,
                               concurrency=args.concurrency))  # fmt: skip
    print(f"filled {args.count:,} secrets in {seconds:.1f} s ({args.count / seconds:,.0f}/s)")


if __name__ == "__main__":
    main()
