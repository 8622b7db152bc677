"""The snapshot file format, version 1 (docs/operations/migrate-and-snapshot.md, "Snapshot format").

Integers are big-endian. ::

    header   magic "\\x93SRSNP\\r\\n" (8 bytes) | version u16 = 1 | snapshot id (16 random bytes)
             | created u64 (Unix seconds) | u16 length + cluster id (UTF-8) | u16 length + storage kind
    records  per pair, in strictly increasing key order:
             0x01 | u32 len(key) | key | u32 len(value) | value
    trailer  0x00 | count u64 | pair digest (32 bytes) | HMAC-SHA256 (32 bytes)

The pair digest is :class:`~strongroom.crypto.snapshot_mac.PairDigest` over the records (the number
``strongroom operator migrate`` prints); the HMAC (:class:`~strongroom.crypto.snapshot_mac.SnapshotMac`)
covers every byte before it. Keys and values are copied from storage as they are: values are barrier
ciphertext (or the clear layout and seal-configuration records), keys are blind-indexed tuples, so a
snapshot holds nothing in clear that storage does not.

The magic's first byte has the high bit set and it ends in CR LF, so a transfer that strips the eighth bit
or rewrites line ends fails at once. :class:`SnapshotReader` checks structure, order, lengths, count and
digest as it reads; authenticity is the caller's part (it attaches a MAC before reading records).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from strongroom.crypto.snapshot_mac import MAC_SIZE, PairDigest, SnapshotMac
from strongroom.errors import InvalidRequest
from strongroom.storage.base import StoreLimits

__all__ = [
    "FORMAT_VERSION",
    "MAGIC",
    "SnapshotHeader",
    "SnapshotReader",
    "SnapshotRejected",
    "SnapshotTrailer",
    "SnapshotWriter",
]

MAGIC = b"\x93SRSNP\r\n"
FORMAT_VERSION = 1
ID_SIZE = 16
DIGEST_SIZE = 32
_RECORD, _END = 0x01, 0x00
_MAX_TEXT = 1024
_U16, _U32, _U64 = struct.Struct(">H"), struct.Struct(">I"), struct.Struct(">Q")


class SnapshotRejected(InvalidRequest):
    """A snapshot file is malformed, truncated, altered or not acceptable here (400)."""


@dataclass(frozen=True)
class SnapshotHeader:
    """The header fields of a snapshot."""

    snapshot_id: bytes
    created: int
    cluster_id: str
    storage_kind: str

    def encode(self) -> bytes:
        """The header's bytes (magic included).

        Raises:
            ValueError: a field does not fit the format (a programming error).
        """
        if len(self.snapshot_id) != ID_SIZE:
            raise ValueError("snapshot id must be 16 bytes")
        cluster = self.cluster_id.encode()
        kind = self.storage_kind.encode()
        if len(cluster) > _MAX_TEXT or len(kind) > _MAX_TEXT:
            raise ValueError("snapshot header text too long")
        return b"".join(
            (
                MAGIC,
                _U16.pack(FORMAT_VERSION),
                self.snapshot_id,
                _U64.pack(self.created),
                _U16.pack(len(cluster)),
                cluster,
                _U16.pack(len(kind)),
                kind,
            )
        )


@dataclass(frozen=True)
class SnapshotTrailer:
    """The trailer: how many records, their pair digest, and the file's HMAC."""

    count: int
    digest: bytes
    mac: bytes


class SnapshotWriter:
    """Writes one snapshot to a binary file: header now, :meth:`add` per pair, :meth:`finish` once."""

    def __init__(self, out: BinaryIO, header: SnapshotHeader, mac: SnapshotMac) -> None:
        self._out = out
        self._mac = mac
        self._digest = PairDigest()
        self._count = 0
        self._last: bytes | None = None
        self._emit(header.encode())

    def _emit(self, data: bytes) -> None:
        self._mac.update(data)
        self._out.write(data)

    def add(self, key: bytes, value: bytes) -> None:
        """Append one pair (keys must strictly increase; raises ``ValueError`` otherwise)."""
        if self._last is not None and key <= self._last:
            raise ValueError("snapshot keys must strictly increase")
        self._last = key
        self._emit(b"\x01" + _U32.pack(len(key)) + key + _U32.pack(len(value)))
        self._emit(value)
        self._digest.update(key, value)
        self._count += 1

    def finish(self) -> SnapshotTrailer:
        """Write the trailer and return it."""
        digest = self._digest.digest()
        self._emit(b"\x00" + _U64.pack(self._count) + digest)
        tag = self._mac.tag()
        self._out.write(tag)
        return SnapshotTrailer(self._count, digest, tag)


