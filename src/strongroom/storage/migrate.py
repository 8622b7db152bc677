"""Copy a whole store into another, replace a store's contents in chunks, and fingerprint a store.

Used by ``strongroom operator migrate`` (store to store, offline) and by snapshot restore
(``strongroom.core.snapshot``). Everything here goes through the :class:`~strongroom.storage.base.Store`
protocol only, so it works between any two backends.

**A store's contents** are all keys in ``[b"", whole_end(limits))``: every key the backend can hold
(keys are at most ``limits.max_key_bytes`` long, and ``b"\\xff" * (max_key_bytes + 1)`` sorts after all of
them). Nothing here interprets values: they are barrier ciphertext or clear records, copied byte for byte.

**Fingerprint** (:class:`Summary`): the number of pairs and a digest over the ordered pairs. The digest
function is injected (``new_digest``): storage may not import cryptographic libraries;
``strongroom.crypto.snapshot_mac.PairDigest`` is the SHA-256 one the CLI passes.

**Replacing contents cannot be one transaction** (etcd allows 128 operations and ~1.5 MiB per
transaction; a store is bigger). :class:`ContentWriter` therefore:

1. first transaction: clears the whole store and writes the marker record :data:`MARKER_KEY` (clear JSON
   naming the operation), then the first records;
2. then chunks, each within the store's :class:`~strongroom.storage.base.StoreLimits` (and smaller caps),
   each checking inside its transaction that the marker is still this operation's, so two concurrent
   replacements cannot interleave their writes: the later one wins, the other stops;
3. the last chunk clears the marker.

Records arrive in *write order* (:func:`write_order`): namespace seal configurations first (so that
``sys/init`` refuses a half-written store), keyrings and the layout record last. Until a namespace's
keyring is written nobody can unseal it, and a node that was serving it seals itself at its next request
(``Vault.current_keys`` finds no keyring): a store whose replacement stopped half-way is never served, and
the marker says why. Re-running the operation replaces everything again.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from strongroom.errors import CorruptRecord, InvalidRequest, RecordTooLarge, StorageError, StorageUnavailable
from strongroom.storage.base import Store, StoreLimits, Transaction, transactional
from strongroom.storage.subspace import LAYOUT_KEY
from strongroom.storage.tuple import pack, unpack

__all__ = [
    "BODY",
    "CHUNK_BYTES",
    "CHUNK_OPS",
    "FIRST",
    "LAST",
    "MARKER_KEY",
    "ContentWriter",
    "DestinationNotEmpty",
    "Digest",
    "MigrationReport",
    "Summary",
    "migrate",
    "new_marker",
    "phase",
    "read_marker",
    "scan",
    "summarize",
    "whole_end",
    "write_order",
]

MARKER_KEY = pack(("replacing",))
"""Top-level key present while a migration or restore is replacing the store's contents (clear JSON)."""

FIRST, BODY, LAST = 0, 1, 2
"""Write phases of a record (see :func:`write_order`)."""

_NS_PREFIX = pack(("ns",))
_SEAL_SUFFIX = pack(("seal",))
_KEYRING_SUFFIX = pack(("keyring",))
# Small caps per transaction even where a backend allows far more (sqlite: 256 MiB): progress stays
# visible, a retry redoes little, and memory stays bounded.
CHUNK_OPS = 1000
CHUNK_BYTES = 4 * 1024 * 1024
_RETRIES = 4


class Digest(Protocol):
    """An incremental digest over ordered key/value pairs."""

    def update(self, key: bytes, value: bytes) -> None:
        """Add one pair (pairs must be added in key order)."""
        ...

    def hexdigest(self) -> str:
        """The digest of the pairs added so far, in hex."""
        ...


class DestinationNotEmpty(InvalidRequest):
    """The destination store holds data that is not an interrupted migration or restore."""


@dataclass(frozen=True)
class Summary:
    """Number of pairs and digest of a store's contents (or of what was copied)."""

    count: int
    digest: str


@dataclass(frozen=True)
class MigrationReport:
    """What :func:`migrate` copied and what the verification read afterwards."""

    copied: Summary
    source: Summary
    destination: Summary
    transactions: int

    @property
    def verified(self) -> bool:
        """Whether the copy, the source re-read and the destination agree in count and digest."""
        return self.copied == self.source == self.destination


def whole_end(limits: StoreLimits) -> bytes:
    """The end of the range holding every key a store with ``limits`` can hold."""
    return b"\xff" * (limits.max_key_bytes + 1)


def phase(key: bytes) -> int:
    """The write phase of ``key``: FIRST (seal configurations), LAST (keyrings, layout) or BODY."""
    if key == LAYOUT_KEY:
        return LAST
    if key.startswith(_NS_PREFIX):
        # Only keys ending like ("seal",) or ("keyring",) are unpacked: most keys are neither.
        for suffix, name, result in ((_SEAL_SUFFIX, "seal", FIRST), (_KEYRING_SUFFIX, "keyring", LAST)):
            if key.endswith(suffix):
                try:
                    items = unpack(key)
                except CorruptRecord:
                    return BODY
                if len(items) == 3 and isinstance(items[1], bytes) and items[2] == name:
                    return result
    return BODY


