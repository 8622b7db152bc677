"""Blind-indexed paths with directory markers, on a real store."""

from __future__ import annotations

import pytest

from strongroom.barrier.barrier import Barrier
from strongroom.barrier.keyring import Keyring
from strongroom.barrier.paths import PathIndex, split_path
from strongroom.barrier.records import Records
from strongroom.crypto.kdf import BlindIndexer
from strongroom.errors import InvalidRequest, TransactionConflict
from strongroom.storage.base import Transaction, transactional
from strongroom.storage.memory import MemoryStore
from strongroom.storage.subspace import Subspace

RING = Keyring.generate(now=0.0)
SPACE = Subspace(("test",))


def index(tx: Transaction) -> PathIndex:
    return PathIndex(Records(tx, Barrier(RING), SPACE), BlindIndexer(RING.blind_key))


def test_split_path() -> None:
    assert split_path("a/b/c") == ["a/", "b/", "c"]
    assert split_path("a/b/") == ["a/", "b/"]
    assert split_path("leaf") == ["leaf"]
    for bad in ["", "a//b", "a/../b", "./a"]:
        with pytest.raises(InvalidRequest):
            split_path(bad)


async def test_link_list_unlink() -> None:
    store = MemoryStore()

    async def create(tx: Transaction) -> None:
        ix = index(tx)
        for p in ["a/b/c", "a/b/d", "a/e", "a", "z"]:
            entry = await ix.link(p)
            ix.entry(entry).put(("v",), p.encode())

    await transactional(store, create)

    async def listing(tx: Transaction) -> dict[str, list[str]]:
        ix = index(tx)
        return {d: await ix.list(d) for d in ["", "a/", "a/b/", "a/b/c/", "nope/"]}

    assert await transactional(store, listing) == {
        "": ["a", "a/", "z"],
        "a/": ["b/", "e"],
        "a/b/": ["c", "d"],
        "a/b/c/": [],
        "nope/": [],
    }

    async def remove(tx: Transaction) -> None:
        ix = index(tx)
        await ix.unlink("a/b/c")
        await ix.unlink("a/b/d")

    await transactional(store, remove)
    after = await transactional(store, listing)
    assert after[""] == ["a", "a/", "z"]
    assert after["a/"] == ["e"]  # a/b/ vanished with its last child
    assert after["a/b/"] == []


async def test_no_name_in_physical_keys() -> None:
    store = MemoryStore()

    async def create(tx: Transaction) -> None:
        await index(tx).link("customer-secrets/acme-corp")

    await transactional(store, create)

    async def dump(tx: Transaction) -> list[tuple[bytes, bytes]]:
        return await tx.range(b"", b"\xff")

    rows = await transactional(store, dump)
    assert rows
    blob = b"".join(k + v for k, v in rows)
    assert b"customer" not in blob and b"acme" not in blob


async def test_concurrent_create_and_emptying_delete_conflict() -> None:
    """Deleting the last child of a directory races a create in it: one must retry."""
    store = MemoryStore()

    async def seed(tx: Transaction) -> None:
        await index(tx).link("dir/only")

    await transactional(store, seed)
    create_cm = store.transaction()
    t_create = await create_cm.__aenter__()
    await index(t_create).link("dir/new")
    async with store.transaction() as t_delete:
        await index(t_delete).unlink("dir/only")
    # t_delete committed first; t_create read the directory marker t_delete cleared, so it must retry.
    with pytest.raises(TransactionConflict):
        await create_cm.__aexit__(None, None, None)
