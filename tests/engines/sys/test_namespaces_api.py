"""sys/namespaces in process: create, read, LIST, patch, delete, addressing by header and path prefix,
the API lock, mount conflicts and bad names (each a clear 4xx that changes nothing)."""

from __future__ import annotations

import pytest

from strongroom.core.namespace_purge import pending_purges
from strongroom.core.namespaces import NamespaceEntry, NamespaceTable
from strongroom.storage.base import Transaction, transactional
from strongroom.storage.subspace import namespace
from tests.support.namespaces import Namespaces
from tests.support.vault import InProcessVault

WIRE_KEYS = {"uuid", "id", "path", "tainted", "locked", "custom_metadata"}


@pytest.fixture
def ns(vault: InProcessVault) -> Namespaces:
    return Namespaces(vault)


async def test_create_read_list_patch(ns: Namespaces) -> None:
    data = await ns.plain("team", custom_metadata={"owner": "alice", "tier": "1"})
    assert set(data) == WIRE_KEYS
    assert (data["path"], data["tainted"], data["locked"]) == ("team/", False, False)
    assert data["custom_metadata"] == {"owner": "alice", "tier": "1"}
    assert (await ns.ok("GET", "sys/namespaces/team"))["data"] == data
    await ns.plain("alpha")
    listed = (await ns.ok("LIST", "sys/namespaces"))["data"]
    assert listed["keys"] == ["alpha/", "team/"]
    assert listed["key_info"]["team/"] == data
    patched = await ns.ok(
        "PATCH", "sys/namespaces/team", json={"custom_metadata": {"tier": None, "env": "prod"}},
        headers={"Content-Type": "application/merge-patch+json"},
    )  # fmt: skip
    assert patched["data"]["custom_metadata"] == {"owner": "alice", "env": "prod"}
    # PUT on an existing namespace replaces its metadata (absent = none), keeping its identity.
    again = (await ns.ok("PUT", "sys/namespaces/team", json={}))["data"]
    assert again["custom_metadata"] == {} and again["uuid"] == data["uuid"] and again["id"] == data["id"]


async def test_nested_namespaces_by_header_and_by_path_prefix(ns: Namespaces) -> None:
    await ns.plain("a")
    by_header = await ns.plain("b", ns="a")
    assert by_header["path"] == "a/b/"
    by_prefix = (await ns.ok("POST", "a/sys/namespaces/c"))["data"]
    assert by_prefix["path"] == "a/c/"
    deep = (await ns.ok("POST", "b/sys/namespaces/d", ns="a"))["data"]  # header + path prefix combine
    assert deep["path"] == "a/b/d/"
    assert (await ns.ok("LIST", "sys/namespaces", ns="a"))["data"]["keys"] == ["b/", "c/"]
    assert (await ns.ok("LIST", "a/b/sys/namespaces"))["data"]["keys"] == ["d/"]
    assert (await ns.ok("GET", "sys/namespaces/d", ns="a/b/"))["data"]["path"] == "a/b/d/"
    await ns.fails(404, "LIST", "sys/namespaces", ns="a/b/d")
    await ns.fails(400, "GET", "sys/namespaces/b/d", ns="a")  # one segment per call, as OpenBao


async def test_each_namespace_has_its_own_mounts_policies_and_data(ns: Namespaces) -> None:
    await ns.plain("a")
    await ns.plain("b")
    mounts = await ns.ok("GET", "sys/mounts", ns="a")
    assert set(mounts["data"]) == {"sys/"}
    assert set((await ns.ok("GET", "sys/auth", ns="a"))["data"]) == {"token/"}
    await ns.ok("POST", "sys/mounts/kv", ns="a", json={"type": "kv", "options": {"version": "2"}})
    await ns.ok("POST", "kv/data/s", ns="a", json={"data": {"v": "in-a"}})
    await ns.fails(404, "GET", "kv/data/s", ns="b")
    await ns.ok("POST", "sys/mounts/kv", ns="b", json={"type": "kv", "options": {"version": "2"}})
    await ns.fails(404, "GET", "kv/data/s", ns="b")
    assert (await ns.ok("GET", "a/kv/data/s"))["data"]["data"] == {"v": "in-a"}
    await ns.ok("PUT", "sys/policies/acl/only-a", ns="a", json={"policy": 'path "kv/*" { capabilities = ["read"] }'})
    assert "only-a" in (await ns.ok("LIST", "sys/policies/acl", ns="a"))["data"]["keys"]
    assert "only-a" not in (await ns.ok("LIST", "sys/policies/acl", ns="b"))["data"]["keys"]
    assert "only-a" not in (await ns.ok("LIST", "sys/policies/acl"))["data"]["keys"]