class SnapshotReader:
    """Reads one snapshot file, checking it as it goes.

    The header is read by the constructor; :meth:`attach` a MAC (it is fed the header too) before
    iterating :meth:`records`; after the iteration ends, :attr:`trailer` is set and the MAC has seen every
    byte before the tag, ready for ``mac.verify(reader.trailer.mac)``.

    ``limits`` bound what a record may be (the store it is going to): larger keys or values are refused
    before anything is allocated for them.
    """

    def __init__(self, src: BinaryIO, *, limits: StoreLimits | None = None) -> None:
        """Read and check the header.

        Raises:
            SnapshotRejected: not a snapshot, an unsupported version, or a truncated header.
        """
        self._src = src
        self._limits = limits or StoreLimits()
        self._mac: SnapshotMac | None = None
        self._seen: list[bytes] = []
        self.trailer: SnapshotTrailer | None = None
        self.digest = PairDigest()
        magic = self._src.read(len(MAGIC))
        if magic != MAGIC:
            raise SnapshotRejected("not a strongroom snapshot file (bad magic)")
        self._seen.append(magic)
        (version,) = _U16.unpack(self._read(2))
        if version != FORMAT_VERSION:
            raise SnapshotRejected(f"unsupported snapshot format version {version} (this server reads 1)")
        snapshot_id = self._read(ID_SIZE)
        (created,) = _U64.unpack(self._read(8))
        cluster = self._text()
        kind = self._text()
        self.header = SnapshotHeader(snapshot_id, created, cluster, kind)

    def _read(self, n: int) -> bytes:
        data = self._src.read(n)
        if len(data) != n:
            raise SnapshotRejected("snapshot file is truncated")
        if self._mac is not None:
            self._mac.update(data)
        else:
            self._seen.append(data)
        return data

    def _text(self) -> str:
        (n,) = _U16.unpack(self._read(2))
        if n > _MAX_TEXT:
            raise SnapshotRejected("malformed snapshot header")
        try:
            return self._read(n).decode()
        except UnicodeDecodeError:
            raise SnapshotRejected("malformed snapshot header") from None

    def attach(self, mac: SnapshotMac) -> None:
        """Feed ``mac`` the header read so far and every byte read from now on (up to the tag)."""
        for part in self._seen:
            mac.update(part)
        self._seen.clear()
        self._mac = mac

    def records(self) -> Iterator[tuple[bytes, bytes]]:
        """Yield the pairs; at the end, read and check the trailer and that nothing follows it.

        Raises:
            SnapshotRejected: truncated, out of order, over the limits, wrong count or digest, or
                trailing bytes.
        """
        limits = self._limits
        last: bytes | None = None
        count = 0
        while True:
            tag = self._read(1)[0]
            if tag == _END:
                break
            if tag != _RECORD:
                raise SnapshotRejected("malformed snapshot record")
            (klen,) = _U32.unpack(self._read(4))
            if klen > limits.max_key_bytes:
                raise SnapshotRejected(f"snapshot key of {klen} bytes exceeds this store's limit")
            key = self._read(klen)
            (vlen,) = _U32.unpack(self._read(4))
            if vlen > limits.max_value_bytes or klen + vlen > limits.max_transaction_bytes:
                raise SnapshotRejected(f"snapshot value of {vlen} bytes exceeds this store's limits")
            value = self._read(vlen)
            if last is not None and key <= last:
                raise SnapshotRejected("snapshot records are out of order")
            last = key
            self.digest.update(key, value)
            count += 1
            yield key, value
        (stated,) = _U64.unpack(self._read(8))
        digest = self._read(DIGEST_SIZE)
        # The tag itself is not part of what the MAC covers.
        mac = self._src.read(MAC_SIZE)
        if len(mac) != MAC_SIZE:
            raise SnapshotRejected("snapshot file is truncated")
        if self._src.read(1):
            raise SnapshotRejected("unexpected data after the end of the snapshot")
        if stated != count:
            raise SnapshotRejected(f"snapshot trailer says {stated} records, the file holds {count}")
        if digest != self.digest.digest():
            raise SnapshotRejected("snapshot records do not match the digest in its trailer")
        self.trailer = SnapshotTrailer(count, digest, mac)
