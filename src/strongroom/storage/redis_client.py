"""The Redis backend's connections: redis-py connections that run the backend's Lua scripts.

Up to two connections each carry one call at a time (cheapest while few calls run at once); beyond that,
calls share one pipelined connection (:mod:`strongroom.storage.redis_pipe`), where a batch of concurrent
calls costs one ``send``. There is no limit on concurrent calls: Redis queues them.

Guarantees:

* Every failure reaches the caller as a strongroom error, never as a raw driver exception:
  :class:`StorageUnavailable` when Redis cannot be reached, times out (``timeout`` seconds for the
  whole call, connecting included) or refuses the operation (out of memory, loading, read-only replica,
  credentials), and :class:`StorageError` once the client is closed.
* A call whose connection was lost (Redis restarted, ``CLIENT KILL``, an idle connection cut by a
  firewall) is retried once, on a connection opened after the loss was seen: connections belong to a
  generation, and a loss retires its generation. Every script is safe to run twice (reads have no effect
  and a commit carries a token that makes a second run a no-op). A timed-out call is not retried, and
  a timeout closes the shared connection (it may be stuck).
* Error messages carry Redis's own error text (``OOM command not allowed...``, ``BUSY``, ACL refusals),
  which never quotes a key or a value.

Why not ``redis.asyncio.Redis``: its command layer and connection pool cost about twice the CPU per call
(55 against 26 us at 32 concurrent callers, docs/dependencies.md "Redis client"), and the backend only
ever sends ``EVALSHA``. The connections are still redis-py's (connecting, AUTH, SELECT, RESP parsing
with hiredis).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from redis.asyncio.connection import Connection
from redis.exceptions import AuthenticationError, NoScriptError, RedisError, ResponseError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from strongroom.errors import StorageError, StorageUnavailable
from strongroom.storage.redis_pipe import Pipe, pack
from strongroom.storage.redis_scripts import Script

__all__ = ["RedisClient"]

_log = logging.getLogger(__name__)
_LOST = (RedisConnectionError, ConnectionError, EOFError)
_MIN_VERSION = (7, 0)
_EXCLUSIVE = 2  # connections used by one call at a time before calls share the pipelined connection
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
        self._exclusive = 0  # connections of one call at a time, idle or busy
        # Connections belong to a generation; losing one starts a new generation, and connections of
        # older ones are not used again (idle ones are closed at once, busy ones when their call ends).
        # Idle connections are always of the current generation.
        self._generation = 0
        self._pipe: Pipe | None = None
        self._pipe_generation = 0
        self._opening: asyncio.Future[Pipe] | None = None
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
        try:
            try:
                return await self._attempt(script, args)
            except _LOST as exc:
                if isinstance(exc, AuthenticationError):  # redis-py makes it a ConnectionError
                    raise
                # Retry once. _attempt moved to a new generation of connections: the retry runs on a
                # connection opened after the failure was seen, not on one that died with it.
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
            # redis-py strips the error code (OOM, BUSY...) but says it with the class (OutOfMemoryError...).
            raise StorageUnavailable(
                f"redis refused the operation ({type(exc).__name__}: {_first_line(exc)})"
            ) from exc
        except RedisError as exc:
            raise StorageUnavailable(f"redis failed ({type(exc).__name__})") from exc

    async def _attempt(self, script: Script, args: Sequence[bytes | str | int]) -> Any:
        # One deadline for the whole call. It replaces redis-py's per-read socket timeout and per-write
        # asyncio.wait_for (which starts a task per command: about 10 us of CPU per call, measured).
        async with asyncio.timeout(self._timeout) as deadline:
            pipe = self._pipe
            # Few calls at once: a connection of its own is cheapest (no hand-over between tasks). More:
            # they share the pipelined connection, where a batch of calls costs one send.
            if self._idle or (self._exclusive < _EXCLUSIVE and (pipe is None or not pipe.in_flight)):
                return await self._exclusive_call(script, args)
            pipe = await self._get_pipe()
            generation = self._pipe_generation
            try:
                return await self._evalsha(pipe.call, script, args)
            except _LOST:
                await self._lost(generation)
                raise
            except asyncio.CancelledError:
                if deadline.expired():
                    # No reply within the deadline: the connection may be stuck (a half-open socket
                    # never errors). Close it; the other calls on it fail over to a new one.
                    await pipe.close()
                raise

    async def _lost(self, generation: int) -> None:
        """A connection of ``generation`` was lost: start a new generation (once per failure)."""
        if generation != self._generation:
            return  # already handled: a newer generation exists
        self._generation += 1
        await self._drop_idle()
        if self._pipe is not None and not self._pipe.broken:
            await self._pipe.close()

    async def _exclusive_call(self, script: Script, args: Sequence[bytes | str | int]) -> Any:
        generation = self._generation
        if self._idle:
            conn = self._idle.pop()
        else:
            self._exclusive += 1
            try:
                conn = await self._connect()
            except BaseException:
                self._exclusive -= 1
                raise

        async def roundtrip(packed: bytes) -> Any:
            await conn.send_packed_command(packed, False)
            return await conn.read_response()

        try:
            reply = await self._evalsha(roundtrip, script, args)
        except ResponseError:
            # An error reply leaves the connection in step: keep it.
            await self._release(conn, generation)
            raise
        except _LOST:
            await self._discard(conn)
            await self._lost(generation)
            raise
        except BaseException:
            # Timed out or cancelled with a reply possibly still on the way: never reuse it.
            await self._discard(conn)
            raise
        await self._release(conn, generation)
        return reply

    async def _evalsha(
        self, send: Callable[[bytes], Awaitable[Any]], script: Script, args: Sequence[bytes | str | int]
    ) -> Any:
        if script.sha is None:
            script.sha = _sha(await send(pack(b"SCRIPT", b"LOAD", script.source)))
        try:
            return await send(pack(b"EVALSHA", script.sha, 0, self._prefix, args=args))
        except NoScriptError:
            # Redis restarted or SCRIPT FLUSH: load it again, once.
            script.sha = _sha(await send(pack(b"SCRIPT", b"LOAD", script.source)))
            return await send(pack(b"EVALSHA", script.sha, 0, self._prefix, args=args))

    async def _get_pipe(self) -> Pipe:
        pipe = self._pipe
        if pipe is not None and not pipe.broken and self._pipe_generation == self._generation:
            return pipe
        opening = self._opening
        if opening is None:
            opening = self._opening = asyncio.ensure_future(self._open_pipe())
        # Shielded: a caller that gives up must not cancel the connection others wait for.
        return await asyncio.shield(opening)

    async def _open_pipe(self) -> Pipe:
        try:
            generation = self._generation
            conn = await self._connect()
            if self._closed:
                await _discard(conn)
                raise StorageError("storage is closed")
            self._pipe = Pipe(conn)
            self._pipe_generation = generation
            return self._pipe
        finally:
            self._opening = None

    async def _connect(self) -> Connection:
        conn = Connection(**self._params)
        try:
            # Bounded here too: the shared connection is opened outside any caller's deadline, and the
            # handshake's replies (AUTH, SELECT, CLIENT SETNAME) have no socket timeout.
            async with asyncio.timeout(self._timeout):
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

    async def _release(self, conn: Connection, generation: int) -> None:
        if self._closed or generation != self._generation:
            # Closed while the call ran (nobody will take it again), or of a generation that a lost
            # connection retired (it may have died with it).
            await self._discard(conn)
        else:
            self._idle.append(conn)

    async def _discard(self, conn: Connection) -> None:
        self._exclusive -= 1
        await _discard(conn)

    async def _drop_idle(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            await self._discard(conn)

    async def close(self) -> None:
        """Close idle connections and the shared one; connections in use close when their call ends."""
        self._closed = True
        await self._drop_idle()
        opening = self._opening
        if opening is not None:
            opening.cancel()
            with contextlib.suppress(BaseException):
                await opening
        if self._pipe is not None:
            await self._pipe.close()


async def _discard(conn: Connection) -> None:
    """Close ``conn`` without waiting for the peer; never raises (it runs inside ``except`` blocks)."""
    with contextlib.suppress(Exception):
        await conn.disconnect(nowait=True)


def _sha(reply: Any) -> bytes:
    return reply if isinstance(reply, bytes) else str(reply).encode()


def _first_line(exc: BaseException) -> str:
    """An error's text, first line, bounded.

    Redis writes these itself (``OOM command not allowed...``, ``NOPERM``, ACL and script errors naming a
    command and a script line), and redis-py's connection errors name the address; none quotes a key or a
    value, so they are safe to show.
    """
    lines = str(exc).splitlines()
    return lines[0][:200] if lines else "error"
