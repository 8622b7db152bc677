"""The storage protocol every backend implements.

Storage is untrusted: it only ever sees opaque byte keys and (already encrypted) byte values. A backend
offers interactive, optimistic, serializable transactions (FoundationDB's model):

* reads inside a transaction see one consistent snapshot plus the transaction's own writes;
* writes are buffered and applied atomically at commit, all or nothing;
* commit raises :class:`~strongroom.errors.TransactionConflict` if any key or range the transaction read
  was changed by another transaction that committed after the snapshot was taken (a write into a range
  that was read counts as a change of that range, including inserts);
* :func:`transactional` retries the whole function on conflict, so functions passed to it must be
  retry-safe (no side effects outside the transaction).

Keys are compared as unsigned bytes (``memcmp`` order). ``range(begin, end)`` is half open.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Protocol, TypeVar

from strongroom.errors import TransactionConflict

T = TypeVar("T")


@dataclass(frozen=True)
class StoreLimits:
    """Size limits of a backend; exceeding one raises :class:`~strongroom.errors.RecordTooLarge`."""

    max_key_bytes: int = 10_000
    max_value_bytes: int = 64 * 1024 * 1024
    max_transaction_bytes: int = 256 * 1024 * 1024
    max_transaction_ops: int = 1_000_000


class Transaction(Protocol):
    """One interactive transaction. Obtained from :meth:`Store.transaction`; not shared between tasks."""

    async def get(self, key: bytes) -> bytes | None:
        """Return the value at ``key`` (own writes first), or ``None``. Adds ``key`` to the read set."""
        ...

    async def range(
        self, begin: bytes, end: bytes, *, limit: int = 0, reverse: bool = False
    ) -> list[tuple[bytes, bytes]]:
        """Return the pairs with ``begin <= key < end`` in key order (descending if ``reverse``).

        ``limit`` 0 means no limit. Own writes and clears are merged in. The range actually read (up to
        the last returned key when a limit cut it short) joins the read set.
        """
        ...

    def set(self, key: bytes, value: bytes) -> None:
        """Buffer a write of ``value`` at ``key``.

        Raises:
            RecordTooLarge: the key or value exceeds the backend's limits.
        """
        ...

    def clear(self, key: bytes) -> None:
        """Buffer the deletion of ``key`` (no error if absent)."""
        ...

    def clear_range(self, begin: bytes, end: bytes) -> None:
        """Buffer the deletion of every key in ``[begin, end)``."""
        ...


class Store(Protocol):
    """A storage backend."""

    @property
    def limits(self) -> StoreLimits:
        """The backend's size limits."""
        ...

    @property
    def kind(self) -> str:
        """Short name of the backend type, e.g. ``"sqlite"``; reported as ``storage_type``."""
        ...

    def transaction(self) -> AbstractAsyncContextManager[Transaction]:
        """Open a transaction. Leaving the block normally commits; an exception discards it.

        Raises (at commit):
            TransactionConflict: a concurrent commit invalidated what this transaction read.
            RecordTooLarge: the transaction exceeds the backend's limits.
            StorageUnavailable: the backend could not be reached.
        """
        ...

    async def close(self) -> None:
        """Release connections and files. The store is unusable afterwards."""
        ...


async def transactional(
    store: Store,
    fn: Callable[[Transaction], Awaitable[T]],
    *,
    attempts: int = 32,
) -> T:
    """Run ``fn`` in a transaction and commit it, retrying on :class:`TransactionConflict`.

    ``fn`` may run several times; only the last, committed run has effects. The backoff is jittered so
    that contending writers spread out.

    Raises:
        TransactionConflict: still conflicting after ``attempts`` tries.
        Any exception ``fn`` raises (the transaction is then discarded, not retried).
    """
    delay = 0.0005
    for attempt in range(attempts):
        try:
            async with store.transaction() as tx:
                result = await fn(tx)
            return result
        except TransactionConflict:
            if attempt == attempts - 1:
                raise
            await asyncio.sleep(random.uniform(0, delay))
            delay = min(delay * 2, 0.05)
    raise AssertionError("unreachable")


async def iterate_range(
    tx: Transaction, begin: bytes, end: bytes, *, batch: int = 1000
) -> AsyncIterator[tuple[bytes, bytes]]:
    """Yield every pair in ``[begin, end)`` in order, reading ``batch`` keys at a time."""
    while True:
        rows = await tx.range(begin, end, limit=batch)
        for row in rows:
            yield row
        if len(rows) < batch:
            return
        begin = rows[-1][0] + b"\x00"
