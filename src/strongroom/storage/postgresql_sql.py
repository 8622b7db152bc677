"""SQL of the PostgreSQL backend: the schema strongroom creates, its version, and the statements it runs.

Everything lives in one PostgreSQL schema (``schema=`` option, default ``strongroom``), so several stores
(or test runs) can share a database. Identifiers are validated (:func:`check_schema_name`) and quoted
before they are put into SQL text; values are always bound parameters. That is why the ``S608`` (SQL built
from strings) findings below are exempted.

Objects (schema version 1):

* ``kv (key bytea PRIMARY KEY, value bytea NOT NULL)``: the records. A ``bytea`` B-tree orders keys by
  ``memcmp`` and then length, which is the protocol's byte order.
* ``schema_version (version integer)``: one row. A store refuses a database whose version is newer than
  the code's :data:`SCHEMA_VERSION`.
* ``sr_commit(...)``: validates a transaction's read set and applies its writes in one statement (see
  :data:`COMMIT_FUNCTION`).
* ``commit_lock``: an empty table used only as a lock. Every commit holds it in ``ROW SHARE`` mode; a
  commit re-run after a serialization failure first takes it in ``EXCLUSIVE`` mode and then runs alone.
"""

from __future__ import annotations

import re

__all__ = [
    "COMMIT_FUNCTION",
    "SCHEMA_VERSION",
    "Statements",
    "check_schema_name",
    "commit_literals",
]

SCHEMA_VERSION = 1
"""The layout this code writes and reads."""

_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")

COMMIT_FUNCTION = """
CREATE FUNCTION {s}.sr_commit(
    rk bytea[], rx xid[],               -- point reads: key, xmin seen (NULL: the key was absent)
    rb bytea[], re bytea[],             -- range reads: effective bounds [rb, re)
    gi bigint[], gk bytea[], gx xid[],  -- rows those ranges returned: range number (1-based), key, xmin
    cb bytea[], ce bytea[],             -- cleared ranges [cb, ce)
    dk bytea[],                         -- cleared keys
    wk bytea[], wv bytea[]              -- set keys and their values
) RETURNS boolean LANGUAGE plpgsql AS $f$
BEGIN
    -- Shared with every other commit; excluded only by a commit that takes the lock exclusively after
    -- a serialization failure, so that it runs alone (see PostgresStore._commit).
    LOCK TABLE {s}.commit_lock IN ROW SHARE MODE;
    -- A read is still valid if the row version it saw (xmin, the id of the transaction that wrote it) is
    -- still the current one, or the key is still absent. Any commit that wrote the key since changed it.
    IF cardinality(rk) > 0 AND EXISTS (
        SELECT 1 FROM unnest(rk, rx) AS r(k, x) LEFT JOIN {s}.kv ON kv.key = r.k
        WHERE kv.xmin IS DISTINCT FROM r.x
    ) THEN
        RETURN false;  -- a conflict; an answer, not an error, so that the server does not log it
    END IF;
    -- A range read is still valid if it returns the same rows in the same versions: no insert (phantom),
    -- no deletion and no rewrite inside its bounds.
    IF cardinality(rb) > 0 AND EXISTS (
        SELECT 1 FROM (
            SELECT r.i, cur.key, cur.xmin
            FROM unnest(rb, re) WITH ORDINALITY AS r(b, e, i)
            CROSS JOIN LATERAL (SELECT key, xmin FROM {s}.kv WHERE key >= r.b AND key < r.e) AS cur
        ) AS now
        FULL JOIN unnest(gi, gk, gx) AS seen(i, k, x) ON now.i = seen.i AND now.key = seen.k
        WHERE now.i IS NULL OR seen.i IS NULL OR now.xmin <> seen.x
    ) THEN
        RETURN false;
    END IF;
    -- The write buffer's invariant: cleared ranges first, then point clears and sets.
    IF cardinality(cb) > 0 THEN
        DELETE FROM {s}.kv USING unnest(cb, ce) AS c(b, e) WHERE kv.key >= c.b AND kv.key < c.e;
    END IF;
    IF cardinality(dk) > 0 THEN
        DELETE FROM {s}.kv WHERE key = ANY(dk);
    END IF;
    IF cardinality(wk) > 0 THEN
        INSERT INTO {s}.kv (key, value) SELECT * FROM unnest(wk, wv)
        ON CONFLICT (key) DO UPDATE SET value = excluded.value;
    END IF;
    RETURN true;
END
$f$
"""
"""The commit function. It runs as one autocommit statement at SERIALIZABLE (the connections' default
isolation), so validation and writes are one atomic transaction and PostgreSQL's serializable snapshot
isolation orders it against commits running at the same time; its validation queries are what gives SSI
the transaction's read set (including ranges, through predicate locks)."""