async def write_order(
    first: Iterable[tuple[bytes, bytes]],
    body: AsyncIterable[tuple[bytes, bytes]],
    last: Iterable[tuple[bytes, bytes]],
) -> AsyncIterator[tuple[bytes, bytes]]:
    """Yield ``first``, then the BODY-phase pairs of ``body``, then ``last``."""
    for pair in first:
        yield pair
    async for pair in body:
        if phase(pair[0]) == BODY:
            yield pair
    for pair in last:
        yield pair


async def scan(tx: Transaction, limits: StoreLimits, *, batch: int = 1000) -> AsyncIterator[tuple[bytes, bytes]]:
    """Yield every pair of the store, in key order, from ``tx``'s snapshot (``batch`` keys per read)."""
    begin, end = b"", whole_end(limits)
    while True:
        rows = await tx.range(begin, end, limit=batch)
        for row in rows:
            yield row
        if len(rows) < batch:
            return
        begin = rows[-1][0] + b"\x00"


async def summarize(store: Store, new_digest: Callable[[], Digest], *, batch: int = 1000) -> Summary:
    """Count and digest the whole store in one read transaction (a consistent snapshot).

    Raises:
        StorageUnavailable: the store cannot be read.
        TransactionConflict: the snapshot kept being invalidated (retried first).
    """

    async def run(tx: Transaction) -> Summary:
        digest = new_digest()
        count = 0
        async for key, value in scan(tx, store.limits, batch=batch):
            digest.update(key, value)
            count += 1
        return Summary(count, digest.hexdigest())

    return await transactional(store, run)


async def read_marker(store: Store) -> dict[str, Any] | None:
    """The marker of an unfinished replacement of ``store``'s contents, or ``None``.

    Raises:
        StorageUnavailable: the store cannot be read.
    """

    async def run(tx: Transaction) -> bytes | None:
        return await tx.get(MARKER_KEY)

    raw = await transactional(store, run)
    if raw is None:
        return None
    try:
        doc = json.loads(raw)
    except ValueError:
        return {"operation": "unknown"}
    return doc if isinstance(doc, dict) else {"operation": "unknown"}


def new_marker(operation: str, **details: Any) -> bytes:
    """A fresh marker value for ``operation`` (``"migrate"``, ``"restore"``); unique per call."""
    doc = {"operation": operation, "id": os.urandom(16).hex(), "started": time.time(), **details}
    return json.dumps(doc, sort_keys=True).encode()


class ContentWriter:
    """Replaces a store's contents by a stream of pairs, in chunks (see the module docstring).

    Guarantees: when :meth:`write` returns, the store holds exactly the pairs written and no marker.
    If it raises, the marker stays (unless the final commit's outcome is unknown) and no node can unseal a
    namespace whose keyring was not written yet. Chunks other than the last are retried after a
    ``StorageUnavailable`` (they are idempotent and re-check the marker).
    """

    def __init__(
        self,
        store: Store,
        marker: bytes,
        *,
        chunk_ops: int = CHUNK_OPS,
        chunk_bytes: int = CHUNK_BYTES,
        retry_delay: float = 0.5,
    ) -> None:
        limits = store.limits
        self._store = store
        self._marker = marker
        self._end = whole_end(limits)
        # The first chunk also clears the store and sets the marker, the last one clears the marker:
        # keep room for those in every chunk (a backend may count a cleared range twice, e.g. etcd).
        overhead = 4 * len(self._end) + 2 * (len(MARKER_KEY) + len(marker)) + 256
        self._max_ops = max(1, min(chunk_ops, limits.max_transaction_ops - 3))
        self._max_bytes = max(1, min(chunk_bytes, limits.max_transaction_bytes - overhead))
        self._retry_delay = retry_delay
        self.transactions = 0
        self.records = 0

    async def write(self, pairs: AsyncIterable[tuple[bytes, bytes]]) -> int:
        """Replace the contents with ``pairs`` (in write order); return how many were written.

        Raises:
            RecordTooLarge: one record cannot fit a transaction of this store.
            StorageError: another replacement took over (the marker changed), or the store failed.
            StorageUnavailable: the store could not be reached (after retries for idempotent chunks).
        """
        pending: list[tuple[bytes, bytes]] = []
        size = 0
        first = True
        async for key, value in pairs:
            n = len(key) + len(value)
            if pending and (len(pending) >= self._max_ops or size + n > self._max_bytes):
                await self._write(pending, first, False)
                first = False
                pending, size = [], 0
            pending.append((key, value))
            size += n
        await self._write(pending, first, True)
        return self.records

    async def _write(self, pairs: list[tuple[bytes, bytes]], first: bool, final: bool) -> None:
        try:
            await self._commit(pairs, first, final)
        except RecordTooLarge:
            # A backend may count more than the caller's bytes (etcd: its exact request encoding): halve.
            if len(pairs) > 1:
                mid = len(pairs) // 2
                await self._write(pairs[:mid], first, False)
                await self._write(pairs[mid:], False, final)
            elif pairs and (first or final):
                if first:
                    await self._commit([], True, False)
                await self._write(pairs, False, False)
                if final:
                    await self._commit([], False, True)
            else:
                size = sum(len(k) + len(v) for k, v in pairs)
                raise RecordTooLarge(
                    f"a record of {size} bytes does not fit in one transaction of the {self._store.kind} store"
                ) from None

    async def _commit(self, pairs: list[tuple[bytes, bytes]], first: bool, final: bool) -> None:
        async def run(tx: Transaction) -> None:
            if first:
                tx.clear_range(b"", self._end)
                tx.set(MARKER_KEY, self._marker)
            elif await tx.get(MARKER_KEY) != self._marker:
                raise StorageError(
                    "another migration or restore took over this store while this one was writing; "
                    "this one stopped"
                )
            for key, value in pairs:
                tx.set(key, value)
            if final:
                tx.clear(MARKER_KEY)

        attempts = 1 if final else _RETRIES
        delay = self._retry_delay
        for attempt in range(attempts):
            try:
                await transactional(self._store, run)
                break
            except StorageUnavailable:
                # Idempotent (same values, marker re-checked): safe to send again. The final chunk is not
                # (once it committed, the marker is gone and a retry would see "took over").
                if attempt == attempts - 1:
                    raise
                await asyncio.sleep(delay)
                delay *= 2
        self.transactions += 1
        self.records += len(pairs)


