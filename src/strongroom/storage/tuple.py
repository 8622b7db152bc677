"""Order-preserving tuple encoding of keys (a subset of FoundationDB's tuple layer).

Supported element types: ``None``, ``bytes``, ``str``, ``int`` (up to 255 bytes of magnitude), ``bool``
and nested tuples of these. The byte format is FoundationDB's, specified in ``docs/spec/storage-layout.md``.

Guarantees:

* ``unpack(pack(t)) == t`` for every supported tuple;
* for tuples ``a`` and ``b`` whose elements pairwise have the same type, ``a < b`` if and only if
  ``pack(a) < pack(b)`` in unsigned byte order (elements of different types order by type code);
* a packed tuple is a byte prefix of the packing of every tuple extending it, and ``range_of(t)`` holds
  exactly the keys of those extensions (among packed keys).
"""

from __future__ import annotations

from typing import Any

from strongroom.errors import CorruptRecord

NULL = 0x00
BYTES = 0x01
STRING = 0x02
NESTED = 0x05
NEG_BIG = 0x0B
INT_ZERO = 0x14
POS_BIG = 0x1D
FALSE = 0x26
TRUE = 0x27

_MAX_INT_BYTES = 255

__all__ = ["pack", "range_of", "unpack"]


def pack(t: tuple[Any, ...]) -> bytes:
    """Encode ``t``.

    Raises:
        TypeError: an element has an unsupported type (keys are built by code, so this is a bug).
        ValueError: an integer needs more than 255 bytes.
    """
    # Fast paths for the element types keys are made of (fixed area names, blind ids, small ints); keys
    # are packed several times per request, so this is hot.
    parts: list[bytes] = []
    for item in t:
        cls = type(item)
        if cls is str:
            encoded = _STR_CACHE.get(item)
            if encoded is None:
                encoded = _encode_one(item)
                if len(_STR_CACHE) < _STR_CACHE_MAX:
                    _STR_CACHE[item] = encoded
            parts.append(encoded)
        elif cls is bytes:
            body = item.replace(b"\x00", b"\x00\xff") if b"\x00" in item else item
            parts.append(b"\x01" + body + b"\x00")
        elif cls is int:
            # Version numbers and counters: the general integer path costs ~1 us.
            encoded = _INT_CACHE.get(item)
            if encoded is None:
                encoded = _encode_one(item)
                if len(_INT_CACHE) < _STR_CACHE_MAX:
                    _INT_CACHE[item] = encoded
            parts.append(encoded)
        else:
            parts.append(_encode_one(item))
    return b"".join(parts)


_STR_CACHE: dict[str, bytes] = {}
_STR_CACHE_MAX = 4096
_INT_CACHE: dict[int, bytes] = {}


def _encode_one(item: Any) -> bytes:
    out = bytearray()
    _encode(out, item, nested=False)
    return bytes(out)


def range_of(t: tuple[Any, ...]) -> tuple[bytes, bytes]:
    """Return ``(begin, end)`` bounding every key that strictly extends the packed ``t``.

    ``pack(t)`` itself is excluded, as in FoundationDB's ``Tuple.range``.
    """
    p = pack(t)
    return p + b"\x00", p + b"\xff"


def unpack(key: bytes) -> tuple[Any, ...]:
    """Decode a packed tuple.

    Raises:
        CorruptRecord: ``key`` is not a well-formed encoding (it came from untrusted storage).
    """
    items: list[Any] = []
    pos = 0
    n = len(key)
    try:
        while pos < n:
            item, pos = _decode(key, pos, nested=False)
            items.append(item)
    except (IndexError, UnicodeDecodeError) as exc:
        raise CorruptRecord("malformed tuple key") from exc
    return tuple(items)


def _escape(out: bytearray, data: bytes) -> None:
    # 0x00 inside a string becomes 0x00 0xff so that the terminator (0x00 not followed by 0xff) is
    # unambiguous and a string sorts before its extensions.
    out += data.replace(b"\x00", b"\x00\xff")
    out.append(0)


