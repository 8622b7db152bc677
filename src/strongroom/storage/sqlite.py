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
  event loop's current turn is over, so every request that was ready in that turn joins it. The writer
  lives in :mod:`strongroom.storage.sqlite_writer`.
* Conflicts: ``meta.seq`` counts commits. A transaction that read records the ``seq`` of its snapshot and
  what each read returned. Under the write lock the writer compares ``seq``; if it moved, it re-runs the
  recorded reads that a later commit may have changed on the write connection (latest state plus earlier
  members of the group) and raises :class:`TransactionConflict` on any difference. Checking and applying
  under one lock is serializable. Which reads need re-running comes from the writer's log of what its own
  recent commits wrote (:class:`~strongroom.storage.sqlite_writer.WriteLog`); when another connection
  committed in between, a commit group failed, or the snapshot is older than the log, every recorded read
  is re-run.

Open a store only after forking: connections and the writer thread must not cross ``fork``.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from types import TracebackType

from strongroom.errors import InvalidRequest, StorageError, StorageUnavailable
from strongroom.storage.base import BufferedTransaction, StoreLimits
from strongroom.storage.sqlite_writer import GET_SQL, RANGE_REV_SQL, RANGE_SQL, SEQ_SQL, Commit, SqliteWriter

__all__ = ["SqliteStore", "SqliteTransaction"]

_SCHEMA = (
    # A rowid table, not WITHOUT ROWID: values are records of ~1 KiB and more, and SQLite stores large
    # rows of WITHOUT ROWID tables badly (measured here: 3x the CPU per write transaction).
    "CREATE TABLE IF NOT EXISTS kv (key BLOB PRIMARY KEY, value BLOB NOT NULL)",
    "CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID",
    "INSERT OR IGNORE INTO meta (name, value) VALUES ('seq', 0)",
)
_SYNC_MODES = ("FULL", "NORMAL", "EXTRA")
_IDLE_READERS = 16


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
            rows = self._reader().execute(GET_SQL, (key,)).fetchall()
        except sqlite3.Error as exc:
            raise StorageUnavailable("sqlite read failed") from exc
        value: bytes | None = rows[0][0] if rows else None
        seen[key] = value
        return value

    async def _snapshot_range(
        self, begin: bytes, end: bytes, limit: int, reverse: bool
    ) -> list[tuple[bytes, bytes]]:
        try:
            cur = self._reader().execute(RANGE_REV_SQL if reverse else RANGE_SQL, (begin, end, limit or -1))
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
                        snapshot_seq = self._conn.execute(SEQ_SQL).fetchall()[0][0]
                    except sqlite3.Error as error:
                        raise StorageUnavailable("sqlite read failed") from error
                commit = Commit(self._writes, self._cleared, self._seen_keys, self._seen_ranges, snapshot_seq)
                self._store._writer.enqueue(commit)
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
        try:
            _make_private_dirs(self._path.parent)
            # Create the file ourselves so that its mode is 0600 whatever the umask; SQLite gives the
            # -wal and -shm files the database file's mode.
            os.close(os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600))
            wconn = self._connect()
            wconn.execute("PRAGMA journal_mode=WAL").fetchall()
            wconn.execute(f"PRAGMA synchronous={synchronous}")
            wconn.execute("BEGIN IMMEDIATE")
            for statement in _SCHEMA:
                wconn.execute(statement)
            wconn.execute("COMMIT")
        except (OSError, sqlite3.Error) as exc:
            raise StorageUnavailable(f"cannot open sqlite database: {exc}") from exc
        self._writer = SqliteWriter(wconn)

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
        await self._writer.close()
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


def _make_private_dirs(directory: Path) -> None:
    # Path.mkdir(parents=True) and os.makedirs give intermediate directories the default mode, so each
    # missing level is created here with 0700.
    missing: list[Path] = []
    while not directory.exists():
        missing.append(directory)
        directory = directory.parent
    for d in reversed(missing):
        d.mkdir(mode=0o700, exist_ok=True)
