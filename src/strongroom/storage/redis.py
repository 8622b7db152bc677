"""Redis store: ``redis://[user@]host[:port][/db]?prefix=...`` (Redis 7.0 or later, standalone).

Guarantees: the protocol's (``strongroom.storage.base``), for any number of strongroom processes sharing
one Redis database and prefix:

* **Snapshot reads.** A transaction's first read fixes its snapshot ``S`` (the version of the latest
  commit); every later read returns the state as of ``S`` plus the transaction's own writes, even after
  other commits. Redis keeps no versions, so the store keeps them: each commit records, per key it
  changes, the value the key had before (its history), for ``snapshot_window`` seconds (default 5).
* **Serializable commits.** The commit is one Lua script (``EVALSHA``), atomic in Redis. It checks that
  nothing the transaction read was written after ``S`` (each recently written key carries the version of
  its latest write; a range read is checked key by key over the index, which still lists recently deleted
  keys), then applies all writes and bumps the version. Checking and applying in one script makes every
  committed transaction equivalent to running alone at its commit point. Read-only transactions are
  serializable at their snapshot. The check is by version, not by value: rewriting a key with the value
  a transaction read still conflicts with it (more conflicts than the SQLite backend, never fewer).
* **Too old.** A transaction whose snapshot is older than the history kept (a commit made more than
  ``snapshot_window`` seconds ago has been pruned past it) gets :class:`TransactionConflict` from its next
  read or its commit, which :func:`transactional` retries (FoundationDB's ``transaction_too_old``).
* **Atomic writes.** A commit applies all of its writes or none: the script checks everything before it
  writes, and Redis refuses a write script before it starts when out of memory (``#!lua`` shebang).
* **Retried commits are idempotent.** A commit whose connection is lost is retried once; its random token,
  recorded by the script for ``max(60 s, 2 * timeout)``, turns a second run into a no-op.
* **Durability is Redis's**: none without AOF or RDB, and replication is asynchronous
  (docs/storage/redis.md says what to configure and what cannot be promised).

Design: keys live in a sorted set with every score 0 (``ZRANGEBYLEX`` gives byte-wise order), values in a
hash; history is a small sorted set of versions per recently changed key plus one hash of old values. Each
read is one script that rebuilds the state at ``S`` atomically, so snapshots are exact, not approximate.
The layout is in :mod:`strongroom.storage.redis_scripts`, connections in
:mod:`strongroom.storage.redis_client`. A get costs one round trip (one ``EVALSHA``; a value read once is
cached, as the snapshot cannot change), a range one, a commit one. The Redis password comes from
``STRONGROOM_REDIS_PASSWORD``, never from the URL.
"""

from __future__ import annotations

import os
from types import TracebackType
from typing import Any
from urllib.parse import SplitResult, unquote

from strongroom.errors import InvalidRequest, TransactionConflict
from strongroom.storage.base import BufferedTransaction, StoreLimits, _in_ranges, _merge_ranges
from strongroom.storage.redis_client import RedisClient
from strongroom.storage.redis_scripts import COMMIT, RANGE, READ

__all__ = ["ACL_COMMANDS", "PASSWORD_ENV", "RedisStore", "RedisTransaction", "open_url"]

PASSWORD_ENV = "STRONGROOM_REDIS_PASSWORD"
"""Environment variable holding the Redis password (``AUTH``), if the server needs one."""

ACL_COMMANDS = (
    "evalsha", "script|load", "info", "client|setname", "select", "time", "hget", "hmget", "hset", "hdel",
    "hexists", "zadd", "zrem", "zscore", "zrange", "zrangebylex", "zrevrangebylex", "zrangebyscore",
    "zrevrangebyscore", "zremrangebyscore",
)  # fmt: skip
"""The Redis commands the backend sends or its scripts call: enough for a least-privilege ACL user."""

_OPTIONS = ("prefix", "timeout", "snapshot_window")
# Keys whose history may be pruned per commit: more than a commit usually writes, so pruning keeps up
# with the history commits create, in bounded time per commit.
_PRUNE_PER_COMMIT = 128
_TOO_OLD = "storage transaction snapshot too old"


