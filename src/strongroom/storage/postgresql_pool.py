"""Connections of the PostgreSQL backend: a small pool and the translation of driver errors.

Guarantees:

* At most ``size`` connections exist at once (open, in use, or being reset). Waiting for one is bounded by
  ``acquire_timeout``; past it :class:`~strongroom.errors.StorageUnavailable` is raised, never a hang.
* A connection found closed (the server restarted, ``pg_terminate_backend``, a network failure) is
  dropped, never handed out; new connections are opened on demand, so the pool heals by itself.
* A connection given back with a reset statement (``ROLLBACK``) runs it in the background: the caller
  does not wait for that round trip. A connection whose reset fails is closed.

asyncpg ships no type information; :class:`Conn` declares the part of ``asyncpg.Connection`` used here
(its methods take asyncpg's ``timeout`` argument, hence the ASYNC109 exemptions).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import asyncpg  # type: ignore[import-untyped]

from strongroom.errors import StorageError, StorageUnavailable, TransactionConflict

__all__ = ["DRIVER_ERRORS", "SERIALIZATION_SQLSTATES", "Conn", "Pool", "translate"]

DRIVER_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.PostgresError,  # anything the server reported, and lost connections
    asyncpg.InterfaceError,  # misuse detected by the client, e.g. a closed connection
    asyncpg.exceptions.InternalClientError,  # protocol errors
    OSError,  # connect failures, resets
    EOFError,  # asyncio.IncompleteReadError: a server that hung up in mid-message
    TimeoutError,  # connect_timeout, command_timeout
)
"""What asyncpg and the network may raise; every one is translated before it leaves the backend."""

SERIALIZATION_SQLSTATES = frozenset({"40001", "40P01"})
"""serialization_failure and deadlock_detected: the transaction lost a race and may be retried."""


class Conn(Protocol):
    """The part of ``asyncpg.Connection`` this backend uses."""

    async def execute(
        self,
        query: str,
        *args: Any,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> str: ...

    async def fetch(
        self,
        query: str,
        *args: Any,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> list[Any]: ...

    async def fetchrow(
        self,
        query: str,
        *args: Any,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> Any: ...

    async def fetchval(
        self,
        query: str,
        *args: Any,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> Any: ...

    def is_closed(self) -> bool: ...

    def terminate(self) -> None: ...

    async def close(self, *, timeout: float | None = None) -> None: ...  # noqa: ASYNC109


def translate(exc: BaseException, what: str) -> StorageError:
    """The strongroom error for a driver error ``exc`` raised while doing ``what``.

    Serialization failures and deadlocks become :class:`TransactionConflict` (``transactional`` retries
    them); everything else becomes :class:`StorageUnavailable`. Messages carry the SQLSTATE or the
    exception class, never the server's message text, which may quote key bytes.
    """
    code = getattr(exc, "sqlstate", None)
    if code in SERIALIZATION_SQLSTATES:
        return TransactionConflict()
    if isinstance(exc, OSError | EOFError | TimeoutError):
        return StorageUnavailable(f"PostgreSQL {what} failed: {type(exc).__name__}: {exc}")
    detail = f"SQLSTATE {code}" if code else type(exc).__name__
    return StorageUnavailable(f"PostgreSQL {what} failed ({detail})")


class Pool:
    """A bounded pool of connections (see the module docstring). One event loop uses it."""

    def __init__(self, connect: Callable[[], Awaitable[Conn]], size: int, acquire_timeout: float) -> None:
        self._connect = connect
        self._size = size
        self._acquire_timeout = acquire_timeout
        self._idle: list[Conn] = []
        self._slots: asyncio.Semaphore | None = None
        self._resets: set[asyncio.Task[None]] = set()
        self._closed = False

    def _semaphore(self) -> asyncio.Semaphore:
        # Created on first use so that it belongs to the event loop that uses the pool.
        if self._slots is None:
            self._slots = asyncio.Semaphore(self._size)
        return self._slots

    async def acquire(self, *, fresh: bool = False) -> Conn:
        """Return an open connection (idle or new; ``fresh``: always new), holding one of the slots.

        Raises:
            StorageUnavailable: no slot freed within ``acquire_timeout``, or connecting failed.
            StorageError: the pool is closed.
        """
        if self._closed:
            raise StorageError("storage is closed")
        slots = self._semaphore()
        if slots.locked():
            try:
                async with asyncio.timeout(self._acquire_timeout):
                    await slots.acquire()
            except TimeoutError:
                raise StorageUnavailable(
                    f"no PostgreSQL connection became free within {self._acquire_timeout:g} s"
                ) from None
        else:
            await slots.acquire()  # a free slot: returns at once
        try:
            while self._idle and not fresh:
                conn = self._idle.pop()
                if not conn.is_closed():
                    return conn
            return await self._connect()
        except BaseException:
            slots.release()
            raise

    def release(self, conn: Conn, reset: str | None = None) -> None:
        """Give ``conn`` back; with ``reset``, run that statement first, in the background."""
        slots = self._semaphore()
        if self._closed or conn.is_closed():
            conn.terminate()
            slots.release()
        elif reset is None:
            self._idle.append(conn)
            slots.release()
        else:
            task = asyncio.get_running_loop().create_task(self._reset(conn, reset))
            self._resets.add(task)
            task.add_done_callback(self._resets.discard)

    def discard(self, conn: Conn) -> None:
        """Close ``conn`` (its state is unknown or broken) and free its slot."""
        conn.terminate()
        self._semaphore().release()

    async def _reset(self, conn: Conn, statement: str) -> None:
        try:
            await conn.execute(statement, timeout=self._acquire_timeout)
        except DRIVER_ERRORS:
            conn.terminate()
        except asyncio.CancelledError:
            conn.terminate()
            raise
        else:
            if self._closed:
                conn.terminate()
            else:
                self._idle.append(conn)
        finally:
            self._semaphore().release()

    async def close(self) -> None:
        """Close every idle connection after background resets finish; later acquires raise."""
        self._closed = True
        if self._resets:
            await asyncio.gather(*self._resets, return_exceptions=True)
        idle, self._idle = self._idle, []
        for conn in idle:
            with contextlib.suppress(*DRIVER_ERRORS):
                await conn.close(timeout=self._acquire_timeout)
            conn.terminate()
