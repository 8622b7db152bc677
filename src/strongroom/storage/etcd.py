"""etcd v3 store: ``etcd://host:port[,host:port...]?prefix=...`` (docs/storage/etcd.md).

Guarantees: the protocol's (``strongroom.storage.base``) on a cluster of etcd members: snapshot reads,
read-your-writes, atomic serializable commits, ``TransactionConflict`` when a read was invalidated by a
later commit. Every call is bounded in time: when no member answers usefully (quorum lost, all down)
within ``timeout`` seconds the store raises ``StorageUnavailable``, never hangs, and works again once a
quorum is back. A commit answered with ``StorageUnavailable`` has an unknown outcome (it may still be
applied, as with any networked database).

Design (docs/storage/etcd.md):

* **Client**: etcd's JSON gateway over HTTP/1.1 keep-alive (``storage.etcd_client``), failing over between
  the listed members; optionally TLS (client certificates) and etcd user/password authentication.
* **Keys**: everything lies under the store's ``prefix``; a strongroom key ``k`` is stored at
  ``prefix + "d" + k``, so etcd's byte order is the protocol's order (``storage.etcd_txn.Keyspace``).
* **Snapshots**: a transaction's first read is linearizable and pins the revision ``R`` of its answer;
  every later read asks for ``revision=R`` (serializable: the member has applied ``R`` already; if a
  fail-over reached a member that has not, the read is repeated linearizably). A read of a revision that
  etcd has compacted raises ``TransactionConflict``, so ``transactional`` retries on a fresh snapshot.
* **Commit** = one etcd ``Txn``. Compares check the read set: a ``get`` compares the key's
  ``mod_revision`` with the one it saw (0 for an absent key); a ``range`` requires every key in the range
  to have ``mod_revision <= R`` (no insert or update since), and so must every *shadow* key in the same
  range: ``clear`` writes ``prefix + "g" + k`` next to deleting ``k``, because a deleted key leaves nothing
  that a compare could see. ``clear_range`` writes a *tombstone* with its bounds (``prefix + "t" + id``);
  a transaction that read ranges also requires that no tombstone at all was written after ``R``. When
  that compare fails, the failure branch lists the tombstones written after ``R``: one overlapping a read
  range is a conflict; otherwise the commit is sent again with that compare moved to the revision just
  checked. Too many compares for one request (128 by default, or the size limit) are coalesced into
  fewer covering ranges, which may add conflicts, never lose one.
* **Leases**: tombstones and commit markers are attached to a lease of the store (TTL 90 s, a new one
  every 5 s), so they expire. A transaction that read ranges must therefore commit within ``max_age``
  (40 s with the default ``timeout``) of its first read, or it gets ``TransactionConflict``.
* **Retry safety**: a request whose member failed may have been applied. Each commit therefore puts a
  unique marker key and compares that the marker does not exist yet; its failure branch reads the
  marker. Re-sending the same commit to another member can thus never apply it twice, and a failed
  compare that finds the marker means an earlier attempt committed.
* **Limits**: etcd refuses requests over ``--max-request-bytes`` (1.5 MiB) and txns over
  ``--max-txn-ops`` (128); ``limits`` reserve room for the store's own keys, compares and marker, and the
  exact encoded size is checked before sending: too large raises ``RecordTooLarge``.
"""

from __future__ import annotations

import asyncio
import binascii
import os
import ssl
from types import TracebackType
from typing import Any
from urllib.parse import SplitResult

from strongroom.errors import (
    InvalidRequest,
    RecordTooLarge,
    StorageUnavailable,
    TransactionConflict,
)
from strongroom.storage.base import BufferedTransaction, StoreLimits, _in_ranges
from strongroom.storage.etcd_client import EtcdClient, EtcdError, Leases, storage_error
from strongroom.storage.etcd_txn import (
    RAFT_OVERHEAD,
    Keyspace,
    b64,
    b64s,
    decode_tombstone,
    overlaps,
    prefix_end,
    read_compares,
    write_ops,
)
from strongroom.storage.etcd_url import MAX_REQUEST_BYTES, MAX_TXN_OPS, parse_url

