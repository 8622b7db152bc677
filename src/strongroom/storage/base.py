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

import abc
import asyncio
import random
from bisect import bisect_left
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Protocol, TypeVar

from strongroom.errors import RecordTooLarge, TransactionConflict

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
                # Leaving the block commits; a conflict at commit propagates before the value returns.
                return await fn(tx)
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


def _merge_ranges(ranges: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """Sort half-open ``ranges`` and merge overlapping or touching ones into a sorted disjoint list
    (the form :func:`_in_ranges` binary-searches)."""
    out: list[tuple[bytes, bytes]] = []
    for b, e in sorted(ranges):
        if out and b <= out[-1][1]:
            if e > out[-1][1]:
                out[-1] = (out[-1][0], e)
        else:
            out.append((b, e))
    return out


def _in_ranges(ranges: list[tuple[bytes, bytes]], key: bytes) -> bool:
    """Whether ``key`` lies in one of ``ranges`` (sorted, disjoint, half open)."""
    # (key + b"\x00",) sorts after every range starting at or before key and before every range starting
    # later, so index i is the last range starting at or before key.
    i = bisect_left(ranges, (key + b"\x00",)) - 1
    return i >= 0 and ranges[i][0] <= key < ranges[i][1]


def _segments(begin: bytes, end: bytes, ranges: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes, bool]]:
    """Split ``[begin, end)`` along the sorted disjoint ``ranges``: ``(b, e, inside_a_range)`` in order."""
    out: list[tuple[bytes, bytes, bool]] = []
    cur = begin
    for b, e in ranges:
        if e <= cur:
            continue
        if b >= end:
            break
        if b > cur:
            out.append((cur, b, False))
        out.append((max(cur, b), min(e, end), True))
        cur = e
        if cur >= end:
            return out
    if cur < end:
        out.append((cur, end, False))
    return out