async def test_a_mount_wins_over_a_namespace_and_names_cannot_collide(ns: Namespaces) -> None:
    await ns.ok("POST", "sys/mounts/shared", json={"type": "kv"})
    errors = await ns.fails(400, "POST", "sys/namespaces/shared")
    assert errors == ["new namespace conflicts with existing mount: shared/"]
    await ns.plain("team")
    errors = await ns.fails(400, "POST", "sys/mounts/team", json={"type": "kv"})
    assert "team" in errors[0]
    errors = await ns.fails(400, "POST", "sys/mounts/team/deep", json={"type": "kv"})
    assert "team" in errors[0]


async def test_unknown_namespace_answers_like_a_sealed_tenant(ns: Namespaces) -> None:
    assert await ns.fails(503, "GET", "sys/mounts", ns="nope") == ["Vault is sealed"]
    assert await ns.fails(503, "GET", "sys/mounts", ns="nope", token="") == ["Vault is sealed"]
    # The ceremonies need the tenant's Administrator biscuit: the same 403 as for an existing tenant.
    await ns.fails(403, "GET", "sys/seal-status", ns="nope", token="")
    await ns.fails(403, "PUT", "sys/init", ns="nope", token="", json={"secret_shares": 1, "secret_threshold": 1})
    await ns.fails(403, "PUT", "sys/unseal", ns="nope", token="", json={"key": "ab" * 33})
    # A path prefix that names no namespace is an ordinary path of the root namespace.
    await ns.fails(404, "GET", "nope/secret/x")
    await ns.fails(403, "GET", "nope/secret/x", token="")
    # Header names with bad segments are unknown namespaces too (nothing is looked up).
    for bad in ("a//b", "..", "sys", "x" * 65):
        await ns.fails(503, "GET", "sys/mounts", ns=bad)


async def test_root_header_is_the_root_namespace(ns: Namespaces) -> None:
    for header in ("root", "/", "root/"):
        assert "sys/" in (await ns.ok("GET", "sys/mounts", ns=header))["data"]


async def test_delete(ns: Namespaces, vault: InProcessVault) -> None:
    data = await ns.plain("gone")
    old_id = (await _entry(vault, "gone")).ns_id
    await ns.ok("POST", "sys/mounts/kv", ns="gone", json={"type": "kv"})
    await ns.ok("PUT", "kv/x", ns="gone", json={"v": "1"})
    body = await ns.ok("DELETE", "sys/namespaces/gone")
    assert body["data"] == {"status": "in-progress"}
    await pending_purges()
    await ns.fails(404, "GET", "sys/namespaces/gone")
    missing = await ns.ok("DELETE", "sys/namespaces/gone")
    assert missing["data"] is None and missing["warnings"] == ["requested namespace does not exist"]
    # Re-created under the same name: a new id, none of the old data.
    again = await ns.plain("gone")
    assert again["uuid"] != data["uuid"]
    assert (await _entry(vault, "gone")).ns_id != old_id
    await ns.fails(404, "GET", "kv/x", ns="gone")  # no kv mount in the new namespace
    await _assert_purged(vault, old_id)


async def test_delete_refuses_a_namespace_with_children(ns: Namespaces) -> None:
    await ns.plain("parent")
    await ns.plain("child", ns="parent")
    errors = await ns.fails(400, "DELETE", "sys/namespaces/parent")
    assert errors == ["unable to delete namespace containing child namespaces"]
    assert (await ns.ok("GET", "sys/namespaces/child", ns="parent"))["data"]["path"] == "parent/child/"
    await ns.ok("DELETE", "sys/namespaces/child", ns="parent")
    await ns.ok("DELETE", "sys/namespaces/parent")


