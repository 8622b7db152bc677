"""PostgreSQL store (``postgresql://`` and ``postgres://`` URLs), through asyncpg.

Guarantees: the protocol's (``strongroom.storage.base``): snapshot reads, read-your-writes, atomic commits,
and a commit fails with :class:`TransactionConflict` when a commit after its snapshot changed anything it
read (point reads and ranges, including inserts into a range and keys read as absent). Several processes
and nodes may share one database. Commits are durable as the server's ``synchronous_commit`` promises.
Driver and network errors leave as :class:`StorageUnavailable` (or :class:`TransactionConflict`), and every
wait is bounded by a timeout.

Design (docs/storage/postgresql.md; the reasons are measured there):

* **Reads** run in a ``SERIALIZABLE READ ONLY`` transaction on one pooled connection, opened at the
  transaction's first read: one snapshot for every read. Each read also fetches the row's ``xmin`` (the
  id of the transaction that wrote that row version), which identifies the version read.
* **Writes** are buffered (``BufferedTransaction``). At commit the read transaction is rolled back in the
  background and one statement, ``SELECT sr_commit(...)``, runs as its own SERIALIZABLE transaction: it
  re-reads every key and range the transaction read and compares the row versions (a rewrite, a deletion,
  an insert into a range or of a key read as absent all change them), returns false on any difference
  (an answer, not an error, so PostgreSQL logs nothing), else applies the writes. So a transaction commits only if everything it read is still
  current at its commit point (backward validation, as in the sqlite backend), in one round trip.
* **Why not one SERIALIZABLE transaction for everything**: PostgreSQL's SSI only guarantees that *some*
  serial order exists. A transaction that read a range into which a later-committed transaction inserted
  is simply ordered first and commits, but the protocol promises a conflict there (commit order). Why not
  REPEATABLE READ plus ``SELECT ... FOR SHARE``: row locks cannot lock a key that does not exist (phantoms,
  keys read as absent), and share-locking every row read by every write (a keyring, an epoch record)
  creates multixacts on the hottest rows. The validation above handles absent keys and ranges exactly.
* **Concurrent commits**: ``sr_commit`` is serializable, so two commits running at the same moment are
  ordered by SSI (its validation queries hold predicate locks on the read keys and ranges). SSI also
  fails commits *falsely* (its locks on B-tree pages cover neighbouring keys; measured: a third of the
  commits of 40 tasks inserting into one page). Such a failure never reaches the caller: ``sr_commit``
  runs again (it re-validates against the new state), and after two failures it runs alone: every commit
  holds ``commit_lock`` in ROW SHARE mode, and the re-run first takes it in EXCLUSIVE mode with
  ``LOCK TABLE``, which takes no snapshot, in the same query; so its snapshot includes every commit before
  it and no writer runs beside it: it should either commit or find a real conflict. (About 1 in 150
  still fails: a commit releases its table locks a moment before SSI marks it committed, so SSI can count
  it as concurrent with the exclusive run. Hence three tries.) Otherwise only a changed read surfaces as
  :class:`TransactionConflict`.
* **Read-only transactions** end with ``COMMIT`` of the ``SERIALIZABLE READ ONLY`` transaction, which
  PostgreSQL checks against concurrent commits (the read-only anomaly); a failure there is a
  :class:`TransactionConflict` that ``transactional`` retries.
* **Connections** come from :class:`~strongroom.storage.postgresql_pool.Pool`; statements are prepared
  and cached per connection by asyncpg. A connection that died while idle (``pg_terminate_backend``,
  a server restart) is replaced when a read transaction begins; one that dies while in use fails that
  transaction with :class:`StorageUnavailable` (a commit whose outcome is unknown is never retried).

The schema (table ``kv``, ``schema_version``, function ``sr_commit``) is created on first use inside the
schema named by the ``schema=`` option; see :mod:`strongroom.storage.postgresql_sql`. Open a store only
after forking: connections must not cross ``fork``.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import replace
from types import TracebackType
from typing import Any
from urllib.parse import SplitResult

from strongroom.errors import StorageError, StorageUnavailable, TransactionConflict
from strongroom.storage.base import BufferedTransaction, StoreLimits
from strongroom.storage.postgresql_config import PostgresConfig, parse_url
from strongroom.storage.postgresql_pool import DRIVER_ERRORS, SERIALIZATION_SQLSTATES, Conn, Pool, translate
from strongroom.storage.postgresql_sql import SCHEMA_VERSION, Statements, commit_literals

__all__ = ["MAX_KEY_BYTES", "PostgresConfig", "PostgresStore", "PostgresTransaction", "open_url"]

_BEGIN = "BEGIN ISOLATION LEVEL SERIALIZABLE READ ONLY"
# Runs of a commit: the first _OPTIMISTIC_ATTEMPTS concurrently with other commits, the rest (after
# serialization failures, which SSI also reports for mere neighbours on an index page) exclusively. Each
# run re-validates, so a real change of a read is reported at once whichever run finds it.
_OPTIMISTIC_ATTEMPTS = 2
_COMMIT_ATTEMPTS = 5
# Schema set-up runs DDL, which may wait for other sessions' locks: give it more than one statement's time.
_SETUP_TIMEOUT = 60.0

MAX_KEY_BYTES = 2048
"""Longest key this backend takes. A B-tree entry must fit in a third of a page (2704 bytes with its
headers; keys are random-looking bytes, which PostgreSQL cannot compress)."""

_Row = tuple[bytes, int]
"""A row as a range read saw it: key and xmin."""


class PostgresTransaction(BufferedTransaction):
    """A transaction on a :class:`PostgresStore`. Its snapshot is fixed by its first read."""

    def __init__(self, store: PostgresStore) -> None:
        super().__init__(store.limits)
        self._store = store
        self._conn: Conn | None = None
        # What the snapshot returned, for validation at commit: per key its value and xmin (None: absent),
        # per range its effective bounds and the rows' keys and xmins.
        self._seen_keys: dict[bytes, tuple[bytes | None, int | None]] = {}
        self._seen_ranges: list[tuple[bytes, bytes, list[_Row]]] = []

    async def _reader(self) -> Conn:
        conn = self._conn
        if conn is None:
            conn = self._conn = await self._store._begin_read()
        return conn

    async def _snapshot_get(self, key: bytes) -> bytes | None:
        seen = self._seen_keys.get(key)
        if seen is not None:
            # The snapshot is fixed, so a key read before reads the same again.
            return seen[0]
        conn = await self._reader()
        try:
            row = await conn.fetchrow(self._store._sql.get, key, timeout=self._store._timeout)
        except DRIVER_ERRORS as exc:
            raise translate(exc, "read") from exc
        if row is None:
            self._seen_keys[key] = (None, None)
            return None
        value: bytes = row[0]
        self._seen_keys[key] = (value, row[1])
        return value

    async def _snapshot_range(
        self, begin: bytes, end: bytes, limit: int, reverse: bool
    ) -> list[tuple[bytes, bytes]]:
        sql = self._store._sql
        conn = await self._reader()
        try:
            records = await conn.fetch(
                sql.range_reverse if reverse else sql.range, begin, end, limit or None,
                timeout=self._store._timeout,
            )  # fmt: skip
        except DRIVER_ERRORS as exc:
            raise translate(exc, "range read") from exc
        rows = [(r[0], r[1]) for r in records]
        if limit and len(rows) == limit:
            # Cut short by the limit: only the part up to the last returned key was read.
            if reverse:
                begin = rows[-1][0]
            else:
                end = rows[-1][0] + b"\x00"
        seen = [(r[0], r[2]) for r in records]
        self._seen_ranges.append((begin, end, seen))
        return rows

    def _commit_args(self) -> tuple[list[Any], ...]:
        rk = list(self._seen_keys)
        rx = [self._seen_keys[k][1] for k in rk]
        rb, re, gi, gk, gx = [], [], [], [], []
        for number, (b, e, rows) in enumerate(self._seen_ranges, 1):
            rb.append(b)
            re.append(e)
            for k, x in rows:
                gi.append(number)
                gk.append(k)
                gx.append(x)
        cb = [b for b, _ in self._cleared]
        ce = [e for _, e in self._cleared]
        # Sorted, so that concurrent commits lock rows in one order (fewer deadlocks).
        writes = sorted(self._writes.items())
        dk = [k for k, v in writes if v is None]
        wk = [k for k, v in writes if v is not None]
        wv = [v for _, v in writes if v is not None]
        return rk, rx, rb, re, gi, gk, gx, cb, ce, dk, wk, wv

    async def __aenter__(self) -> PostgresTransaction:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        conn, self._conn = self._conn, None
        pool = self._store._pool
        if exc_type is not None:
            if conn is not None:
                pool.release(conn, "ROLLBACK")
            return
        if self.has_writes:
            if conn is not None:
                # The read snapshot is not needed any more: sr_commit re-validates what it returned.
                pool.release(conn, "ROLLBACK")
            await self._store._commit(self._commit_args())
            return
        if conn is None:
            return  # read nothing, wrote nothing
        try:
            # COMMIT, not ROLLBACK: PostgreSQL then checks the read-only snapshot against concurrent
            # serializable commits (SSI's read-only anomaly) and fails it if it saw an impossible state.
            await conn.execute("COMMIT", timeout=self._store._timeout)
        except DRIVER_ERRORS as error:
            pool.release(conn, "ROLLBACK")
            raise translate(error, "commit") from error
        except BaseException:
            pool.discard(conn)
            raise
        pool.release(conn)


class PostgresStore:
    """A store in one schema of a PostgreSQL database (see the module docstring)."""

    def __init__(self, config: PostgresConfig, *, limits: StoreLimits | None = None) -> None:
        """Prepare a store; nothing is connected until the first transaction needs it.

        ``limits.max_key_bytes`` is capped at :data:`MAX_KEY_BYTES`.

        Raises:
            InvalidRequest: an invalid schema name (checked by :class:`PostgresConfig`).
        """
        self._config = config
        self._sql = Statements(config.schema)
        limits = limits or StoreLimits()
        self._limits = replace(limits, max_key_bytes=min(limits.max_key_bytes, MAX_KEY_BYTES))
        self._timeout = config.command_timeout
        self._pool = Pool(self._connect, config.pool_size, config.connect_timeout)
        self._ready = False
        self._setup_lock: asyncio.Lock | None = None

    @property
    def limits(self) -> StoreLimits:
        """The size limits."""
        return self._limits

    @property
    def kind(self) -> str:
        """``"postgresql"``."""
        return "postgresql"

    @property
    def config(self) -> PostgresConfig:
        """The connection settings (without the password)."""
        return self._config

    def transaction(self) -> PostgresTransaction:
        """Open a transaction (an async context manager; leaving it normally commits).

        Raises (at the first read or at commit):
            TransactionConflict: a commit after this transaction's snapshot changed what it read, or
                PostgreSQL kept failing the commit with serialization failures.
            StorageUnavailable: the server cannot be reached, timed out, or failed; also a commit whose
                connection was lost, whose outcome is then unknown.
            StorageError: the store is closed, or the database holds a newer schema version.
        """
        return PostgresTransaction(self)

    async def close(self) -> None:
        """Close every connection. Transactions still running fail; the store is unusable afterwards."""
        await self._pool.close()

    # -- connections -------------------------------------------------------------------------------

    async def _connect(self) -> Conn:
        import asyncpg  # type: ignore[import-untyped]

        cfg = self._config
        try:
            conn: Conn = await asyncpg.connect(
                cfg.dsn,
                password=cfg.password,
                passfile=cfg.passfile,
                timeout=cfg.connect_timeout,
                command_timeout=cfg.command_timeout,
                server_settings={
                    "application_name": cfg.application_name,
                    # sr_commit runs as an autocommit statement and must be serializable.
                    "default_transaction_isolation": "serializable",
                    # Every statement here is a key lookup or a key range: an index scan is always right,
                    # and a sequential scan (chosen on small tables) would make SSI lock the whole table,
                    # so that every concurrent write would look like a conflict.
                    "enable_seqscan": "off",
                    # The exclusive commit re-run writes bytea hex literals with a backslash (commit_literals).
                    "standard_conforming_strings": "on",
                },
            )
        except DRIVER_ERRORS as exc:
            raise translate(exc, "connect") from exc
        return conn

    async def _ensure_ready(self) -> None:
        if self._ready:
            return
        if self._setup_lock is None:
            self._setup_lock = asyncio.Lock()
        async with self._setup_lock:
            if self._ready:
                return
            conn = await self._pool.acquire()
            try:
                await self._setup(conn)
            except DRIVER_ERRORS as exc:
                self._pool.release(conn, "ROLLBACK")
                raise translate(exc, "schema set-up") from exc
            except BaseException:
                self._pool.release(conn, "ROLLBACK")
                raise
            self._pool.release(conn)
            self._ready = True

    async def _setup(self, conn: Conn) -> None:
        """Create the schema's objects if missing; refuse a newer schema version.

        Raises:
            StorageError: the schema version is newer (or older) than this code's.
        """
        sql = self._sql
        timeout = max(self._timeout, _SETUP_TIMEOUT)
        # READ COMMITTED: after waiting for the set-up lock, each statement sees what a concurrent set-up
        # committed.
        await conn.execute("BEGIN ISOLATION LEVEL READ COMMITTED", timeout=timeout)
        await conn.execute(sql.setup_lock, sql.schema, timeout=timeout)
        # Checked first: CREATE SCHEMA IF NOT EXISTS needs the CREATE privilege even when it exists.
        if await conn.fetchval(sql.schema_exists, sql.schema, timeout=timeout) is None:
            await conn.execute(sql.create_schema, timeout=timeout)
        if not await conn.fetchval(sql.version_exists, sql.version_table, timeout=timeout):
            await conn.execute(sql.create_version, timeout=timeout)
        version = await conn.fetchval(sql.read_version, timeout=timeout)
        if version is None:
            for statement in sql.create_objects:
                await conn.execute(statement, timeout=timeout)
        elif version != SCHEMA_VERSION:
            # The caller rolls the set-up transaction back.
            raise StorageError(
                f"PostgreSQL schema {sql.schema!r} has layout version {version}; this strongroom "
                f"reads version {SCHEMA_VERSION}"
                + (": upgrade strongroom" if version > SCHEMA_VERSION else "")
            )
        await conn.execute("COMMIT", timeout=timeout)

    async def _begin_read(self) -> Conn:
        """A pooled connection inside ``BEGIN ... SERIALIZABLE READ ONLY`` (no snapshot taken yet).

        A connection that turns out to be dead is dropped and another one tried: nothing has happened in
        the transaction yet, so that is always safe.

        Raises:
            StorageUnavailable: no connection could be had or begun.
        """
        await self._ensure_ready()
        for _ in range(self._config.pool_size + 1):
            conn = await self._pool.acquire()
            try:
                await conn.execute(_BEGIN, timeout=self._timeout)
            except DRIVER_ERRORS as exc:
                if not conn.is_closed():
                    self._pool.release(conn, "ROLLBACK")
                    raise translate(exc, "begin") from exc
                self._pool.discard(conn)
                continue
            except BaseException:
                self._pool.discard(conn)
                raise
            return conn
        raise StorageUnavailable("PostgreSQL connections keep closing")

    async def _commit(self, args: tuple[list[Any], ...]) -> None:
        """Run ``sr_commit`` (validate and apply); after a serialization failure, run it alone.

        Raises:
            TransactionConflict: a read changed since the snapshot (or, in theory only, the exclusive
                re-run kept failing).
            StorageUnavailable: the server failed or the connection was lost (the outcome is then unknown).
        """
        await self._ensure_ready()
        sql = self._sql
        for attempt in range(_COMMIT_ATTEMPTS):
            if attempt < _OPTIMISTIC_ATTEMPTS:
                done = await self._run_commit(sql.commit, args)
            else:
                # Exclusive: waits for the commits holding the lock to finish and keeps new ones out,
                # and its snapshot is taken after that, so no concurrent writer remains for SSI to fail
                # it against; it either commits or finds a real conflict.
                done = await self._run_commit(sql.commit_exclusive % commit_literals(args), ())
            if done:
                return
            await asyncio.sleep(random.uniform(0, 0.001 * (attempt + 1)))
        raise TransactionConflict("storage transaction conflict (serialization failures persisted)")

    async def _run_commit(self, statement: str, args: tuple[list[Any], ...]) -> bool:
        """One run of a commit statement: ``True`` if it committed, ``False`` on a serialization failure.

        Raises:
            TransactionConflict: the validation found a changed read.
            StorageUnavailable: as :meth:`_commit`.
        """
        conn = await self._pool.acquire()
        try:
            if args:
                committed = await conn.fetchval(statement, *args, timeout=self._timeout) is True
            else:
                committed = await conn.execute(statement, timeout=self._timeout) == "SELECT 1"
        except DRIVER_ERRORS as exc:
            code = getattr(exc, "sqlstate", None)
            if conn.is_closed() or code is None:
                # Lost in flight, or timed out (asyncpg then cancels the statement): the commit may or
                # may not have happened, so it must not be run again.
                self._pool.discard(conn)
                raise StorageUnavailable("PostgreSQL commit failed; its outcome is unknown") from exc
            self._pool.release(conn)
            if code in SERIALIZATION_SQLSTATES:
                return False  # nothing was written
            raise translate(exc, "commit") from exc
        except BaseException:
            # Cancelled while waiting: the outcome is unknown and so is the connection's state.
            self._pool.discard(conn)
            raise
        self._pool.release(conn)
        if not committed:
            raise TransactionConflict()  # sr_commit found a changed read and wrote nothing
        return True


def open_url(url: SplitResult, options: dict[str, str]) -> PostgresStore:
    """Open a store from a ``postgresql://`` or ``postgres://`` URL (``strongroom.storage.url``).

    Nothing is connected yet: the first transaction connects and creates the schema.

    Raises:
        InvalidRequest: a password in the URL, an unknown option or an invalid option value.
    """
    return PostgresStore(parse_url(url, options))
