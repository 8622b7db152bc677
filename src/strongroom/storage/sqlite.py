"""SQLite store: the embedded default backend (stdlib ``sqlite3``, WAL mode).

Guarantees: the protocol's (``strongroom.storage.base``), also across several processes opening the same
file, and durability of every acknowledged commit against process crashes, and with
``synchronous="FULL"`` (the default) against power loss. ``NORMAL`` keeps crash safety but may lose the
last commits on power loss, for about 2.5x the commit rate.

Design (docs/spec/storage-layout.md, "sqlite"):

* Reads run on the caller's (event-loop) thread: a primary-key lookup costs a few microseconds, less than a
  hop to a thread. A transaction takes a read connection from a pool at its first read and runs ``BEGIN``;
  its first ``SELECT`` fixes its WAL snapshot until the transaction ends.
* Writes are buffered (``BufferedTransaction`` merges them into reads). Commit hands them to one writer
  thread that owns the only write connection. Transactions queued while the writer is busy are committed
  as a group: ``BEGIN IMMEDIATE``; per transaction: conflict check, apply, count; one ``COMMIT`` and one
  fsync for the group. Each transaction's outcome is still decided on its own. A group is taken when the
  event loop's current turn is over, so every request that was ready in that turn joins it (``_enqueue``).
* Conflicts: ``meta.seq`` counts commits. A transaction that read records the ``seq`` of its snapshot and
  what each read returned. Under the write lock the writer compares ``seq``; if it moved, it re-runs the
  recorded reads that a later commit may have changed on the write connection (latest state plus earlier
  members of the group) and raises :class:`TransactionConflict` on any difference. Checking and applying
  under one lock is serializable. Which reads need re-running comes from the writer's log of what its own
  recent commits wrote (:class:`~strongroom.storage.base.WriteLog`); when another process committed in
  between, or the snapshot is older than the log, every recorded read is re-run.

Open a store only after forking: connections and the writer thread must not cross ``fork``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType

from strongroom.errors import InvalidRequest, StorageError, StorageUnavailable, TransactionConflict
from strongroom.storage.base import BufferedTransaction, StoreLimits, WriteLog

__all__ = ["SqliteStore", "SqliteTransaction"]

_SCHEMA = (
    # A rowid table, not WITHOUT ROWID: values are records of ~1 KiB and more, and SQLite stores large
    # rows of WITHOUT ROWID tables badly (measured here: 3x the CPU per write transaction).
    "CREATE TABLE IF NOT EXISTS kv (key BLOB PRIMARY KEY, value BLOB NOT NULL)",
    "CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID",
    "INSERT OR IGNORE INTO meta (name, value) VALUES ('seq', 0)",
)
_GET = "SELECT value FROM kv WHERE key = ?"
_RANGE = "SELECT key, value FROM kv WHERE key >= ? AND key < ? ORDER BY key LIMIT ?"
_RANGE_REV = "SELECT key, value FROM kv WHERE key >= ? AND key < ? ORDER BY key DESC LIMIT ?"
_SEQ = "SELECT value FROM meta WHERE name = 'seq'"
_SET_SEQ = "UPDATE meta SET value = ? WHERE name = 'seq'"
# An upsert, not INSERT OR REPLACE: replacing deletes the row and its index entry and inserts both anew;
# updating in place leaves the index alone (measured: ~8 us less per overwritten ~300-byte record).
_PUT = "INSERT INTO kv (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value"
_DELETE = "DELETE FROM kv WHERE key = ?"
_DELETE_RANGE = "DELETE FROM kv WHERE key >= ? AND key < ?"
_SYNC_MODES = ("FULL", "NORMAL", "EXTRA")
_IDLE_READERS = 16
# How long the writer waits at most for the event loop to end its turn before taking queued commits (a
# bound for a loop stuck in a long callback; normally the loop flushes within microseconds).
_FLUSH_WAIT_S = 0.001


class _Commit:
    """A transaction handed to the writer thread."""

    __slots__ = ("cleared", "future", "loop", "ranges", "reads", "snapshot_seq", "writes")

    def __init__(self, tx: SqliteTransaction, snapshot_seq: int | None) -> None:
        self.writes = tx._writes
        self.cleared = tx._cleared
        self.reads = tx._seen_keys
        self.ranges = tx._seen_ranges
        self.snapshot_seq = snapshot_seq
        self.loop = asyncio.get_running_loop()
        self.future: asyncio.Future[None] = self.loop.create_future()


class SqliteTransaction(BufferedTransaction):
    """A transaction on a :class:`SqliteStore`. Its snapshot is fixed by its first read."""

    def __init__(self, store: SqliteStore) -> None:
        super().__init__(store.limits)
        self._store = store
        self._conn: sqlite3.Connection | None = None
        # What the snapshot returned, for re-validation at commit.
        self._seen_keys: dict[bytes, bytes | None] = {}
        self._seen_ranges: list[tuple[bytes, bytes, list[tuple[bytes, bytes]]]] = []

    def _reader(self) -> sqlite3.Connection:
        conn = self._conn
        if conn is None:
            conn = self._conn = self._store._acquire()
        return conn

    async def _snapshot_get(self, key: bytes) -> bytes | None:
        seen = self._seen_keys
        if key in seen:
            # The snapshot is fixed, so a key read before reads the same again (requests read some keys
            # twice, e.g. a secret's metadata in the existence check and in the handler).
            return seen[key]
        try:
            rows = self._reader().execute(_GET, (key,)).fetchall()
        except sqlite3.Error as exc:
            raise StorageUnavailable("sqlite read failed") from exc
        value: bytes | None = rows[0][0] if rows else None
        seen[key] = value
        return value

    async def _snapshot_range(
        self, begin: bytes, end: bytes, limit: int, reverse: bool
    ) -> list[tuple[bytes, bytes]]:
        try:
            cur = self._reader().execute(_RANGE_REV if reverse else _RANGE, (begin, end, limit or -1))
            rows: list[tuple[bytes, bytes]] = cur.fetchall()
        except sqlite3.Error as exc:
            raise StorageUnavailable("sqlite read failed") from exc
        if limit and len(rows) == limit:
            # Cut short by the limit: only the part up to the last returned key was read.
            if reverse:
                begin = rows[-1][0]
            else:
                end = rows[-1][0] + b"\x00"
        self._seen_ranges.append((begin, end, rows[::-1] if reverse else rows))
        return rows

    def _release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            self._store._release(conn)

    async def __aenter__(self) -> SqliteTransaction:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if exc_type is None and self.has_writes:
                snapshot_seq: int | None = None
                if self._conn is not None:
                    try:
                        snapshot_seq = self._conn.execute(_SEQ).fetchall()[0][0]
                    except sqlite3.Error as error:
                        raise StorageUnavailable("sqlite read failed") from error
                commit = _Commit(self, snapshot_seq)
                self._store._enqueue(commit)
                # Give the snapshot back before waiting: the writer never needs it, and holding it would
                # hold back WAL checkpoints.
                self._release()
                # Cancelling this await does not cancel the commit: its outcome is then unknown here.
                await commit.future
        finally:
            self._release()


class SqliteStore:
    """A store in one SQLite database file (see the module docstring)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        synchronous: str = "FULL",
        limits: StoreLimits | None = None,
        busy_timeout: float = 5.0,
    ) -> None:
        """Open (creating if needed) the database at ``path``.

        Missing parent directories are created with mode 0700 and a new file with mode 0600.

        Raises:
            InvalidRequest: ``synchronous`` is not FULL, NORMAL or EXTRA.
            StorageUnavailable: the file cannot be created or opened.
        """
        synchronous = synchronous.upper()
        if synchronous not in _SYNC_MODES:
            raise InvalidRequest(f"sqlite synchronous must be one of {', '.join(_SYNC_MODES)}")
        self._path = Path(path)
        self._limits = limits or StoreLimits()
        self._busy_ms = int(busy_timeout * 1000)
        self._closed = False
        self._pool: list[sqlite3.Connection] = []
        self._queue: list[_Commit] = []
        self._qcond = threading.Condition(threading.Lock())
        self._draining = False
        self._flush_pending: set[asyncio.AbstractEventLoop] = set()
        self._flushed = False
        self._log = WriteLog()
        try:
            _make_private_dirs(self._path.parent)
            # Create the file ourselves so that its mode is 0600 whatever the umask; SQLite gives the
            # -wal and -shm files the database file's mode.
            os.close(os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600))
            self._wconn = self._connect()
            self._wconn.execute("PRAGMA journal_mode=WAL").fetchall()
            self._wconn.execute(f"PRAGMA synchronous={synchronous}")
            self._wconn.execute("BEGIN IMMEDIATE")
            for statement in _SCHEMA:
                self._wconn.execute(statement)
            self._wconn.execute("COMMIT")
        except (OSError, sqlite3.Error) as exc:
            raise StorageUnavailable(f"cannot open sqlite database: {exc}") from exc
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="strongroom-sqlite-writer")

    @property
    def limits(self) -> StoreLimits:
        """The size limits."""
        return self._limits

    @property
    def kind(self) -> str:
        """``"sqlite"``."""
        return "sqlite"

    @property
    def path(self) -> Path:
        """The database file."""
        return self._path

    def transaction(self) -> SqliteTransaction:
        """Open a transaction (an async context manager; leaving it normally commits).

        Raises (at commit):
            TransactionConflict: a commit after this transaction's snapshot changed what it read.
            StorageUnavailable: SQLite failed or stayed locked by another process past ``busy_timeout``.
            StorageError: the store is closed.
        """
        return SqliteTransaction(self)

    async def close(self) -> None:
        """Wait for queued commits, then close every connection and the writer thread."""
        if self._closed:
            return
        self._closed = True
        self._flush()
        # The single writer thread runs jobs in order, so this runs after every queued commit.
        await asyncio.get_running_loop().run_in_executor(self._writer, self._wconn.close)
        self._writer.shutdown(wait=True)
        for conn in self._pool:
            conn.close()
        self._pool.clear()

    # -- connections -------------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        # isolation_level=None: we issue BEGIN/COMMIT ourselves. check_same_thread=False: the write
        # connection is created here and used on the writer thread (one thread at a time).
        conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout={self._busy_ms}")
        # No memory mapping: after every commit by another connection SQLite drops a reader's page cache
        # and, with mmap, also unmaps and re-faults the mapping; measured here that doubles the cost of
        # the reads a request makes after a write (write requests ran ~15% slower), for no gain on reads.
        conn.execute("PRAGMA mmap_size=0").fetchall()
        return conn

    def _acquire(self) -> sqlite3.Connection:
        if self._closed:
            raise StorageError("storage is closed")
        try:
            conn = self._pool.pop() if self._pool else self._connect()
            conn.execute("BEGIN")
        except sqlite3.Error as exc:
            raise StorageUnavailable("cannot open a sqlite read transaction") from exc
        return conn

    def _release(self, conn: sqlite3.Connection) -> None:
        try:
            conn.execute("ROLLBACK")
        except sqlite3.Error:
            conn.close()
            return
        if self._closed or len(self._pool) >= _IDLE_READERS:
            conn.close()
        else:
            self._pool.append(conn)

    # -- the writer ----------------------------------------------------------------------------------

    def _enqueue(self, commit: _Commit) -> None:
        if self._closed:
            raise StorageError("storage is closed")
        loop = commit.loop
        with self._qcond:
            self._queue.append(commit)
            schedule = loop not in self._flush_pending
            self._flush_pending.add(loop)
        if schedule:
            # Group commit: the writer takes the queue once this event-loop turn is over, so every request
            # ready in it joins the group. With 32 concurrent KV writers groups grew from ~2 to ~15-25 and
            # CPU per write fell 20-30% (fewer COMMITs, fsyncs, wake-ups and reader page-cache resets).
            loop.call_soon(self._flush, loop)

    def _flush(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """Let the writer take the queue (after ``loop``'s turn; ``None``: now, for every loop)."""
        with self._qcond:
            if loop is None:
                self._flush_pending.clear()
            else:
                self._flush_pending.discard(loop)
            self._flushed = True
            start = not self._draining
            self._draining = True
            self._qcond.notify()
        if start:
            self._writer.submit(self._drain)

    def _drain(self) -> None:
        """Writer thread: commit queued transactions in groups until the queue is empty."""
        while True:
            with self._qcond:
                if self._queue and not self._flushed:
                    self._qcond.wait(_FLUSH_WAIT_S)
                self._flushed = False
                batch, self._queue = self._queue, []
                if not batch:
                    self._draining = False
                    return
            outcomes = self._write_batch(batch)
            # One wake-up per event loop per group: each call_soon_threadsafe is a self-pipe write.
            by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[None], Exception | None]]] = {}
            for commit, error in zip(batch, outcomes, strict=True):
                by_loop.setdefault(commit.loop, []).append((commit.future, error))
            for loop, results in by_loop.items():
                # RuntimeError: that event loop is closed, so nobody waits for the outcome.
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(_resolve, results)

    def _write_batch(self, batch: list[_Commit]) -> list[Exception | None]:
        conn = self._wconn
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error:
            return [StorageUnavailable("sqlite database is locked") for _ in batch]
        log = self._log
        try:
            seq = start = conn.execute(_SEQ).fetchall()[0][0]
            log.begin(seq)
            outcomes: list[Exception | None] = []
            for commit in batch:
                snapshot = commit.snapshot_seq
                if snapshot is not None and snapshot != seq and _stale(conn, commit, log.suspects(snapshot, commit.reads, [r[:2] for r in commit.ranges])):
                    outcomes.append(TransactionConflict())
                    continue
                _apply(conn, commit)
                seq += 1
                log.append(commit.writes, commit.cleared)
                outcomes.append(None)
            if seq == start:
                conn.execute("ROLLBACK")
            else:
                conn.execute(_SET_SEQ, (seq,))
                conn.execute("COMMIT")
            log.top = seq
        except Exception:
            # Any failure fails the whole group but leaves no write transaction open and no caller
            # waiting. What was committed is uncertain: the next group starts a fresh log. (An error may
            # already have rolled the transaction back.)
            log.top = None
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            return [StorageUnavailable("sqlite write failed") for _ in batch]
        return outcomes


