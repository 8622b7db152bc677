"""core/namespaces.py: naming rules, the stored entry, the registry and the chunked purge of deleted namespaces."""

from __future__ import annotations

import pytest

from strongroom.core.namespaces import (
    NamespaceEntry,
    canonical,
    descendants,
    header_path,
    parse_name,
    purge_deleted,
    purge_step,
    split_path,
)
from strongroom.errors import CorruptRecord, InvalidRequest
from strongroom.storage.base import Transaction, transactional
from strongroom.storage.subspace import namespace
from tests.support.vault import InProcessVault


@pytest.mark.parametrize(
    ("path", "expected"),
    [("", ""), ("/", ""), ("a", "a/"), ("/a/b", "a/b/"), ("a/b/", "a/b/")],
)
def test_canonical(path: str, expected: str) -> None:
    assert canonical(path) == expected


@pytest.mark.parametrize(("header", "expected"), [("root", ""), ("root/", ""), ("/", ""), (" a/b ", "a/b/")])
def test_header_path_maps_root_to_the_root_namespace(header: str, expected: str) -> None:
    assert header_path(header) == expected


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "namespace name cannot be empty"),
        ("/", "namespace name cannot be empty"),
        ("a/b", "namespace name cannot contain /"),
        (".", '"./" is a reserved path and cannot be used as a namespace name'),
        ("..", '"../" is a reserved path and cannot be used as a namespace name'),
        ("sys", '"sys/" is a reserved path and cannot be used as a namespace name'),
        ("auth", '"auth/" is a reserved path'),
        ("cubbyhole", '"cubbyhole/" is a reserved path'),
        ("identity", '"identity/" is a reserved path'),
        ("root", '"root/" is a reserved path'),
        ("audit", '"audit/" is a reserved path'),
        ("x" * 65, "is longer than 64 bytes"),
        ("é" * 33, "is longer than 64 bytes"),  # 66 bytes in UTF-8, 33 characters
        ("a b", '"a b" contains space characters'),
        ("a\tb", "contains unicode characters"),
        ("a\x01b", "contains unicode characters"),
        ("a\x7fb", "contains unicode characters"),
        ("a\u200bb", "contains unicode characters"),  # zero-width space: Unicode category Cf
        ("a+b", "contains wildcard characters"),
        ("a*", "contains wildcard characters"),
    ],
)
def test_bad_names_are_refused_with_a_clear_message(name: str, message: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_name(name)
    assert message in caught.value.message


@pytest.mark.parametrize("name", ["a", "a..b", "x" * 64, "é" * 32, "team-1_prod.eu", "Ünïcödé"])
def test_good_names(name: str) -> None:
    assert parse_name(name) == name
    assert parse_name("/" + name + "/") == name


@pytest.mark.parametrize("path", ["a//b", "a/./b", "a/../b", "a/sys", "a/" + "x" * 65])
def test_every_segment_of_a_path_is_checked(path: str) -> None:
    with pytest.raises(InvalidRequest):
        split_path(path)


def test_split_path() -> None:
    assert split_path("") == []
    assert split_path("a/b/") == ["a", "b"]
    assert split_path("/a/b") == ["a", "b"]


def test_entry_round_trip_and_wire_form() -> None:
    entry = NamespaceEntry.new("a/b/", sealable=True, custom_metadata={"k": "v"}, now=12.5)
    assert len(entry.ns_id) == 16 and len(entry.accessor) == 6
    back = NamespaceEntry.from_json(entry.to_json())
    assert back == entry
    assert entry.to_json()["seal"] == {"type": "shamir"}
    assert entry.describe() == {
        "uuid": entry.uuid, "id": entry.accessor, "path": "a/b/", "tainted": False, "locked": False,
        "custom_metadata": {"k": "v"},
    }  # fmt: skip
    assert entry.name == "b"
    with pytest.raises(CorruptRecord):
        NamespaceEntry.from_json({"id": "zz"})


def test_two_new_entries_never_share_an_id() -> None:
    a = NamespaceEntry.new("a/", sealable=False, custom_metadata={}, now=0)
    b = NamespaceEntry.new("a/", sealable=False, custom_metadata={}, now=0)
    assert a.ns_id != b.ns_id and a.uuid != b.uuid


def test_descendants_are_listed_parents_first() -> None:
    a, b, c, d = (bytes([i]) * 16 for i in range(1, 5))
    root = b"root"
    tree = {a: (root, True), b: (a, False), c: (b, True), d: (root, False)}
    assert descendants(tree, a) == [b, c]
    assert descendants(tree, root) in ([a, d, b, c], [d, a, b, c])
    assert descendants(tree, c) == []


async def test_purge_clears_a_deleted_subspace_in_chunks_and_is_idempotent(vault: InProcessVault) -> None:
    node = vault.node
    doomed, kept = bytes(range(16)), bytes(range(1, 17))

    async def fill(tx: Transaction) -> None:
        for ns_id in (doomed, kept):
            for i in range(10):
                tx.set(namespace(ns_id).key("m", "x", i), b"v")
        keys = await node.root.current_keys(tx)
        keys.records(tx, "sys", "ns-deleted").put_json((doomed,), {"deleted": 0})

    await transactional(node.store, fill)

    async def step(tx: Transaction) -> bool:
        return await purge_step(tx, await node.root.current_keys(tx), chunk=3)

    assert await transactional(node.store, step) is True

    async def count(tx: Transaction, ns_id: bytes) -> int:
        begin, end = namespace(ns_id).range()
        return len(await tx.range(begin, end))

    assert await transactional(node.store, lambda tx: count(tx, doomed)) == 7
    assert await purge_deleted(node.store, node.root, chunk=3) == 3  # 3 + 3 + 1 (and the tombstone goes)
    assert await transactional(node.store, lambda tx: count(tx, doomed)) == 0
    assert await transactional(node.store, lambda tx: count(tx, kept)) == 10
    assert await purge_deleted(node.store, node.root) == 0  # nothing left: a second run does nothing
