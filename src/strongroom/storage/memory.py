"""In-memory store: real MVCC transactions for tests and ``memory://`` development servers.

Guarantees (the protocol's, see ``strongroom.storage.base``): snapshot reads, read-your-writes, atomic
commits, and ``TransactionConflict`` when a key or range a transaction read was written by a transaction
that committed after its snapshot. Data is lost when the process exits. The store belongs to one thread:
all of its code runs synchronously between awaits, which is what makes each commit atomic.

Data structures (docs/spec/storage-layout.md, "memory"):

* ``_data``: current values; ``_keys``: sorted list of current keys plus deleted keys some live snapshot
  may still see (tombstones);
* ``_history[key]``: ``[(version, previous value or None), ...]`` ascending: commit ``version`` replaced
  ``previous``. Recorded only while other transactions are live, and pruned when the oldest live
  snapshot moves past it, so a store without concurrent transactions keeps no history;
* ``_log``: per commit newer than the oldest live snapshot, the written keys and cleared ranges, which
  conflict checks compare with read sets.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import deque
from types import TracebackType

from strongroom.errors import TransactionConflict
from strongroom.storage.base import BufferedTransaction, StoreLimits, _in_ranges, _merge_ranges

__all__ = ["MemoryStore", "MemoryTransaction"]


class _Commit:
    """One commit newer than the oldest live snapshot: what it wrote and which keys got history."""

    __slots__ = ("cleared", "keys", "touched", "version")

    def __init__(
        self,
        version: int,
        keys: frozenset[bytes],
        cleared: list[tuple[bytes, bytes]],
        touched: list[bytes],
    ) -> None:
        self.version = version
        self.keys = keys
        self.cleared = cleared
        self.touched = touched


class MemoryTransaction(BufferedTransaction):
    """A transaction on a :class:`MemoryStore`; its snapshot is the store version when it was opened."""

    def __init__(self, store: MemoryStore) -> None:
        super().__init__(store.limits)
        self._store = store
        self._snapshot = store._version
        self._read_keys: set[bytes] = set()
        self._read_ranges: list[tuple[bytes, bytes]] = []
        store._pin(self._snapshot)

    async def _snapshot_get(self, key: bytes) -> bytes | None:
        self._read_keys.add(key)
        return self._store._get_at(key, self._snapshot)

    async def _snapshot_range(
        self, begin: bytes, end: bytes, limit: int, reverse: bool
    ) -> list[tuple[bytes, bytes]]:
        rows = self._store._range_at(begin, end, limit, reverse, self._snapshot)
        if limit and len(rows) == limit:
            # Cut short by the limit: only the part up to the last returned key was read.
            if reverse:
                begin = rows[-1][0]
            else:
                end = rows[-1][0] + b"\x00"
        self._read_ranges.append((begin, end))
        return rows

    async def __aenter__(self) -> MemoryTransaction:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if exc_type is None and self.has_writes:
                self._store._commit(self)
        finally:
            self._store._unpin(self._snapshot)


class MemoryStore:
    """An ordered, transactional key-value store held in memory (see the module docstring)."""

    def __init__(self, limits: StoreLimits | None = None) -> None:
        """Create an empty store with ``limits`` (defaults: :class:`StoreLimits`)."""
        self._limits = limits or StoreLimits()
        self._data: dict[bytes, bytes] = {}
        self._keys: list[bytes] = []
        self._history: dict[bytes, list[tuple[int, bytes | None]]] = {}
        self._log: deque[_Commit] = deque()
        self._version = 0
        self._live: dict[int, int] = {}
        self._nlive = 0

    @property
    def limits(self) -> StoreLimits:
        """The size limits."""
        return self._limits

    @property
    def kind(self) -> str:
        """``"memory"``."""
        return "memory"

    def transaction(self) -> MemoryTransaction:
        """Open a transaction (an async context manager; leaving it normally commits).

        Raises (at commit):
            TransactionConflict: a transaction that committed after this one's snapshot wrote a key or
                into a range this one read.
        """
        return MemoryTransaction(self)

    async def close(self) -> None:
        """Drop all data."""
        self._data.clear()
        self._keys.clear()
        self._history.clear()
        self._log.clear()

    # -- snapshot reads -----------------------------------------------------------------------------

    def _get_at(self, key: bytes, version: int) -> bytes | None:
        hist = self._history.get(key)
        if hist is not None:
            for v, previous in hist:
                if v > version:
                    return previous
        return self._data.get(key)

    def _range_at(
        self, begin: bytes, end: bytes, limit: int, reverse: bool, version: int
    ) -> list[tuple[bytes, bytes]]:
        lo = bisect_left(self._keys, begin)
        hi = bisect_left(self._keys, end)
        keys = self._keys
        if not self._history:
            # Fast path: no history means no tombstones and no newer commits to look behind.
            data = self._data
            if reverse:
                lo = max(lo, hi - limit) if limit else lo
                return [(k, data[k]) for k in reversed(keys[lo:hi])]
            hi = min(hi, lo + limit) if limit else hi
            return [(k, data[k]) for k in keys[lo:hi]]
        out: list[tuple[bytes, bytes]] = []
        indexes = range(hi - 1, lo - 1, -1) if reverse else range(lo, hi)
        for i in indexes:
            k = keys[i]
            value = self._get_at(k, version)
            if value is not None:
                out.append((k, value))
                if len(out) == limit:
                    break
        return out

    # -- commit -------------------------------------------------------------------------------------

    def _conflicts(self, tx: MemoryTransaction) -> bool:
        if tx._snapshot == self._version or (not tx._read_keys and not tx._read_ranges):
            return False
        read_keys = tx._read_keys
        ranges = _merge_ranges(tx._read_ranges)
        for commit in reversed(self._log):
            if commit.version <= tx._snapshot:
                break
            if not read_keys.isdisjoint(commit.keys):
                return True
            if ranges and any(_in_ranges(ranges, k) for k in commit.keys):
                return True
            for b, e in commit.cleared:
                if any(b <= k < e for k in read_keys) or any(rb < e and b < re for rb, re in ranges):
                    return True
        return False

    def _commit(self, tx: MemoryTransaction) -> None:
        if self._conflicts(tx):
            raise TransactionConflict()
        self._version += 1
        version = self._version
        # Others may still read older versions iff some transaction other than this one is live.
        keep = self._nlive > 1
        data, keys, history = self._data, self._keys, self._history
        touched: list[bytes] = []
        for b, e in tx._cleared:
            lo, hi = bisect_left(keys, b), bisect_left(keys, e)
            doomed = [k for k in keys[lo:hi] if k in data]
            for k in doomed:
                old = data.pop(k)
                if keep:
                    history.setdefault(k, []).append((version, old))
                    touched.append(k)
            if not keep:
                # Keys with history stay as tombstones until pruned (invariant: a key in _keys is in
                # _data or in _history).
                keys[lo:hi] = [k for k in keys[lo:hi] if k in history]
        for k, value in tx._writes.items():
            previous = data.get(k)
            if value is None:
                if previous is None:
                    continue
                del data[k]
                if not keep and k not in history:
                    _discard(keys, k)
            else:
                data[k] = value
                if previous is None:
                    i = bisect_left(keys, k)
                    if i == len(keys) or keys[i] != k:
                        keys.insert(i, k)
            if keep:
                history.setdefault(k, []).append((version, previous))
                touched.append(k)
        if keep:
            self._log.append(_Commit(version, frozenset(tx._writes), list(tx._cleared), touched))

    # -- snapshot bookkeeping -------------------------------------------------------------------------

    def _pin(self, version: int) -> None:
        self._live[version] = self._live.get(version, 0) + 1
        self._nlive += 1

    def _unpin(self, version: int) -> None:
        self._nlive -= 1
        count = self._live[version] - 1
        if count:
            self._live[version] = count
            return
        del self._live[version]
        self._prune()

    def _prune(self) -> None:
        """Forget history, tombstones and log entries that no live snapshot can need.

        A history entry ``(v, previous)`` serves only snapshots older than ``v``; once the oldest live
        snapshot is at least ``v`` it is dead. Each commit's log entry lists the keys it gave history to,
        so pruning costs what the commits being forgotten wrote, not the size of the store.
        """
        oldest = min(self._live) if self._live else self._version
        log, history, data, keys = self._log, self._history, self._data, self._keys
        while log and log[0].version <= oldest:
            for k in log.popleft().touched:
                hist = history.get(k)
                if hist is None:
                    continue
                while hist and hist[0][0] <= oldest:
                    hist.pop(0)
                if not hist:
                    del history[k]
                    if k not in data:
                        _discard(keys, k)


def _discard(keys: list[bytes], key: bytes) -> None:
    i = bisect_left(keys, key)
    if i < len(keys) and keys[i] == key:
        del keys[i]