__all__ = ["EtcdStore", "EtcdTransaction", "open_url"]

# Room kept in every request for what the store adds to the caller's keys and values: prefixes, shadow
# keys, compares, the marker. Values and transactions may use the rest.
HEADROOM = 64 * 1024
MAX_KEY_BYTES = 4096
MAX_PREFIX_BYTES = 200
# Leases for tombstones and commit markers (see EtcdStore.__init__). Fixed, not derived from options:
# every server sharing a prefix must agree on them.
LEASE_TTL = 90
LEASE_RENEW = 5.0
MAX_TIMEOUT = 30.0
_OUT_OF_RANGE, _NOT_FOUND = 11, 5
# Rounds of "a clear_range elsewhere failed the tombstone compare": each needs a concurrent clear_range.
_TOMBSTONE_ROUNDS = 16


class EtcdTransaction(BufferedTransaction):
    """A transaction on an :class:`EtcdStore`. Its snapshot is the revision of its first read."""

    def __init__(self, store: EtcdStore) -> None:
        super().__init__(store.limits)
        self._store = store
        self._revision: int | None = None
        self._started = 0.0  # event-loop time when the first read was sent
        self._pinning: asyncio.Future[None] | None = None  # the first read, while it runs
        self._values: dict[bytes, bytes | None] = {}  # what the snapshot holds, as far as read
        self._points: dict[bytes, int] = {}  # key read with get -> its mod_revision (0: absent)
        self._ranges: list[tuple[bytes, bytes]] = []

    async def _read(self, fields: bytes) -> dict[str, Any]:
        """Range request with the JSON ``fields`` (without braces) at the transaction's snapshot."""
        client = self._store._client
        try:
            while self._revision is None:
                if self._pinning is not None:
                    # Reads started together (gather on one transaction): one snapshot, the first's.
                    await asyncio.wait([self._pinning])
                    continue
                self._pinning = pinning = asyncio.get_running_loop().create_future()
                try:
                    self._started = asyncio.get_running_loop().time()
                    answer, _ = await client.call("/v3/kv/range", b"{%s}" % fields)
                    self._revision = int(answer["header"]["revision"])
                    return answer  # type: ignore[no-any-return]
                finally:
                    self._pinning = None
                    pinning.set_result(None)
            try:
                # The member that pinned the revision has applied it: no consensus round needed.
                body = b'{%s,"revision":%d,"serializable":true}' % (fields, self._revision)
                answer, _ = await client.call("/v3/kv/range", body, require_leader=False)
            except EtcdError as exc:
                if not (exc.code == _OUT_OF_RANGE and "future revision" in exc.message):
                    raise
                # A fail-over reached a member that is behind: a linearizable read waits until it caught up.
                answer, _ = await client.call(
                    "/v3/kv/range", b'{%s,"revision":%d}' % (fields, self._revision)
                )
            return answer  # type: ignore[no-any-return]
        except EtcdError as exc:
            raise storage_error(exc) from None
        except (KeyError, TypeError, ValueError):
            raise StorageUnavailable("etcd answered a read with a malformed document") from None

    async def _snapshot_get(self, key: bytes) -> bytes | None:
        if key in self._values:
            # The snapshot is fixed: a key read before (by get or inside a range) reads the same again.
            return self._values[key]
        answer = await self._read(b'"key":"%s"' % b64(self._store._space.data + key))
        kvs = answer.get("kvs")
        value: bytes | None = None
        revision = 0
        if kvs:
            value = binascii.a2b_base64(kvs[0].get("value", ""))
            revision = int(kvs[0]["mod_revision"])
        self._values[key] = value
        self._points[key] = revision
        return value

    async def _snapshot_range(
        self, begin: bytes, end: bytes, limit: int, reverse: bool
    ) -> list[tuple[bytes, bytes]]:
        space = self._store._space
        fields = b'"key":"%s","range_end":"%s"' % (b64(space.data + begin), b64(space.data + end))
        if limit:
            fields += b',"limit":%d' % limit
            if reverse:  # without a limit, reversing locally spares etcd the sort
                fields += b',"sort_order":"DESCEND","sort_target":"KEY"'
        answer = await self._read(fields)
        rows = [
            (space.unwrap(binascii.a2b_base64(kv["key"])), binascii.a2b_base64(kv.get("value", "")))
            for kv in answer.get("kvs", ())
        ]
        if reverse and not limit:
            rows.reverse()
        for k, v in rows:
            self._values[k] = v
        if limit and len(rows) == limit:
            # Cut short by the limit: only the part up to the last returned key was read.
            if reverse:
                begin = rows[-1][0]
            else:
                end = rows[-1][0] + b"\x00"
        self._ranges.append((begin, end))
        return rows

    # Each buffered call can cost etcd more than one operation (and repeat its key); count the extra so
    # that the limits are hit in set()/clear()/clear_range(), before anything reaches etcd.

    def set(self, key: bytes, value: bytes) -> None:
        """See :meth:`BufferedTransaction.set`; a set inside a cleared range splits its delete in two.

        Raises:
            RecordTooLarge: the key, the value or the transaction exceed the store's limits.
        """
        if self._cleared and _in_ranges(self._cleared, key):
            self._count(2 * len(key))
        super().set(key, value)

    def clear(self, key: bytes) -> None:
        """See :meth:`BufferedTransaction.clear`; a clear also writes a shadow key.

        Raises:
            RecordTooLarge: the transaction exceeds the store's limits.
        """
        if len(key) <= self._limits.max_key_bytes:
            self._count(len(key))
        super().clear(key)

    def clear_range(self, begin: bytes, end: bytes) -> None:
        """See :meth:`BufferedTransaction.clear_range`; it also deletes the range's shadow keys.

        Raises:
            RecordTooLarge: the transaction exceeds the store's limits.
        """
        if begin < end:
            self._count(len(begin) + len(end))  # the shadow delete
            self._count(len(begin) + len(end) + 32)  # the tombstone
        super().clear_range(begin, end)

    async def __aenter__(self) -> EtcdTransaction:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None and self.has_writes:
            await self._store._commit(self)


