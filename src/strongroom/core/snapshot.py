"""Snapshots of the whole store: save through a running node, verify, restore.

Save (``GET sys/storage/raft/snapshot``): the whole store is read in ONE read transaction (one snapshot:
what a single point in time held) and written as a snapshot file (:mod:`strongroom.core.snapshot_format`)
to a temporary spool first, then streamed. Spooling first lets a conflicting read (etcd compaction, a
Redis snapshot older than its history window, PostgreSQL's read-only anomaly) be retried whole before the
first byte is sent, and lets every error before that be a proper HTTP error. The spool holds what the
snapshot holds (ciphertext, blind-indexed keys), stays in memory up to 8 MiB, then goes to an unnamed
temporary file (mode 0600, already unlinked), and is closed when the response ends.

Restore (``POST sys/storage/raft/snapshot[-force]``): the body is spooled, then verified completely
before anything is written (structure, order, limits, count, digest, and the HMAC keyed from the root
keyring's KEK; a snapshot of another cluster is refused unless forced, and then only its integrity, not
its authenticity, can be checked, because its MAC key belongs to that other cluster). Then the node seals
itself and the store's contents are replaced in chunks (:class:`~strongroom.storage.migrate.ContentWriter`:
restore cannot be one transaction; a marker record is written first and keyrings last, so a store whose
restore stopped half-way is never served), and the result is read back and compared with the snapshot's
count and digest. The node stays sealed: the next unseal loads the restored keyring.

Offline restore (``strongroom operator snapshot restore -offline``) re-runs a restore directly on a store
when no node can be unsealed (a restore that stopped half-way left no keyring); it authenticates the
snapshot with the root key of the snapshot's own keyring, rebuilt from unseal key shares.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, BinaryIO, cast

import orjson

from strongroom.barrier.keyring import Keyring
from strongroom.core.seal import SealConfig
from strongroom.core.snapshot_format import (
    SnapshotHeader,
    SnapshotReader,
    SnapshotRejected,
    SnapshotTrailer,
    SnapshotWriter,
)
from strongroom.crypto.random import random_bytes
from strongroom.crypto.secret import SecretBytes
from strongroom.crypto.snapshot_mac import PairDigest, SnapshotMac
from strongroom.errors import CorruptRecord, DecryptionFailed, InvalidShare, NotInitialized, StorageError
from strongroom.storage.base import Store, StoreLimits, Transaction, transactional
from strongroom.storage.migrate import (
    CHUNK_OPS,
    FIRST,
    LAST,
    MARKER_KEY,
    ContentWriter,
    Summary,
    new_marker,
    phase,
    scan,
    summarize,
    write_order,
)
from strongroom.storage.subspace import LAYOUT_KEY, ROOT_NAMESPACE_ID, namespace

__all__ = [
    "SnapshotRejected",
    "VerifiedSnapshot",
    "current_cluster_id",
    "kek_from_root_key",
    "read_root_seal",
    "restore_stream",
    "restore_verified",
    "save_stream",
    "spool",
    "verify_snapshot",
    "write_snapshot",
]

SPOOL_MEMORY = 8 * 1024 * 1024
CHUNK = 64 * 1024
_ROOT = namespace(ROOT_NAMESPACE_ID)
ROOT_SEAL_KEY = _ROOT.key("seal")
ROOT_KEYRING_KEY = _ROOT.key("keyring")

Pair = tuple[bytes, bytes]


def spool() -> BinaryIO:
    """A temporary binary file: in memory up to 8 MiB, then an unlinked file of mode 0600."""
    return cast(BinaryIO, tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY))


def _cluster_id(raw: bytes | None) -> str:
    if raw is None:
        raise NotInitialized()
    try:
        doc = orjson.loads(raw)
        return str(doc["cluster_id"])
    except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
        raise CorruptRecord("malformed seal configuration") from exc


async def current_cluster_id(tx: Transaction) -> str:
    """The cluster id stored in the root namespace's seal configuration.

    Raises:
        NotInitialized: the store holds no initialised root namespace.
        CorruptRecord: the seal configuration is malformed.
    """
    return _cluster_id(await tx.get(ROOT_SEAL_KEY))


# -- save -------------------------------------------------------------------------------------------------


async def write_snapshot(store: Store, kek: SecretBytes, out: BinaryIO, *, now: float) -> SnapshotTrailer:
    """Write a snapshot of the whole of ``store`` to ``out``, read in ONE read transaction.

    ``out`` is rewritten from its start on each attempt (``transactional`` retries a conflicting read).

    Raises:
        NotInitialized: the store holds no initialised root namespace.
        StorageError: a migration or restore of the store is unfinished.
        StorageUnavailable: the store cannot be read.
    """

    async def run(tx: Transaction) -> SnapshotTrailer:
        out.seek(0)
        out.truncate()
        header = SnapshotHeader(random_bytes(16), int(now), await current_cluster_id(tx), store.kind)
        writer = SnapshotWriter(out, header, SnapshotMac(kek, header.snapshot_id))
        async for key, value in scan(tx, store.limits):
            if key == MARKER_KEY:
                raise StorageError("a migration or restore of this store is unfinished; no snapshot taken")
            writer.add(key, value)
        return writer.finish()

    return await transactional(store, run)


async def save_stream(store: Store, kek: SecretBytes, *, now: float) -> AsyncIterator[bytes]:
    """The snapshot file in chunks. The whole snapshot is taken (and spooled) before the first chunk.

    Raises (before the first chunk): as :func:`write_snapshot`.
    """
    out = spool()
    try:
        await write_snapshot(store, kek, out, now=now)
        out.seek(0)
        while chunk := out.read(CHUNK):
            yield chunk
    finally:
        out.close()


# -- verify -----------------------------------------------------------------------------------------------


@dataclass
class VerifiedSnapshot:
    """A snapshot file that passed :func:`verify_snapshot`, with what restore writes first and last."""

    header: SnapshotHeader
    summary: Summary
    authenticated: bool
    first: list[Pair] = field(default_factory=list)
    last: list[Pair] = field(default_factory=list)


def verify_snapshot(
    src: BinaryIO,
    *,
    kek: SecretBytes | None,
    limits: StoreLimits,
    cluster_id: str | None,
    force: bool,
) -> VerifiedSnapshot:
    """Read the whole of ``src`` and decide whether it may be restored into a store with ``limits``.

    ``kek`` is the root keyring's KEK of the cluster restoring (``None``: no key to authenticate with),
    ``cluster_id`` its id (``None``: accept the snapshot's own). A snapshot of this cluster must
    authenticate, forced or not; one of another cluster is refused unless ``force``, and is then checked
    for integrity only (its MAC key is the other cluster's); without a ``kek`` only ``force`` accepts
    a snapshot, again for its integrity only.

    Raises:
        SnapshotRejected: malformed, truncated, altered, over the limits, not authentic, of another
            cluster without ``force``, or without an initialised root namespace.
    """
    reader = SnapshotReader(src, limits=limits)
    header = reader.header
    mac = SnapshotMac(kek, header.snapshot_id) if kek is not None else None
    if mac is not None:
        reader.attach(mac)
    verified = VerifiedSnapshot(header, Summary(0, ""), authenticated=False)
    present: set[bytes] = set()
    for key, value in reader.records():
        if key == MARKER_KEY:
            raise SnapshotRejected("snapshot was taken while a migration or restore was unfinished")
        where = phase(key)
        if where == FIRST:
            verified.first.append((key, value))
        elif where == LAST:
            verified.last.append((key, value))
        if key in (LAYOUT_KEY, ROOT_SEAL_KEY, ROOT_KEYRING_KEY):
            present.add(key)
    trailer = reader.trailer
    assert trailer is not None  # set once records() is exhausted
    verified.summary = Summary(trailer.count, reader.digest.hexdigest())
    if mac is not None:
        try:
            mac.verify(trailer.mac)
            verified.authenticated = True
        except DecryptionFailed:
            pass
    if not verified.authenticated:
        foreign = cluster_id is not None and header.cluster_id != cluster_id
        if foreign and not force:
            raise SnapshotRejected(
                f"snapshot is of cluster {header.cluster_id}, this is cluster {cluster_id}: "
                "use snapshot-force to restore it anyway"
            )
        if not foreign and not (force and kek is None):
            raise SnapshotRejected(
                "snapshot failed authentication: it was altered, or was not made by this cluster"
            )
    if len(present) != 3:
        raise SnapshotRejected("snapshot holds no initialised root namespace")
    return verified


# -- restore ----------------------------------------------------------------------------------------------


async def _pairs(src: BinaryIO, limits: StoreLimits) -> AsyncIterator[Pair]:
    for pair in SnapshotReader(src, limits=limits).records():
        yield pair


async def restore_verified(
    store: Store,
    src: BinaryIO,
    verified: VerifiedSnapshot,
    *,
    before_write: Callable[[], Awaitable[None]] | None = None,
    chunk_ops: int = CHUNK_OPS,
    retry_delay: float = 0.5,
) -> Summary:
    """Replace the contents of ``store`` with the verified snapshot in ``src``; return what it holds then.

    ``before_write`` runs before the first write (the node seals itself there). Not one transaction:
    see the module docstring for what a crash half-way leaves. ``chunk_ops`` caps the records per
    transaction (below the store's own limits), ``retry_delay`` is the first pause before re-sending a
    chunk after ``StorageUnavailable``.

    Raises:
        CorruptRecord: the store does not hold the snapshot's records afterwards (re-run the restore).
        SnapshotRejected: ``src`` changed since it was verified.
        RecordTooLarge, StorageError, StorageUnavailable: writing failed (re-run the restore).
    """
    marker = new_marker(
        "restore", snapshot=verified.header.snapshot_id.hex(), cluster_id=verified.header.cluster_id
    )
    if before_write is not None:
        await before_write()
    src.seek(0)
    writer = ContentWriter(store, marker, chunk_ops=chunk_ops, retry_delay=retry_delay)
    await writer.write(write_order(verified.first, _pairs(src, store.limits), verified.last))
    after = await summarize(store, PairDigest)
    if after != verified.summary:
        raise CorruptRecord(
            f"after the restore the store holds {after.count} records with digest {after.digest}, the "
            f"snapshot {verified.summary.count} with {verified.summary.digest}: re-run the restore"
        )
    return after


async def restore_stream(
    store: Store,
    body: AsyncIterator[bytes],
    *,
    kek: SecretBytes,
    cluster_id: str,
    force: bool,
    seal: Callable[[], Awaitable[None]],
) -> AsyncIterator[bytes]:
    """Spool ``body``, verify it, seal the node (``await seal()``), restore; yields one empty chunk at the end.

    Everything happens before the single (empty) chunk, so the API sends its status only afterwards and
    every failure is an error response.

    Raises (before the chunk):
        SnapshotRejected: nothing was written.
        CorruptRecord, RecordTooLarge, StorageError, StorageUnavailable: the restore stopped; the node is
            sealed and the store refuses to be served until a restore completes.
    """
    src = spool()
    try:
        async for chunk in body:
            src.write(chunk)
        src.seek(0)
        # Reading and hashing the whole file is CPU and disk work: off the event loop, so the node keeps
        # serving while it verifies (it seals only once the file has passed).
        verified = await asyncio.to_thread(
            verify_snapshot, src, kek=kek, limits=store.limits, cluster_id=cluster_id, force=force
        )
        await restore_verified(store, src, verified, before_write=seal)
    finally:
        src.close()
    yield b""


# -- offline restore --------------------------------------------------------------------------------------


def read_root_seal(src: BinaryIO) -> tuple[SnapshotHeader, SealConfig, bytes]:
    """The header, root seal configuration and root keyring record of the snapshot in ``src``.

    Reads the file without authenticating it (that needs the KEK inside the keyring): use the result only
    to rebuild the root key, then :func:`verify_snapshot` with :func:`kek_from_root_key`.

    Raises:
        SnapshotRejected: malformed or without an initialised root namespace.
    """
    reader = SnapshotReader(src)
    seal_raw: bytes | None = None
    keyring: bytes | None = None
    for key, value in reader.records():
        if key == ROOT_SEAL_KEY:
            seal_raw = value
        elif key == ROOT_KEYRING_KEY:
            keyring = value
    if seal_raw is None or keyring is None:
        raise SnapshotRejected("snapshot holds no initialised root namespace")
    try:
        config = SealConfig.from_json(orjson.loads(seal_raw))
    except (orjson.JSONDecodeError, CorruptRecord):
        raise SnapshotRejected("snapshot holds a malformed seal configuration") from None
    return reader.header, config, keyring


def kek_from_root_key(keyring: bytes, root_key: SecretBytes) -> SecretBytes:
    """Open the snapshot's root keyring record with ``root_key``; return its KEK.

    Raises:
        InvalidShare: the key does not open the keyring (shares of another cluster or another rekey).
        CorruptRecord: the keyring decrypted but is malformed.
    """
    try:
        return Keyring.open(root_key, ROOT_KEYRING_KEY, keyring).kek
    except DecryptionFailed:
        raise InvalidShare("the unseal keys do not open the snapshot's keyring") from None


def describe(verified: VerifiedSnapshot) -> dict[str, Any]:
    """A JSON-friendly summary of a verified snapshot (no key material)."""
    h = verified.header
    return {
        "snapshot_id": h.snapshot_id.hex(),
        "created": h.created,
        "cluster_id": h.cluster_id,
        "storage_kind": h.storage_kind,
        "records": verified.summary.count,
        "sha256": verified.summary.digest,
        "authenticated": verified.authenticated,
    }
