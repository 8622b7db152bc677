"""Tuple encoding: FoundationDB test vectors, roundtrip and order preservation."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from strongroom.errors import CorruptRecord
from strongroom.storage.tuple import pack, range_of, unpack

VECTORS: list[tuple[tuple[Any, ...], bytes]] = [
    ((b"foo\x00bar",), b"\x01foo\x00\xffbar\x00"),
    (("F\u00d4O\u0000bar",), b"\x02F\xc3\x94O\x00\xffbar\x00"),
    (((b"foo\x00bar", None, ()),), b"\x05\x01foo\x00\xffbar\x00\x00\xff\x05\x00\x00"),
    ((-5551212,), b"\x11\xabK\x93"),
    ((None,), b"\x00"),
    ((0,), b"\x14"),
    ((-1,), b"\x13\xfe"),
    ((1,), b"\x15\x01"),
    ((2**64,), b"\x1d\x09\x01" + b"\x00" * 8),
    ((-(2**64),), b"\x0b\xf6\xfe" + b"\xff" * 8),
    ((False, True), b"\x26\x27"),
    (("ns", b"root", "seal"), b"\x02ns\x00\x01root\x00\x02seal\x00"),
]


@pytest.mark.parametrize(("value", "encoded"), VECTORS)
def test_vectors(value: tuple[Any, ...], encoded: bytes) -> None:
    assert pack(value) == encoded
    assert unpack(encoded) == value


ints = st.integers(min_value=-(2**300), max_value=2**300).filter(lambda i: abs(i).bit_length() <= 255 * 8)
scalars = st.one_of(st.none(), st.binary(max_size=12), st.text(max_size=8), ints, st.booleans())
elements = st.recursive(scalars, lambda inner: st.tuples(inner, inner) | st.tuples(inner), max_leaves=6)


@given(st.lists(elements, max_size=5).map(tuple))
def test_roundtrip(value: tuple[Any, ...]) -> None:
    assert unpack(pack(value)) == value


SAME_TYPE = [st.binary(max_size=10), st.text(max_size=10), ints, st.booleans()]


@pytest.mark.parametrize("strategy", SAME_TYPE, ids=["bytes", "str", "int", "bool"])
@given(data=st.data())
def test_order_preserved(strategy: st.SearchStrategy[Any], data: st.DataObject) -> None:
    n = data.draw(st.integers(min_value=1, max_value=3))
    a = tuple(data.draw(st.lists(strategy, min_size=n, max_size=n)))
    b = tuple(data.draw(st.lists(strategy, min_size=n, max_size=n)))
    assert (a < b) == (pack(a) < pack(b))
    assert (a == b) == (pack(a) == pack(b))


@given(st.lists(st.binary(max_size=6), min_size=1, max_size=3).map(tuple), st.binary(max_size=6))
def test_prefix_ranges(prefix: tuple[bytes, ...], extra: bytes) -> None:
    begin, end = range_of(prefix)
    assert begin <= pack((*prefix, extra)) < end
    assert begin <= pack((*prefix, None)) < end
    assert not begin <= pack(prefix) < end


def test_nested_order_and_prefix() -> None:
    assert pack(((),)) < pack(((None,),))
    assert pack((b"a",)) < pack((b"a\x00",)) < pack((b"a\x00\x00",)) < pack((b"a\x01",))


@pytest.mark.parametrize("bad", [1.5, object(), [1], 2 ** (256 * 8)])
def test_unsupported_values_refused(bad: object) -> None:
    with pytest.raises((TypeError, ValueError)):
        pack((bad,))


MALFORMED = {
    "unterminated": b"\x01abc",
    "bad-utf8": b"\x02\xff\x00",
    "truncated-int": b"\x15",
    "non-minimal-int": b"\x16\x00\x01",
    "short-bigint": b"\x1d\x01\x05",
    "float": b"\x21",
    "open-nested": b"\x05\x01a\x00",
    "neg-bigint": b"\x0b\x01",
}


@pytest.mark.parametrize("raw", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_keys_raise_corrupt_record(raw: bytes) -> None:
    with pytest.raises(CorruptRecord):
        unpack(raw)