class RedisTransaction(BufferedTransaction):
    """A transaction on a :class:`RedisStore`; its snapshot is fixed by its first read."""

    def __init__(self, store: RedisStore) -> None:
        super().__init__(store.limits)
        self._store = store
        self._snapshot: int | None = None
        # What the snapshot returned (reads of a fixed snapshot never change) and which ranges were read.
        self._seen: dict[bytes, bytes | None] = {}
        self._ranges: list[tuple[bytes, bytes]] = []

    def _snapshot_arg(self) -> bytes:
        return b"" if self._snapshot is None else b"%d" % self._snapshot

    def _take_snapshot(self, reply: list[Any]) -> None:
        version = reply[0]
        if version < 0:
            raise TransactionConflict(_TOO_OLD)
        self._snapshot = version

    async def _snapshot_get(self, key: bytes) -> bytes | None:
        seen = self._seen
        if key in seen:
            return seen[key]
        reply = await self._store._client.run(READ, (self._snapshot_arg(), key))
        self._take_snapshot(reply)
        value: bytes | None = reply[1]
        seen[key] = value
        return value

    async def _snapshot_range(
        self, begin: bytes, end: bytes, limit: int, reverse: bool
    ) -> list[tuple[bytes, bytes]]:
        reply = await self._store._client.run(
            RANGE, (self._snapshot_arg(), begin, end, limit, b"1" if reverse else b"0")
        )
        self._take_snapshot(reply)
        rows = list(zip(reply[1::2], reply[2::2], strict=True))
        if limit and len(rows) == limit:
            # Cut short by the limit: only the part up to the last returned key was read.
            if reverse:
                begin = rows[-1][0]
            else:
                end = rows[-1][0] + b"\x00"
        self._ranges.append((begin, end))
        return rows

    def _commit_args(self) -> list[bytes | int]:
        store = self._store
        args: list[bytes | int] = [os.urandom(16)]
        keys: list[bytes] = []
        ranges: list[tuple[bytes, bytes]] = []
        if self._snapshot is None:
            args.append(b"")  # read nothing: a blind write cannot conflict
        else:
            args.append(self._snapshot)
            ranges = _merge_ranges(self._ranges)
            # A key inside a read range is checked with the range.
            keys = [k for k in self._seen if not (ranges and _in_ranges(ranges, k))]
        sets = [(k, v) for k, v in self._writes.items() if v is not None]
        deletes = [k for k, v in self._writes.items() if v is None]
        args += [store._window_ms, _PRUNE_PER_COMMIT, store._token_keep_ms]
        args += [len(keys), len(ranges), len(self._cleared), len(sets), len(deletes)]
        args += keys
        for pair in (*ranges, *self._cleared, *sets):
            args += pair
        args += deletes
        return args

    async def __aenter__(self) -> RedisTransaction:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is not None or not self.has_writes:
            return
        result = await self._store._client.run(COMMIT, self._commit_args())
        if result == 0:
            raise TransactionConflict()


class RedisStore:
    """A store in one Redis database under a key prefix (see the module docstring)."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 6379,
        *,
        db: int = 0,
        username: str | None = None,
        password: str | None = None,
        prefix: str = "strongroom:",
        timeout: float = 5.0,
        snapshot_window: float = 5.0,
        limits: StoreLimits | None = None,
    ) -> None:
        """Prepare a store; connections open lazily, so an unreachable Redis fails the first operation.

        ``timeout`` (seconds) bounds connecting and each call (one script and its reply). ``snapshot_window`` (seconds) is how long history is kept, so
        how old a transaction's snapshot may get before its reads and commit conflict.

        Raises:
            InvalidRequest: an empty prefix or a non-positive number.
        """
        if not prefix:
            raise InvalidRequest("redis prefix must not be empty")
        if timeout <= 0 or snapshot_window <= 0:
            raise InvalidRequest("redis timeout and snapshot_window must be positive")
        self._limits = limits or StoreLimits()
        self._prefix = prefix
        self._window_ms = max(1, int(snapshot_window * 1000))
        self._token_keep_ms = int(max(60.0, 2 * timeout) * 1000)
        self._client = RedisClient(
            host=host,
            port=port,
            db=db,
            username=username,
            password=password,
            prefix=prefix.encode(),
            timeout=timeout,
        )

    @property
    def limits(self) -> StoreLimits:
        """The size limits."""
        return self._limits

    @property
    def kind(self) -> str:
        """``"redis"``."""
        return "redis"

    @property
    def prefix(self) -> str:
        """The prefix of every Redis key this store uses."""
        return self._prefix

    def transaction(self) -> RedisTransaction:
        """Open a transaction (an async context manager; leaving it normally commits).

        Raises (from reads and at commit):
            TransactionConflict: a commit after this transaction's snapshot wrote a key or into a range it
                read, or its snapshot is older than the history kept.
            StorageUnavailable: Redis cannot be reached, timed out or refused the operation.
            StorageError: the store is closed.
        """
        return RedisTransaction(self)

    async def close(self) -> None:
        """Close the connections. Data stays in Redis."""
        await self._client.close()


def open_url(url: SplitResult, options: dict[str, str]) -> RedisStore:
    """Open ``redis://[user@]host[:port][/db]`` with options ``prefix``, ``timeout`` and
    ``snapshot_window``; the password is read from ``STRONGROOM_REDIS_PASSWORD``.

    Raises:
        InvalidRequest: a malformed URL, an unknown option or a bad option value.
    """
    unknown = set(options) - set(_OPTIONS)
    if unknown:
        raise InvalidRequest(f"unknown redis option(s): {', '.join(sorted(unknown))}")
    try:
        port = url.port or 6379
    except ValueError as exc:
        raise InvalidRequest("redis URL has an invalid port") from exc
    path = url.path.strip("/")
    if path and not path.isdigit():
        raise InvalidRequest("redis URL path must be a database number, e.g. redis://host:6379/0")
    try:
        timeout = float(options.get("timeout", "5"))
        window = float(options.get("snapshot_window", "5"))
    except ValueError as exc:
        raise InvalidRequest("redis timeout and snapshot_window must be numbers") from exc
    return RedisStore(
        url.hostname or "127.0.0.1",
        port,
        db=int(path or "0"),
        username=unquote(url.username) if url.username else None,
        password=os.environ.get(PASSWORD_ENV) or None,
        prefix=options.get("prefix", "strongroom:"),
        timeout=timeout,
        snapshot_window=window,
    )
