"""Building the etcd ``Txn`` that commits one strongroom transaction (see ``storage.etcd`` for the design).

Pure functions, no I/O: the key spaces under a store's prefix, the compares that check a read set, the
operations that apply a write buffer, and upper bounds of the encoded request size, so that a request
etcd would refuse (more than ``--max-request-bytes`` or ``--max-txn-ops``) is refused here first with
:class:`~strongroom.errors.RecordTooLarge`.

Compares and operations are produced as JSON text (bytes) for the gateway, written directly rather than
through dicts and a JSON encoder: every string in them is base64, which needs no escaping, and building a
commit this way costs a few microseconds instead of about twenty.
"""

from __future__ import annotations

import binascii
import struct

from strongroom.errors import RecordTooLarge
from strongroom.storage.base import _in_ranges, _merge_ranges

__all__ = [
    "RAFT_OVERHEAD",
    "Keyspace",
    "b64",
    "b64s",
    "decode_tombstone",
    "encode_tombstone",
    "overlaps",
    "prefix_end",
    "read_compares",
    "write_ops",
]

# etcd measures the request wrapped in its raft entry (a header with an id and the txn's field tag).
RAFT_OVERHEAD = 64


def b64(data: bytes) -> bytes:
    """Base64 bytes, as the gateway wants bytes fields (safe inside a JSON string without escaping)."""
    return binascii.b2a_base64(data, newline=False)


def b64s(data: bytes) -> str:
    """:func:`b64` as ``str``, for documents encoded by a JSON library."""
    return binascii.b2a_base64(data, newline=False).decode("ascii")