class EtcdStore:
    """A store on an etcd v3 cluster (see the module docstring). Belongs to one event loop."""

    def __init__(
        self,
        endpoints: list[tuple[str, int]],
        *,
        prefix: bytes = b"strongroom/",
        timeout: float = 5.0,
        attempt_timeout: float = 2.0,
        max_connections: int = 32,
        max_request_bytes: int = MAX_REQUEST_BYTES,
        max_txn_ops: int = MAX_TXN_OPS,
        limits: StoreLimits | None = None,
        ssl_context: ssl.SSLContext | None = None,
        credentials: tuple[str, str] | None = None,
    ) -> None:
        """Connect lazily to ``endpoints`` (``(host, port)`` pairs of members of one cluster), with TLS
        if ``ssl_context`` is given, logged in as ``credentials`` (user, password) if given.

        ``max_request_bytes`` and ``max_txn_ops`` must match the cluster's flags of the same names;
        ``limits``, if given, can only tighten what they allow.

        Raises:
            InvalidRequest: an empty endpoint list, a prefix over 200 bytes, or impossible sizes.
        """
        if not endpoints:
            raise InvalidRequest("etcd store needs at least one endpoint")
        if len(prefix) > MAX_PREFIX_BYTES:
            raise InvalidRequest(f"etcd prefix must be at most {MAX_PREFIX_BYTES} bytes")
        if max_request_bytes < 4 * HEADROOM or max_txn_ops < 8:
            raise InvalidRequest("etcd limits out of range")
        if not 0 < timeout <= MAX_TIMEOUT or attempt_timeout <= 0:
            raise InvalidRequest(f"etcd timeout must be in (0, {MAX_TIMEOUT:g}] seconds")
        room = max_request_bytes - HEADROOM
        own = StoreLimits(
            max_key_bytes=MAX_KEY_BYTES,
            max_value_bytes=room - MAX_KEY_BYTES,  # one value of this size fits with any key
            max_transaction_bytes=room,
            max_transaction_ops=max_txn_ops - 1,  # the commit marker
        )
        if limits is not None:
            own = StoreLimits(
                max_key_bytes=min(own.max_key_bytes, limits.max_key_bytes),
                max_value_bytes=min(own.max_value_bytes, limits.max_value_bytes),
                max_transaction_bytes=min(own.max_transaction_bytes, limits.max_transaction_bytes),
                max_transaction_ops=min(own.max_transaction_ops, limits.max_transaction_ops),
            )
        self._limits = own
        self._max_request_bytes = max_request_bytes
        self._max_txn_ops = max_txn_ops
        self._space = Keyspace(prefix)
        self._client = EtcdClient(
            endpoints,
            timeout=timeout,
            attempt_timeout=attempt_timeout,
            max_connections=max_connections,
            ssl_context=ssl_context,
            credentials=credentials,
        )
        # A marker must outlive every re-send of its commit: sent within LEASE_RENEW of the grant, re-sent
        # within `timeout`. A tombstone must outlive every transaction whose snapshot predates it and that
        # may still commit. It was written after the grant of its lease, by a commit that ended within
        # LEASE_RENEW + MAX_TIMEOUT of that grant, and after this transaction's first read; this commit
        # ends within `timeout` after it starts. Hence the age limit, with a 10 s margin.
        self._leases = Leases(self._client, LEASE_TTL, renew=LEASE_RENEW)
        self._max_age = LEASE_TTL - LEASE_RENEW - MAX_TIMEOUT - timeout - 10

    @property
    def limits(self) -> StoreLimits:
        """The size limits (etcd's request limits less the store's headroom)."""
        return self._limits

    @property
    def kind(self) -> str:
        """``"etcd"``."""
        return "etcd"

    @property
    def endpoints(self) -> list[tuple[str, int]]:
        """The members this store talks to."""
        return list(self._client.endpoints)

    def transaction(self) -> EtcdTransaction:
        """Open a transaction (an async context manager; leaving it normally commits).

        Raises (at commit):
            TransactionConflict: a commit after this transaction's snapshot invalidated one of its reads.
            RecordTooLarge: the transaction does not fit in one etcd request.
            StorageUnavailable: no member answered in time (the commit's outcome is then unknown).
        """
        return EtcdTransaction(self)

    async def _commit(self, tx: EtcdTransaction) -> None:
        """Send ``tx``'s writes as one Txn guarded by its reads (see the module docstring)."""
        space = self._space
        for _ in range(2):  # a second time only if the lease vanished before the first reached etcd
            lease = await self._leases.current()
            marker = os.urandom(16)
            marker_key = b64(space.markers + marker)
            ops, ops_size = write_ops(space, tx._writes, tx._cleared, marker, lease)
            if len(ops) > self._max_txn_ops:
                raise RecordTooLarge("transaction exceeds etcd's operations per request")
            # Marker compare and read, tombstone compare and read: six keys of the prefix plus a few bytes.
            fixed = ops_size + RAFT_OVERHEAD + 8 * (len(space.prefix) + 32)
            compares: list[bytes] = []
            intervals: list[tuple[bytes, bytes]] = []
            if tx._revision is not None and (tx._points or tx._ranges):
                compares, intervals = read_compares(
                    space,
                    tx._points,
                    tx._ranges,
                    tx._revision,
                    self._max_txn_ops - 2,
                    self._max_request_bytes - fixed,
                )
            elif fixed > self._max_request_bytes:
                raise RecordTooLarge("transaction exceeds etcd's request size")
            if intervals and asyncio.get_running_loop().time() - tx._started > self._max_age:
                raise TransactionConflict("transaction too old: tombstones it must check may have expired")
            compares.append(
                b'{"key":"%s","target":"CREATE","result":"EQUAL","create_revision":0}' % marker_key
            )
            failure = b'{"request_range":{"key":"%s"}}' % marker_key
            tombstones = b'"key":"%s","range_end":"%s"' % (b64(space.tombstones), b64(space.tombstones_end))
            if intervals:
                assert tx._revision is not None
                failure += b',{"request_range":{%s,"min_mod_revision":%d}}' % (tombstones, tx._revision + 1)
            try:
                await self._send(
                    b",".join(compares), b",".join(ops), failure, tombstones, intervals, tx._revision or 0
                )
                return
            except EtcdError as exc:
                if exc.code == _NOT_FOUND and "lease" in exc.message:
                    if exc.maybe_sent:
                        # An earlier attempt may have committed, and its marker expired with the lease.
                        raise StorageUnavailable("etcd commit outcome unknown (its lease expired)") from None
                    self._leases.forget()  # expired or revoked before this commit reached etcd: a new one
                    continue
                raise storage_error(exc) from None
        raise StorageUnavailable("etcd refused two fresh leases for commit markers")

    async def _send(
        self,
        compares: bytes,
        ops: bytes,
        failure: bytes,
        tombstones: bytes,
        intervals: list[tuple[bytes, bytes]],
        revision: int,
    ) -> None:
        """Send the commit (JSON lists without brackets) until decided; ``TransactionConflict`` if it lost.

        ``checked``: every tombstone up to this revision is known not to overlap ``intervals``.
        """
        checked = revision
        for _ in range(_TOMBSTONE_ROUNDS):
            guard = b""
            if intervals:
                guard = b',{%s,"target":"MOD","result":"LESS","mod_revision":%d}' % (tombstones, checked + 1)
            body = b'{"compare":[%s%s],"success":[%s],"failure":[%s]}' % (compares, guard, ops, failure)
            answer, _ = await self._client.call("/v3/kv/txn", body)
            if answer.get("succeeded"):
                return
            try:
                responses = answer["responses"]
                if responses[0]["response_range"].get("kvs"):
                    return  # an earlier attempt that seemed lost did commit
                if not intervals:
                    raise TransactionConflict()
                newer = False
                for kv in responses[1]["response_range"].get("kvs", ()):
                    if overlaps(intervals, decode_tombstone(binascii.a2b_base64(kv.get("value", "")))):
                        raise TransactionConflict()
                    newer = newer or int(kv["mod_revision"]) > checked
                if not newer:
                    raise TransactionConflict()  # the tombstone compare held: a read compare failed
                checked = int(answer["header"]["revision"])
            except (KeyError, IndexError, TypeError, ValueError):
                raise StorageUnavailable("etcd answered a commit with a malformed document") from None
        raise TransactionConflict("too many concurrent range deletions")

    async def purge(self) -> None:
        """Delete every key under this store's prefix (tests, decommissioning). Not transactional.

        Raises:
            StorageUnavailable: no member answered in time.
        """
        prefix = self._space.prefix
        try:
            await self._client.call(
                "/v3/kv/deleterange", {"key": b64s(prefix), "range_end": b64s(prefix_end(prefix))}
            )
        except EtcdError as exc:
            raise storage_error(exc) from None

    async def close(self) -> None:
        """Revoke the marker lease (best effort) and close connections; the store is unusable after."""
        await self._leases.revoke()
        await self._client.close()


def open_url(url: SplitResult, options: dict[str, str]) -> EtcdStore:
    """Open ``etcd://[USER@]host:port[,host:port...][/]?option=value...`` (docs/storage/etcd.md).

    Raises:
        InvalidRequest: see :func:`strongroom.storage.etcd_url.parse_url`.
    """
    settings = parse_url(url, options)
    n = settings.numbers
    return EtcdStore(
        settings.endpoints,
        prefix=settings.prefix,
        timeout=n["timeout"],
        attempt_timeout=n["attempt_timeout"],
        max_connections=int(n["max_connections"]),
        max_request_bytes=int(n["max_request_bytes"]),
        max_txn_ops=int(n["max_txn_ops"]),
        ssl_context=settings.ssl_context,
        credentials=settings.credentials,
    )
