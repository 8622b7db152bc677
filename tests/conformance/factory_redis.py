"""Redis under the conformance suite: each store gets its own random key prefix, deleted when it closes.

The server is ``STRONGROOM_TEST_REDIS_URL`` (default ``redis://127.0.0.1:6379/0``; the password, if any,
from ``STRONGROOM_REDIS_PASSWORD``). An unreachable server skips locally and fails under
``STRONGROOM_REQUIRE_ALL=1`` (CI).
"""

from __future__ import annotations

import os
import socket
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import redis.asyncio

from strongroom.storage.base import Store, StoreLimits
from strongroom.storage.redis import PASSWORD_ENV, RedisStore
from tests.support.require import missing

NAME = "redis"
URL = os.environ.get("STRONGROOM_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def reachable() -> bool:
    """Whether something accepts connections at the test server's address."""
    parts = urlsplit(URL)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379), timeout=2):
            return True
    except OSError:
        return False


def require_redis() -> None:
    """Skip (locally) or fail (CI) unless the test Redis answers."""
    if not reachable():
        missing(f"no Redis at {URL}")


def admin() -> redis.asyncio.Redis:
    """A plain redis-py client on the test server (for inspecting and cleaning up, not for the store)."""
    parts = urlsplit(URL)
    return redis.asyncio.Redis(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 6379,
        db=int(parts.path.strip("/") or "0"),
        username=parts.username,
        password=os.environ.get(PASSWORD_ENV) or None,
    )


async def delete_prefix(prefix: str) -> int:
    """Delete every Redis key starting with ``prefix``; return how many there were."""
    client = admin()
    try:
        deleted = 0
        pattern = prefix.replace("\\", "\\\\").replace("*", "\\*").replace("?", "\\?").replace("[", "\\[")
        async for key in client.scan_iter(match=pattern + "*", count=1000):
            deleted += await client.unlink(key)
        return deleted
    finally:
        await client.aclose()


class DroppingRedisStore(RedisStore):
    """A :class:`RedisStore` that deletes its whole prefix when closed (test isolation)."""

    async def close(self) -> None:
        try:
            await super().close()
        finally:
            await delete_prefix(self.prefix)


def open_test_store(limits: StoreLimits | None = None, **options: Any) -> DroppingRedisStore:
    """A store on the test server under a fresh random prefix; ``options`` are RedisStore arguments."""
    require_redis()
    parts = urlsplit(URL)
    return DroppingRedisStore(
        parts.hostname or "127.0.0.1",
        parts.port or 6379,
        db=int(parts.path.strip("/") or "0"),
        username=parts.username,
        password=os.environ.get(PASSWORD_ENV) or None,
        prefix=f"srtest:{uuid.uuid4().hex}:",
        limits=limits,
        **options,
    )


def make_store(tmp: Path, limits: StoreLimits) -> Store:
    # A long snapshot window: the suite's reads expect no "too old" conflict even on a slow CI machine;
    # tests/storage/test_redis.py covers the window itself.
    return open_test_store(limits, snapshot_window=60.0)