def check_schema_name(name: str) -> str:
    """Return ``name`` if it is a plain lower-case identifier PostgreSQL accepts unquoted.

    Raises:
        ValueError: anything else (upper case, punctuation, more than 63 bytes).
    """
    if not _NAME.fullmatch(name):
        raise ValueError("schema must match [a-z_][a-z0-9_]* and have at most 63 characters")
    return name


class Statements:
    """The SQL text of one store, with its (validated, quoted) schema name filled in."""

    def __init__(self, schema: str) -> None:
        s = '"' + check_schema_name(schema) + '"'
        self.schema = schema
        self.get = f"SELECT value, xmin FROM {s}.kv WHERE key = $1"  # noqa: S608
        # LIMIT NULL means no limit.
        self.range = f"SELECT key, value, xmin FROM {s}.kv WHERE key >= $1 AND key < $2 ORDER BY key LIMIT $3"  # noqa: S608
        self.range_reverse = (
            f"SELECT key, value, xmin FROM {s}.kv WHERE key >= $1 AND key < $2 ORDER BY key DESC LIMIT $3"  # noqa: S608
        )
        self.commit = (
            f"SELECT {s}.sr_commit($1::bytea[], $2::xid[], $3::bytea[], $4::bytea[], $5::bigint[], "
            "$6::bytea[], $7::xid[], $8::bytea[], $9::bytea[], $10::bytea[], $11::bytea[], $12::bytea[])"
        )
        # One simple-protocol query, hence one implicit transaction at the connections' default
        # (SERIALIZABLE) isolation. LOCK TABLE takes no snapshot, so the transaction's snapshot is taken
        # by the SELECT after the lock is granted and includes every commit that held it before.
        # The simple protocol returns no rows to asyncpg's execute(), only the last command tag: "SELECT 1"
        # if sr_commit returned true, "SELECT 0" if it found a conflict.
        self.commit_exclusive = (
            f"LOCK TABLE {s}.commit_lock IN EXCLUSIVE MODE; SELECT 1 WHERE {s}.sr_commit(%s)"
        )
        self.schema_exists = "SELECT 1 FROM pg_namespace WHERE nspname = $1"
        self.create_schema = f"CREATE SCHEMA {s}"
        # Serializes concurrent set-ups of the same schema (several workers starting at once).
        self.setup_lock = "SELECT pg_advisory_xact_lock(hashtext('strongroom schema ' || $1))"
        # Checked before creating: CREATE ... IF NOT EXISTS needs the CREATE privilege even when the
        # object exists, and a least-privilege role has none once the schema is set up.
        self.version_exists = "SELECT to_regclass($1) IS NOT NULL"
        self.version_table = f"{s}.schema_version"
        self.create_version = f"CREATE TABLE {s}.schema_version (version integer NOT NULL)"
        self.read_version = f"SELECT max(version) FROM {s}.schema_version"  # noqa: S608
        self.create_objects = [
            # fillfactor 90 leaves room on each page for HOT updates (a rewritten record then needs no
            # new index entry).
            f"CREATE TABLE {s}.kv (key bytea PRIMARY KEY, value bytea NOT NULL) WITH (fillfactor = 90)",
            # Values are ciphertexts: compressing them is wasted work, so large ones go out of line
            # uncompressed.
            f"ALTER TABLE {s}.kv ALTER COLUMN value SET STORAGE EXTERNAL",
            f"CREATE TABLE {s}.commit_lock ()",
            COMMIT_FUNCTION.format(s=s),
            f"INSERT INTO {s}.schema_version (version) VALUES ({SCHEMA_VERSION})",  # noqa: S608
        ]


_TYPES = (
    "bytea",
    "xid",
    "bytea",
    "bytea",
    "bigint",
    "bytea",
    "xid",
    "bytea",
    "bytea",
    "bytea",
    "bytea",
    "bytea",
)
"""The element types of ``sr_commit``'s twelve array arguments, in order."""


def _literal(value: bytes | int | None, kind: str) -> str:
    if value is None:
        return f"NULL::{kind}"
    if isinstance(value, bytes):
        # Hex bytea input; standard_conforming_strings is on for every connection, so the backslash is
        # literal. Hex digits cannot end the quoted string.
        return f"'\\x{value.hex()}'::bytea"
    return f"'{int(value)}'::{kind}"


def commit_literals(args: tuple[list[bytes | int | None], ...]) -> str:
    """``sr_commit``'s arguments as SQL literals, for the one query that cannot bind parameters.

    Used only by the exclusive re-run of a commit (a multi-statement simple query); bytes become hex
    literals and integers are formatted by ``int``, so no input can change the statement's structure.
    """
    parts = []
    for values, kind in zip(args, _TYPES, strict=True):
        items = ",".join(_literal(v, kind) for v in values)
        parts.append(f"ARRAY[{items}]::{kind}[]" if values else f"'{{}}'::{kind}[]")
    return ", ".join(parts)
