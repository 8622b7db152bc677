"""The Redis backend's connections: a small pool of redis-py connections that runs Lua scripts.

Guarantees:

* Every failure reaches the caller as a strongroom error, never as a raw driver exception:
  :class:`StorageUnavailable` when Redis cannot be reached, times out (``timeout`` seconds, for
  connecting, each reply and waiting for a free connection) or refuses the operation (out of memory,
  loading, read-only replica, authentication), and :class:`StorageError` once the client is closed.
* A call whose connection was lost (Redis restarted, ``CLIENT KILL``, an idle connection cut by a
  firewall) is retried once on a fresh connection: every script is safe to run twice (reads have no
  effect and a commit carries a token that makes a second run a no-op). A timed-out call is not retried.
* Error messages carry Redis's own error text (``OOM command not allowed...``, ``BUSY``, ACL refusals),
  which never quotes a key or a value.

Why not ``redis.asyncio.Redis``: its command layer and connection pool cost about twice the CPU per call
(55 against 26 us at 32 concurrent callers, docs/dependencies.md "Redis client"), and the backend only
ever sends ``EVALSHA``. The connections are still redis-py's (RESP parsing with hiredis, AUTH, SELECT).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Any

from redis.asyncio.connection import Connection
from redis.exceptions import AuthenticationError, NoScriptError, RedisError, ResponseError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from strongroom.errors import StorageError, StorageUnavailable
from strongroom.storage.redis_scripts import Script

__all__ = ["RedisClient"]

_log = logging.getLogger(__name__)
_LOST = (RedisConnectionError, ConnectionError, EOFError)
_MIN_VERSION = (7, 0)
_warned: set[tuple[str, int, int]] = set()  # servers already warned about, once per process


class RedisClient:
    """Connections to one Redis database, each used by one call at a time (see the module docstring)."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        db: int,
        username: str | None,
        password: str | None,
        prefix: bytes,
        timeout: float,
        max_connections: int,
    ) -> None:
        self._params: dict[str, Any] = {
            "host": host,
            "port": port,
            "db": db,
            "username": username,
            "password": password,
            # Replies are bounded by one deadline per call (see _attempt), not per socket read.
            "socket_timeout": None,
            "socket_connect_timeout": timeout,
            "client_name": "strongroom",
            # RESP2: a script's Lua false (an absent value) arrives as nil, whatever the server version.
            "protocol": 2,
        }
        self._prefix = prefix
        self._timeout = timeout
        self._idle: list[Connection] = []
        self._slots = asyncio.Semaphore(max_connections)
        self._closed = False
        self._checked = False

    async def run(self, script: Script, args: Sequence[bytes | str | int]) -> Any:
        """Run ``script`` with ``ARGV = [prefix, *args]`` and return its reply.

        Raises:
            StorageUnavailable: Redis is unreachable, too slow, or refused the script.
            StorageError: the client is closed.
        """
        if self._closed:
            raise StorageError("storage is closed")
        if self._slots.locked():
            # All connections are busy: wait, but not forever.
            try:
                async with asyncio.timeout(self._timeout):
                    await self._slots.acquire()
            except TimeoutError:
                raise StorageUnavailable("redis: no free connection within the timeout") from None
        else:
            await self._slots.acquire()
        try:
            try:
                return await self._attempt(script, args)
            except _LOST as exc:
                if isinstance(exc, AuthenticationError):  # redis-py makes it a ConnectionError
                    raise
                # The connection was gone (and so, most likely, were the other idle ones): retry once.
                await self._drop_idle()
                return await self._attempt(script, args)
        except AuthenticationError as exc:
            raise StorageUnavailable(
                "redis refused the credentials (user from the URL, password from STRONGROOM_REDIS_PASSWORD)"
            ) from exc
        except _LOST as exc:
            raise StorageUnavailable(f"redis unreachable or connection lost: {_first_line(exc)}") from exc
        except (RedisTimeoutError, TimeoutError) as exc:
            raise StorageUnavailable("redis: timed out") from exc
        except OSError as exc:
            raise StorageUnavailable(f"redis: cannot connect ({type(exc).__name__})") from exc
        except ResponseError as exc:
            raise StorageUnavailable(f"redis refused the operation ({_first_line(exc)})") from exc
        except RedisError as exc:
            raise StorageUnavailable(f"redis failed ({type(exc).__name__})") from exc
        finally:
            self._slots.release()

    async def _attempt(self, script: Script, args: Sequence[bytes | str | int]) -> Any:
        # One deadline for the whole call. It replaces redis-py's per-read socket timeout and per-write
        # asyncio.wait_for (which starts a task per command: about 10 us of CPU per call, measured).
        async with asyncio.timeout(self._timeout):
            conn = self._idle.pop() if self._idle else await self._connect()
            try:
                reply = await self._evalsha(conn, script, args)
            except ResponseError:
                # An error reply leaves the connection in step: keep it.
                await self._release(conn)
                raise
            except BaseException:
                # Lost, timed out or cancelled with a reply possibly still on the way: never reuse it.
                await _discard(conn)
                raise
        await self._release(conn)
        return reply

    async def _evalsha(self, conn: Connection, script: Script, args: Sequence[bytes | str | int]) -> Any:
        if script.sha is None:
            await self._load(conn, script)
        try:
            await conn.send_packed_command(_pack(b"EVALSHA", script.sha, 0, self._prefix, args), False)
            return await conn.read_response()
        except NoScriptError:
            # Redis restarted or SCRIPT FLUSH: load it again, once.
            await self._load(conn, script)
            await conn.send_packed_command(_pack(b"EVALSHA", script.sha, 0, self._prefix, args), False)
            return await conn.read_response()

    @staticmethod
    async def _load(conn: Connection, script: Script) -> None:
        await conn.send_command("SCRIPT", "LOAD", script.source)
        sha = await conn.read_response()
        script.sha = sha if isinstance(sha, bytes) else str(sha).encode()

    async def _connect(self) -> Connection:
        conn = Connection(**self._params)
        try:
            await conn.connect()  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated
            if not self._checked:
                await self._check_server(conn)
        except BaseException:
            await _discard(conn)
            raise
        return conn

    async def _check_server(self, conn: Connection) -> None:
        """Refuse a Redis that is too old or evicts keys; warn once if it keeps nothing on disk."""
        await conn.send_command("INFO", "server")
        info = await conn.read_response()
        text = info.decode() if isinstance(info, bytes) else str(info)
        version = next(
            (line.split(":", 1)[1] for line in text.splitlines() if line.startswith("redis_version:")), "0"
        )
        parts = tuple(int(p) for p in version.strip().split(".")[:2] if p.isdigit())
        if parts < _MIN_VERSION:
            raise StorageUnavailable(
                f"redis {version.strip()} is too old: strongroom needs Redis 7.0 or later"
            )
        try:
            config = {}
            for name in ("maxmemory-policy", "appendonly", "save"):
                await conn.send_command("CONFIG", "GET", name)
                reply = await conn.read_response()
                if isinstance(reply, list) and len(reply) == 2:
                    value = reply[1]
                    config[name] = value.decode() if isinstance(value, bytes) else str(value)
        except ResponseError:
            config = {}  # CONFIG is disabled or not allowed to this user: nothing to check
        policy = config.get("maxmemory-policy", "")
        if policy.startswith("allkeys"):
            # An evicting policy would silently delete stored records when Redis fills up.
            raise StorageUnavailable(f"redis maxmemory-policy is {policy}: strongroom needs noeviction")
        server = (self._params["host"], self._params["port"], self._params["db"])
        if config.get("appendonly") == "no" and not config.get("save", "x").strip() and server not in _warned:
            _warned.add(server)
            _log.warning(
                "redis persists nothing to disk (appendonly no, no save points): a restart loses all data"
            )
        self._checked = True

    async def _release(self, conn: Connection) -> None:
        if self._closed:
            await _discard(conn)  # closed while the call ran: nobody will take it again
        else:
            self._idle.append(conn)

    async def _drop_idle(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            await _discard(conn)

    async def close(self) -> None:
        """Close idle connections; connections in use close when their call ends."""
        self._closed = True
        await self._drop_idle()


async def _discard(conn: Connection) -> None:
    """Close ``conn`` without waiting for the peer; never raises (it runs inside ``except`` blocks)."""
    with contextlib.suppress(Exception):
        await conn.disconnect(nowait=True)


def _pack(
    command: bytes, sha: bytes | None, numkeys: int, prefix: bytes, args: Sequence[bytes | str | int]
) -> bytes:
    """Encode ``command sha numkeys prefix *args`` in RESP (redis-py's general packer costs ~8 us more)."""
    parts = [b"*%d\r\n$%d\r\n%s\r\n" % (len(args) + 4, len(command), command)]
    for arg in (sha or b"", b"%d" % numkeys, prefix, *args):
        if isinstance(arg, int):
            arg = b"%d" % arg
        elif isinstance(arg, str):
            arg = arg.encode()
        parts.append(b"$%d\r\n" % len(arg))
        parts.append(arg)
        parts.append(b"\r\n")
    return b"".join(parts)


def _first_line(exc: BaseException) -> str:
    """An error's text, first line, bounded.

    Redis writes these itself (``OOM command not allowed...``, ``NOPERM``, ACL and script errors naming a
    command and a script line), and redis-py's connection errors name the address; none quotes a key or a
    value, so they are safe to show.
    """
    lines = str(exc).splitlines()
    return lines[0][:200] if lines else "error"
