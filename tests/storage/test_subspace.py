"""Subspaces and the layout version record."""

from __future__ import annotations

import json

import pytest

from strongroom.errors import CorruptRecord, StorageError
from strongroom.storage.memory import MemoryStore
from strongroom.storage.subspace import LAYOUT_KEY, ROOT_NAMESPACE_ID, Subspace, check_layout, namespace
from strongroom.storage.tuple import pack


def test_key_sub_unpack_range_contains() -> None:
    s = Subspace(("ns", b"root"))
    assert s.raw_prefix == pack(("ns", b"root"))
    assert s.key("m", "uuid", 7) == pack(("ns", b"root", "m", "uuid", 7))
    mount = s.sub("m", "uuid")
    assert mount == Subspace(("ns", b"root", "m", "uuid"))
    assert mount.prefix == ("ns", b"root", "m", "uuid")
    assert mount.key(b"x") == s.key("m", "uuid", b"x")
    assert mount.unpack(mount.key(b"x", 3)) == (b"x", 3)
    begin, end = mount.range()
    assert begin <= mount.key(None) < end
    assert begin <= mount.key(b"\xff" * 5) < end
    assert not begin <= mount.raw_prefix < end
    assert not begin <= s.sub("m", "uuie").key(b"x") < end
    assert mount.contains(mount.key(1))
    assert not mount.contains(s.key("m", "other", 1))
    b2, e2 = mount.range(b"dir")
    assert b2 <= mount.key(b"dir", b"file") < e2
    assert not b2 <= mount.key(b"dir2") < e2


def test_unpack_outside_subspace_raises() -> None:
    with pytest.raises(CorruptRecord):
        Subspace(("a",)).unpack(pack(("b", 1)))


def test_raw_prefix_subspace() -> None:
    s = Subspace(("x",), raw_prefix=b"\xfe")
    assert s.key(1) == b"\xfe" + pack(("x", 1))
    assert s.unpack(s.key(1)) == (1,)


def test_namespace_layout() -> None:
    root = namespace(ROOT_NAMESPACE_ID)
    assert root.key("seal") == pack(("ns", b"root", "seal"))
    assert root.sub("m", "u").key(b"k") == pack(("ns", b"root", "m", "u", b"k"))


async def test_layout_written_on_empty_store_then_accepted() -> None:
    store = MemoryStore()
    async with store.transaction() as tx:
        assert await check_layout(tx) == (1, 0)
    async with store.transaction() as tx:
        assert json.loads(await tx.get(LAYOUT_KEY) or b"") == {"major": 1, "minor": 0}
        assert await check_layout(tx, (1, 3)) == (1, 0)  # other minor: fine


async def test_newer_major_refused() -> None:
    store = MemoryStore()
    async with store.transaction() as tx:
        tx.set(LAYOUT_KEY, b'{"major": 2, "minor": 0}')
    with pytest.raises(StorageError, match=r"layout 2\.0"):
        async with store.transaction() as tx:
            await check_layout(tx)


async def test_data_without_layout_refused() -> None:
    store = MemoryStore()
    async with store.transaction() as tx:
        tx.set(namespace(b"root").key("seal"), b"{}")
    with pytest.raises(StorageError):
        async with store.transaction() as tx:
            await check_layout(tx)


async def test_malformed_layout_record() -> None:
    store = MemoryStore()
    async with store.transaction() as tx:
        tx.set(LAYOUT_KEY, b"not json")
    with pytest.raises(CorruptRecord):
        async with store.transaction() as tx:
            await check_layout(tx)