class BufferedTransaction(abc.ABC):
    """Read-your-writes write buffer shared by backends that buffer writes until commit.

    A backend subclasses it and supplies :meth:`_snapshot_get` and :meth:`_snapshot_range`, which read its
    snapshot and record what they read for conflict detection. This class merges buffered ``set``,
    ``clear`` and ``clear_range`` into reads and enforces :class:`StoreLimits`.

    Buffer invariants: ``_writes`` maps a key to its new value or ``None`` (cleared); ``_cleared`` is a
    sorted list of disjoint ranges cleared by ``clear_range``; a key in ``_writes`` overrides
    ``_cleared``. Applying all of ``_cleared`` first and then all of ``_writes`` reproduces the buffer's
    effect in any order of the calls that built it.
    """

    def __init__(self, limits: StoreLimits) -> None:
        self._limits = limits
        self._writes: dict[bytes, bytes | None] = {}
        self._cleared: list[tuple[bytes, bytes]] = []
        self._ops = 0
        self._bytes = 0
        self._sorted_keys: list[bytes] | None = None

    @abc.abstractmethod
    async def _snapshot_get(self, key: bytes) -> bytes | None:
        """Read ``key`` from the backend's snapshot (ignoring this transaction's own writes)."""

    @abc.abstractmethod
    async def _snapshot_range(
        self, begin: bytes, end: bytes, limit: int, reverse: bool
    ) -> list[tuple[bytes, bytes]]:
        """Read ``[begin, end)`` from the backend's snapshot, in order (``limit`` 0: no limit)."""

    @property
    def has_writes(self) -> bool:
        """Whether anything was buffered."""
        return bool(self._writes) or bool(self._cleared)

    async def get(self, key: bytes) -> bytes | None:
        """See :meth:`Transaction.get`. A key answered from the buffer does not join the read set."""
        if key in self._writes:
            return self._writes[key]
        if self._cleared and _in_ranges(self._cleared, key):
            return None
        return await self._snapshot_get(key)

    async def range(
        self, begin: bytes, end: bytes, *, limit: int = 0, reverse: bool = False
    ) -> list[tuple[bytes, bytes]]:
        """See :meth:`Transaction.range`."""
        if begin >= end:
            return []
        if not self._writes and not self._cleared:
            return await self._snapshot_range(begin, end, limit, reverse)
        pieces = _segments(begin, end, self._cleared)
        if reverse:
            pieces.reverse()
        if self._sorted_keys is None:
            self._sorted_keys = sorted(self._writes)
        out: list[tuple[bytes, bytes]] = []
        for b, e, cleared in pieces:
            remaining = limit - len(out) if limit else 0
            local = self._sorted_keys[bisect_left(self._sorted_keys, b) : bisect_left(self._sorted_keys, e)]
            if cleared:
                # Nothing of the snapshot shows through a cleared range (and it is not read), only keys
                # set after the clear.
                values = ((k, self._writes[k]) for k in (reversed(local) if reverse else local))
                out.extend((k, v) for k, v in values if v is not None)
                if limit and len(out) >= limit:
                    return out[:limit]
                continue
            # Each buffered clear can hide one snapshot row; fetching that many more than needed makes one
            # fetch per piece enough even when a limit cuts it short.
            want = remaining + sum(1 for k in local if self._writes[k] is None) if limit else 0
            rows = await self._snapshot_range(b, e, want, reverse)
            merged = dict(rows)
            if want and len(rows) == want:
                # Truncated: the snapshot is known only up to the last row, so merge only buffered keys
                # inside that part.
                last = rows[-1][0]
                local = [k for k in local if (k >= last if reverse else k <= last)]
            for k in local:
                v = self._writes[k]
                if v is None:
                    merged.pop(k, None)
                else:
                    merged[k] = v
            out.extend(sorted(merged.items(), reverse=reverse))
            if limit and len(out) >= limit:
                return out[:limit]
        return out

    def _count(self, nbytes: int) -> None:
        self._ops += 1
        self._bytes += nbytes
        lim = self._limits
        if self._ops > lim.max_transaction_ops or self._bytes > lim.max_transaction_bytes:
            raise RecordTooLarge("transaction exceeds the storage backend's size limit")

    def set(self, key: bytes, value: bytes) -> None:
        """See :meth:`Transaction.set`.

        Raises:
            RecordTooLarge: the key, the value or the transaction's running totals exceed the limits.
        """
        lim = self._limits
        if len(key) > lim.max_key_bytes:
            raise RecordTooLarge("key exceeds the storage backend's size limit")
        if len(value) > lim.max_value_bytes:
            raise RecordTooLarge("value exceeds the storage backend's size limit")
        self._count(len(key) + len(value))
        if self._sorted_keys is not None and key not in self._writes:
            self._sorted_keys = None
        self._writes[key] = value

    def clear(self, key: bytes) -> None:
        """See :meth:`Transaction.clear`.

        Raises:
            RecordTooLarge: the transaction's running totals exceed the limits.
        """
        if len(key) > self._limits.max_key_bytes:
            return  # such a key cannot exist
        self._count(len(key))
        if self._sorted_keys is not None and key not in self._writes:
            self._sorted_keys = None
        self._writes[key] = None

    def clear_range(self, begin: bytes, end: bytes) -> None:
        """See :meth:`Transaction.clear_range`.

        Raises:
            RecordTooLarge: the transaction's running totals exceed the limits.
        """
        if begin >= end:
            return
        self._count(len(begin) + len(end))
        for k in [k for k in self._writes if begin <= k < end]:
            del self._writes[k]
            self._sorted_keys = None
        # Insert and merge overlapping or touching ranges, keeping the list sorted and disjoint.
        merged: list[tuple[bytes, bytes]] = []
        for b, e in self._cleared:
            if e < begin or b > end:
                merged.append((b, e))
            else:
                begin, end = min(b, begin), max(e, end)
        merged.append((begin, end))
        merged.sort()
        self._cleared = merged