@dataclass
class _Plan:
    copied: Summary
    first: list[tuple[bytes, bytes]]
    last: list[tuple[bytes, bytes]]


async def _plan(tx: Transaction, source: StoreLimits, dest: Store, new_digest: Callable[[], Digest]) -> _Plan:
    """Read the source snapshot once: fingerprint it and check every record fits the destination."""
    limits = dest.limits
    digest = new_digest()
    count = 0
    first: list[tuple[bytes, bytes]] = []
    last: list[tuple[bytes, bytes]] = []
    async for key, value in scan(tx, source):
        if key == MARKER_KEY:
            raise StorageError(
                "the source store holds an unfinished migration or restore (a 'replacing' marker); "
                "finish or re-run that first"
            )
        if len(key) > limits.max_key_bytes:
            raise RecordTooLarge(
                f"source key {key[:32].hex()}... is {len(key)} bytes; the {dest.kind} store allows "
                f"{limits.max_key_bytes}"
            )
        if len(value) > limits.max_value_bytes or len(key) + len(value) > limits.max_transaction_bytes:
            raise RecordTooLarge(
                f"the value at source key {key[:32].hex()} is {len(value)} bytes; the {dest.kind} store "
                f"allows {min(limits.max_value_bytes, limits.max_transaction_bytes - len(key))}"
            )
        where = phase(key)
        if where == FIRST:
            first.append((key, value))
        elif where == LAST:
            last.append((key, value))
        digest.update(key, value)
        count += 1
    return _Plan(Summary(count, digest.hexdigest()), first, last)


async def check_destination(store: Store) -> bool:
    """Return whether ``store`` holds an unfinished replacement (``False``: it is empty).

    Raises:
        DestinationNotEmpty: it holds anything else.
        StorageUnavailable: it cannot be read.
    """

    async def run(tx: Transaction) -> tuple[list[tuple[bytes, bytes]], bytes | None]:
        return await tx.range(b"", whole_end(store.limits), limit=1), await tx.get(MARKER_KEY)

    rows, marker = await transactional(store, run)
    if not rows:
        return False
    if marker is not None:
        return True
    raise DestinationNotEmpty(
        f"the destination {store.kind} store is not empty; migrate only into an empty store "
        "(or one holding an interrupted migration or restore)"
    )


async def migrate(
    source: Store,
    dest: Store,
    new_digest: Callable[[], Digest],
    *,
    chunk_ops: int = CHUNK_OPS,
    chunk_bytes: int = CHUNK_BYTES,
    retry_delay: float = 0.5,
) -> MigrationReport:
    """Copy every pair of ``source`` into ``dest``, then fingerprint both (both must be offline).

    The source is read in ONE read transaction (one snapshot) and checked entirely before the first
    write: a record that cannot fit the destination fails the migration with nothing written. Both
    stores are then read afresh; the report holds what was copied and what each side holds now, so a
    change of either store during the copy (it was not offline) shows as a mismatch.

    Raises:
        DestinationNotEmpty: ``dest`` holds data other than an interrupted migration or restore.
        RecordTooLarge: a source record cannot be stored in ``dest``.
        StorageError: the source holds an unfinished replacement, or a store failed.
        StorageUnavailable: a store could not be reached.
    """
    await check_destination(dest)
    marker = new_marker("migrate", source=source.kind)
    writer = ContentWriter(dest, marker, chunk_ops=chunk_ops, chunk_bytes=chunk_bytes, retry_delay=retry_delay)
    async with source.transaction() as tx:
        plan = await _plan(tx, source.limits, dest, new_digest)
        await writer.write(write_order(plan.first, scan(tx, source.limits), plan.last))
    source_now = await summarize(source, new_digest)
    dest_now = await summarize(dest, new_digest)
    return MigrationReport(plan.copied, source_now, dest_now, writer.transactions)