def _varint(n: int) -> int:
    return max(1, (n.bit_length() + 6) // 7)


def _field(n: int, tag: int = 1) -> int:
    """Encoded size of a length-delimited protobuf field of ``n`` bytes."""
    return tag + _varint(n) + n


class Keyspace:
    """The etcd keys of one store: everything lies under ``prefix``.

    * ``data + key``: the value of strongroom key ``key``;
    * ``shadow + key``: an empty record written when ``key`` is deleted by ``clear`` (so that a range
      compare sees deletions, which leave no key behind), removed by a later ``clear_range`` over it;
    * ``tombstones + id``: one record per ``clear_range``, holding its bounds, attached to a lease;
    * ``markers + id``: one record per commit, attached to a lease (retry safety).
    """

    def __init__(self, prefix: bytes) -> None:
        self.prefix = prefix
        self.data = prefix + b"d"
        self.shadow = prefix + b"g"
        self.tombstones = prefix + b"t"
        self.tombstones_end = prefix + b"u"
        self.markers = prefix + b"x"

    def unwrap(self, key: bytes) -> bytes:
        """The strongroom key of an etcd data key."""
        return key[len(self.data) :]


def prefix_end(prefix: bytes) -> bytes:
    """The smallest key greater than every key starting with ``prefix`` (etcd's "prefix end")."""
    stripped = prefix.rstrip(b"\xff")
    if not stripped:
        return b"\x00"  # etcd: to the end of the key space
    return stripped[:-1] + bytes([stripped[-1] + 1])


def encode_tombstone(begin: bytes, end: bytes) -> bytes:
    """The value of a tombstone: the cleared range ``[begin, end)``."""
    return struct.pack(">I", len(begin)) + begin + end


def decode_tombstone(value: bytes) -> tuple[bytes, bytes]:
    """Inverse of :func:`encode_tombstone`; ``ValueError`` if malformed."""
    if len(value) < 4:
        raise ValueError("short tombstone")
    (n,) = struct.unpack(">I", value[:4])
    if len(value) < 4 + n:
        raise ValueError("short tombstone")
    return value[4 : 4 + n], value[4 + n :]


def overlaps(a: list[tuple[bytes, bytes]], b: tuple[bytes, bytes]) -> bool:
    """Whether half-open range ``b`` overlaps one of the ranges ``a`` (touching bounds do not)."""
    return any(lo < b[1] and b[0] < hi for lo, hi in a)


_POINT = b'{"key":"%s","target":"MOD","result":"EQUAL","mod_revision":%d}'
_RANGE = b'{"key":"%s","range_end":"%s","target":"MOD","result":"LESS","mod_revision":%d}'
_PUT = b'{"request_put":{"key":"%s","value":"%s"}}'
_PUT_LEASE = b'{"request_put":{"key":"%s","value":"%s","lease":%d}}'
_DELETE = b'{"request_delete_range":{"key":"%s"}}'
_DELETE_RANGE = b'{"request_delete_range":{"key":"%s","range_end":"%s"}}'


def _range_checks(
    space: Keyspace, intervals: list[tuple[bytes, bytes]], revision: int
) -> tuple[list[bytes], int]:
    """Compares that fail iff a key in one of ``intervals`` was set or ``clear``-ed after ``revision``.

    Every data key and every shadow key in the interval must have ``mod_revision <= revision``.
    Deletions by ``clear_range`` are not seen here: the caller checks tombstones. Returns the compares
    and their encoded size.
    """
    checks: list[bytes] = []
    size = 0
    after = revision + 1
    for b, e in intervals:
        for space_prefix in (space.data, space.shadow):
            key, end = space_prefix + b, space_prefix + e
            checks.append(_RANGE % (b64(key), b64(end), after))
            size += _field(8 + _field(len(key)) + _field(len(end), 2) + _varint(after))
    return checks, size


def read_compares(
    space: Keyspace,
    points: dict[bytes, int],
    ranges: list[tuple[bytes, bytes]],
    revision: int,
    max_count: int,
    max_bytes: int,
) -> tuple[list[bytes], list[tuple[bytes, bytes]]]:
    """Compares that fail iff a read was invalidated by a set or ``clear`` after ``revision``.

    ``points`` maps each key read with ``get`` to the ``mod_revision`` it had (0: absent); ``ranges``
    are the ranges read. Precise form: one ``mod_revision ==`` compare per point (a deleted key has
    revision 0, a created one a new revision; this covers ``clear_range`` too) and the range checks of
    :func:`_range_checks` per merged range. When that exceeds ``max_count`` compares or ``max_bytes``
    encoded bytes, the reads are coalesced into fewer covering intervals (points become one-key
    intervals; neighbours are joined): a covering interval can only add conflicts caused by writes after
    ``revision``, never lose one.

    Returns the compares and the intervals that the caller must check against ``clear_range``
    tombstones written after ``revision``.

    Raises:
        RecordTooLarge: even one covering interval does not fit.
    """
    merged = _merge_ranges(ranges) if ranges else []
    checks, size = _range_checks(space, merged, revision)
    for key, seen in points.items():
        full = space.data + key
        checks.append(_POINT % (b64(full), seen))
        size += _field(8 + _field(len(full)) + _varint(seen))
    if len(checks) <= max_count and size <= max_bytes:
        return checks, merged
    intervals = _merge_ranges([(k, k + b"\x00") for k in points] + merged)
    groups = len(intervals)
    while True:
        count, extra = divmod(len(intervals), groups)
        merged = []
        start = 0
        for g in range(groups):
            stop = start + count + (1 if g < extra else 0)
            merged.append((intervals[start][0], intervals[stop - 1][1]))
            start = stop
        checks, size = _range_checks(space, merged, revision)
        if len(checks) <= max_count and size <= max_bytes:
            return checks, merged
        if groups == 1:
            raise RecordTooLarge("the transaction's reads do not fit in one etcd request")
        groups = (groups + 1) // 2


def write_ops(
    space: Keyspace,
    writes: dict[bytes, bytes | None],
    cleared: list[tuple[bytes, bytes]],
    marker: bytes,
    lease: int,
) -> tuple[list[bytes], int]:
    """The operations applying a write buffer (``BufferedTransaction``'s invariants), and their size.

    * each cleared range: a delete of its data keys, split around keys set in it again (etcd refuses a
      put inside a deleted range of the same txn), a delete of its shadow keys, and a tombstone holding
      its bounds (attached to ``lease``);
    * each set: a put; each clear outside the cleared ranges: a delete and a shadow put (clears inside
      them are already done by the range delete);
    * the commit marker ``marker``, attached to ``lease``.
    """
    ops: list[bytes] = []
    size = 0
    # Sizes: a PutRequest/DeleteRangeRequest inside a RequestOp inside TxnRequest.success.
    data, shadow = space.data, space.shadow
    if cleared:
        set_keys = sorted(k for k, v in writes.items() if v is not None)
        pieces: list[tuple[bytes, bytes]] = []
        for i, (b, e) in enumerate(cleared):
            cur = b
            for k in set_keys:
                if b <= k < e:
                    if cur < k:
                        pieces.append((data + cur, data + k))
                    cur = k + b"\x00"
            if cur < e:
                pieces.append((data + cur, data + e))
            pieces.append((shadow + b, shadow + e))
            tomb_key, tomb = space.tombstones + marker + i.to_bytes(4, "big"), encode_tombstone(b, e)
            ops.append(_PUT_LEASE % (b64(tomb_key), b64(tomb), lease))
            size += _field(_field(_field(len(tomb_key)) + _field(len(tomb)) + 11))
        for key, end in pieces:
            ops.append(_DELETE_RANGE % (b64(key), b64(end)))
            size += _field(_field(_field(len(key)) + _field(len(end))))
    for k, v in writes.items():
        if v is not None:
            ops.append(_PUT % (b64(data + k), b64(v)))
            size += _field(_field(_field(len(data) + len(k)) + _field(len(v))))
        elif not (cleared and _in_ranges(cleared, k)):
            ops.append(_DELETE % b64(data + k))
            ops.append(_PUT % (b64(shadow + k), b""))
            size += _field(_field(_field(len(data) + len(k)))) + _field(
                _field(_field(len(shadow) + len(k)) + 2)
            )
    marker_key = space.markers + marker
    ops.append(_PUT_LEASE % (b64(marker_key), b"", lease))
    size += _field(_field(_field(len(marker_key)) + 13))
    return ops, size