def _encode(out: bytearray, item: Any, *, nested: bool) -> None:
    # bool before int: bool is a subclass of int but has its own type codes.
    if item is None:
        out.append(NULL)
        if nested:
            out.append(0xFF)
    elif item is True:
        out.append(TRUE)
    elif item is False:
        out.append(FALSE)
    elif isinstance(item, bytes):
        out.append(BYTES)
        _escape(out, item)
    elif isinstance(item, str):
        out.append(STRING)
        _escape(out, item.encode("utf-8"))
    elif isinstance(item, int):
        _encode_int(out, item)
    elif isinstance(item, tuple):
        out.append(NESTED)
        for sub in item:
            _encode(out, sub, nested=True)
        out.append(0)
    else:
        raise TypeError(f"cannot pack {type(item).__name__} into a key")


def _encode_int(out: bytearray, value: int) -> None:
    if value == 0:
        out.append(INT_ZERO)
        return
    magnitude = abs(value)
    size = (magnitude.bit_length() + 7) // 8
    if size > _MAX_INT_BYTES:
        raise ValueError("integer too large for a key")
    if value > 0:
        body = magnitude.to_bytes(size, "big")
        if size <= 8:
            out.append(INT_ZERO + size)
        else:
            out.append(POS_BIG)
            out.append(size)
        out += body
        return
    # Negative: one's complement of the magnitude, so larger magnitudes sort first.
    body = ((1 << (8 * size)) - 1 - magnitude).to_bytes(size, "big")
    if size <= 8:
        out.append(INT_ZERO - size)
    else:
        out.append(NEG_BIG)
        out.append(size ^ 0xFF)
    out += body


def _find_terminator(key: bytes, pos: int) -> int:
    # The end of an escaped string is the first 0x00 that is not followed by 0xff.
    while True:
        end = key.index(b"\x00", pos)
        if end + 1 < len(key) and key[end + 1] == 0xFF:
            pos = end + 2
            continue
        return end


def _decode(key: bytes, pos: int, *, nested: bool) -> tuple[Any, int]:
    code = key[pos]
    pos += 1
    if code == NULL:
        if nested:
            if key[pos] != 0xFF:
                raise CorruptRecord("malformed tuple key")
            return None, pos + 1
        return None, pos
    if code in (BYTES, STRING):
        try:
            end = _find_terminator(key, pos)
        except ValueError as exc:
            raise CorruptRecord("malformed tuple key") from exc
        raw = key[pos:end].replace(b"\x00\xff", b"\x00")
        return (raw if code == BYTES else raw.decode("utf-8")), end + 1
    if code == NESTED:
        items: list[Any] = []
        while True:
            if key[pos] == 0x00 and (pos + 1 >= len(key) or key[pos + 1] != 0xFF):
                return tuple(items), pos + 1
            item, pos = _decode(key, pos, nested=True)
            items.append(item)
    if code == INT_ZERO:
        return 0, pos
    if INT_ZERO - 8 <= code <= INT_ZERO + 8:
        size = abs(code - INT_ZERO)
        return _decode_int_body(key, pos, size, negative=code < INT_ZERO, big=False)
    if code == POS_BIG:
        return _decode_int_body(key, pos + 1, key[pos], negative=False, big=True)
    if code == NEG_BIG:
        return _decode_int_body(key, pos + 1, key[pos] ^ 0xFF, negative=True, big=True)
    if code == TRUE:
        return True, pos
    if code == FALSE:
        return False, pos
    raise CorruptRecord("unsupported type code in tuple key")


def _decode_int_body(key: bytes, pos: int, size: int, *, negative: bool, big: bool) -> tuple[int, int]:
    body = key[pos : pos + size]
    if len(body) != size:
        raise CorruptRecord("truncated integer in tuple key")
    raw = int.from_bytes(body, "big")
    if negative:
        raw = (1 << (8 * size)) - 1 - raw
    # Canonical form only: a non-minimal length would make two keys for one integer.
    minimal = (raw.bit_length() + 7) // 8
    if size == 0 or minimal != size or (big and size <= 8):
        raise CorruptRecord("non-canonical integer in tuple key")
    return (-raw if negative else raw), pos + size