def _make_private_dirs(directory: Path) -> None:
    # Path.mkdir(parents=True) and os.makedirs give intermediate directories the default mode, so each
    # missing level is created here with 0700.
    missing: list[Path] = []
    while not directory.exists():
        missing.append(directory)
        directory = directory.parent
    for d in reversed(missing):
        d.mkdir(mode=0o700, exist_ok=True)


def _resolve(results: list[tuple[asyncio.Future[None], Exception | None]]) -> None:
    for future, error in results:
        if future.done():
            continue
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)


def _stale(conn: sqlite3.Connection, commit: _Commit, found: tuple[set[bytes], list[int]] | None) -> bool:
    """Whether any recorded read would now return something else.

    ``found`` (from :meth:`WriteLog.suspects`) names the reads that a commit since the snapshot may have
    touched; only those are re-run, with values still compared, so the answer is the same as re-running
    every read, which is what ``None`` (the log cannot tell) does. (Re-running all ~10 reads of a KV write
    cost 60-150 us of the writer thread per transaction at concurrency 32; the log's check a few us.)
    """
    reads: dict[bytes, bytes | None] = commit.reads
    ranges = commit.ranges
    if found is not None:
        keys, touched = found
        reads = {k: reads[k] for k in keys}
        ranges = [ranges[i] for i in touched]
    for key, seen in reads.items():
        rows = conn.execute(_GET, (key,)).fetchall()
        if (rows[0][0] if rows else None) != seen:
            return True
    for begin, end, seen_rows in ranges:
        if conn.execute(_RANGE, (begin, end, -1)).fetchall() != seen_rows:
            return True
    return False


def _apply(conn: sqlite3.Connection, commit: _Commit) -> None:
    # Cleared ranges first, then point writes: the buffer's invariant (see BufferedTransaction).
    for begin, end in commit.cleared:
        conn.execute(_DELETE_RANGE, (begin, end))
    deletes = [(k,) for k, v in commit.writes.items() if v is None]
    puts = [(k, v) for k, v in commit.writes.items() if v is not None]
    if deletes:
        conn.executemany(_DELETE, deletes)
    if puts:
        conn.executemany(_PUT, puts)