async def test_api_lock(ns: Namespaces) -> None:
    await ns.plain("p")
    await ns.plain("c", ns="p")
    key = (await ns.ok("PUT", "sys/namespaces/api-lock/lock/p"))["data"]["unlock_key"]
    assert len(key) == 24
    assert (await ns.ok("GET", "sys/namespaces/p"))["data"]["locked"] is True
    message = 'API access to this namespace has been locked by an administrator - "p/" must be unlocked to gain access.'
    assert await ns.fails(503, "GET", "sys/mounts", ns="p") == [message]
    assert await ns.fails(503, "GET", "sys/mounts", ns="p/c") == [message]
    assert await ns.fails(503, "GET", "p/c/sys/mounts") == [message]
    assert await ns.fails(400, "PUT", "sys/namespaces/api-lock/lock/p") == [
        'cannot lock namespace "p/": is already locked'
    ]
    assert await ns.fails(400, "PUT", "sys/namespaces/api-lock/lock/p/c") == [
        'cannot lock namespace "p/c/": ancestor namespace "p/" is already locked'
    ]
    assert await ns.fails(400, "PUT", "sys/namespaces/api-lock/unlock/p", json={"unlock_key": "wrong"}) == [
        "incorrect unlock key"
    ]
    assert await ns.fails(400, "PUT", "sys/namespaces/api-lock/unlock/p/c", json={"unlock_key": key}) == [
        'namespace "p/c/" is not locked'
    ]
    # The unlock path is the one path a locked namespace still serves.
    assert await ns.call("PUT", "sys/namespaces/api-lock/unlock", ns="p", json={"unlock_key": key}) is not None
    assert (await ns.ok("GET", "sys/namespaces/p"))["data"]["locked"] is False
    await ns.ok("GET", "sys/mounts", ns="p/c")
    # Locking the header's own namespace; a sudo token unlocks without the key (with a warning).
    await ns.ok("PUT", "sys/namespaces/api-lock/lock", ns="p")
    body = await ns.ok("PUT", "sys/namespaces/api-lock/unlock/p", json={})
    assert body["warnings"] == ["Namespace unlocked using sudo capabilities"]
    assert await ns.fails(400, "PUT", "sys/namespaces/api-lock/lock") == ["root namespace cannot be locked/unlocked"]
    assert await ns.fails(400, "PUT", "sys/namespaces/api-lock/lock/nope") == ["requested namespace does not exist"]
    assert await ns.fails(400, "PUT", "sys/namespaces/api-lock/unlock/p", json={"unlock_key": key}) == [
        'namespace "p/" is not locked'
    ]


async def test_unlock_without_key_needs_sudo(ns: Namespaces) -> None:
    await ns.plain("p")
    await ns.ok("PUT", "sys/namespaces/api-lock/lock/p")
    await ns.ok(
        "PUT", "sys/policies/acl/locker",
        json={"policy": 'path "sys/namespaces/api-lock/*" { capabilities = ["update"] }'},
    )  # fmt: skip
    token = await ns.vault.token(["locker"])
    assert await ns.fails(400, "PUT", "sys/namespaces/api-lock/unlock/p", token=token, json={}) == [
        "provided empty key"
    ]


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("sys", '"sys/" is a reserved path and cannot be used as a namespace name'),
        ("root", '"root/" is a reserved path and cannot be used as a namespace name'),
        ("x" * 65, "is longer than 64 bytes"),
        ("a%20b", '"a b" contains space characters'),
        ("a%01b", "contains unicode characters"),
        ("a%2Bb", "contains wildcard characters"),
    ],
)
async def test_bad_names_are_400_and_create_nothing(ns: Namespaces, name: str, message: str) -> None:
    errors = await ns.fails(400, "POST", f"sys/namespaces/{name}")
    assert message in errors[0]
    await ns.fails(404, "LIST", "sys/namespaces")


async def test_bad_bodies(ns: Namespaces) -> None:
    assert await ns.fails(400, "POST", "sys/namespaces/a", json={"custom_metadata": {"n": 1}}) == [
        "custom_metadata values must be strings"
    ]
    await ns.plain("a")
    assert await ns.fails(
        400, "PATCH", "sys/namespaces/a", json={"custom_metadata": {"n": 1}},
        headers={"Content-Type": "application/merge-patch+json"},
    ) == ["metadata patch can only have string or null values, got json.Number"]  # fmt: skip
    assert await ns.fails(
        400, "PATCH", "sys/namespaces/none", json={"custom_metadata": {}},
        headers={"Content-Type": "application/merge-patch+json"},
    ) == ["namespace not found"]  # fmt: skip
    assert await ns.fails(400, "POST", "sys/namespaces/a", json={"seal": 'seal "shamir" { shares = 3 threshold = 2 }'}) == [
        "cannot modify existing namespace seal config"
    ]
    await ns.fails(404, "GET", "sys/namespaces/none")


async def _entry(vault: InProcessVault, name: str) -> NamespaceEntry:
    """The root namespace's table entry of child ``name``."""

    async def read(tx: Transaction) -> NamespaceEntry | None:
        return await NamespaceTable(tx, await vault.node.root.current_keys(tx)).get(name)

    entry = await transactional(vault.node.store, read)
    assert entry is not None
    return entry


async def _assert_purged(vault: InProcessVault, ns_id: bytes) -> None:
    """No tombstone and no registry record is left, and the namespace's subspace is empty."""

    async def read(tx: Transaction) -> tuple[int, bool, int]:
        keys = await vault.node.root.current_keys(tx)
        tombstones = len(await keys.records(tx, "sys", "ns-deleted").range())
        registered = await keys.records(tx, "sys", "ns-registry").exists(ns_id)
        begin, end = namespace(ns_id).range()
        return tombstones, registered, len(await tx.range(begin, end))

    assert await transactional(vault.node.store, read) == (0, False, 0)
