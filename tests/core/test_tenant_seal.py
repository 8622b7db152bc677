"""core/tenant_seal.py: a tenant's seal lives in storage, so two nodes over one store agree at once.

Two :class:`Node` objects share one memory store here (as two servers share one database); each has its
own caches. The ceremony's shares go through different nodes, the key copy is encrypted under the
platform keyring, and a seal on one node stops the other at its next request.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest

from strongroom.api.app import VaultApp
from strongroom.core.namespaces import NamespaceEntry, NamespaceTable
from strongroom.core.node import Node, NodeSettings
from strongroom.core.tenant_seal import DUPLICATE_SHARE, UNSEAL_FAILED, TenantVault
from strongroom.errors import InvalidRequest, InvalidShare, NotInitialized, Sealed
from strongroom.storage.base import Transaction, transactional
from strongroom.storage.memory import MemoryStore
from tests.support.namespaces import Namespaces
from tests.support.vault import InProcessVault, start_vault


@dataclass
class Pair:
    a: Namespaces
    b: Namespaces


async def _second_node(first: InProcessVault, settings: NodeSettings | None = None) -> InProcessVault:
    """Another node over ``first``'s store, its platform unsealed with the same shares."""
    node = Node(first.node.store, clock=first.clock, settings=settings)
    app = VaultApp(node)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://node-b.test")
    for key in first.keys[:2]:
        r = await client.put("/v1/sys/unseal", json={"key": key})
        assert r.status_code == 200, r.text
    return InProcessVault(node, app, client, first.clock, first.keys, first.root_token)


@pytest.fixture
async def pair() -> AsyncIterator[Pair]:
    settings = NodeSettings(unseal_expiry_seconds=600)
    first = await start_vault(MemoryStore(), settings=settings)
    second = await _second_node(first, settings)
    try:
        yield Pair(Namespaces(first), Namespaces(second))
    finally:
        for v in (first, second):
            await v.client.aclose()
        await first.node.close()


async def test_shares_may_arrive_through_different_nodes(pair: Pair) -> None:
    t = await pair.a.tenant("acme", unseal=False)
    one = await pair.a.ok("PUT", "sys/unseal", ns="acme/", token=t.admin_token, json={"key": t.keys[0]})
    assert one["sealed"] is True and one["progress"] == 1 and one["nonce"]
    status = await pair.b.ok("GET", "sys/seal-status", ns="acme", token=t.admin_token)
    assert (status["progress"], status["nonce"]) == (1, one["nonce"])
    two = await pair.b.ok("PUT", "sys/unseal", ns="acme", token=t.admin_token, json={"key": t.keys[2]})
    assert two["sealed"] is False and two["progress"] == 0 and two["nonce"] == ""
    t.root_token = await pair.a.generate_root(t)
    for side in (pair.a, pair.b):
        assert (await side.ok("GET", "sys/mounts", ns="acme", token=t.root_token))["sys/"]["type"] == "system"


async def test_a_seal_on_one_node_stops_the_other_at_its_next_request(pair: Pair) -> None:
    t = await pair.a.tenant("acme")
    await pair.b.ok("POST", "sys/mounts/kv", ns="acme", token=t.root_token, json={"type": "kv"})
    await pair.b.ok("PUT", "kv/x", ns="acme", token=t.root_token, json={"v": "1"})
    tenant_b = pair.b.vault.node.namespaces.vault("acme/")
    assert isinstance(tenant_b, TenantVault) and not tenant_b.sealed
    await pair.a.ok("PUT", "sys/seal", ns="acme", token=t.root_token)
    errors = await pair.b.fails(503, "GET", "kv/x", ns="acme", token=t.root_token)
    assert errors == ["Vault is sealed"]
    assert tenant_b.sealed  # node B dropped its copy of the keys when it found no key copy
    assert (await pair.b.ok("GET", "sys/seal-status", ns="acme", token=t.admin_token))["sealed"] is True


async def test_unseal_progress_expires_with_the_configured_expiry(pair: Pair) -> None:
    t = await pair.a.tenant("acme", unseal=False)
    await pair.a.ok("PUT", "sys/unseal", ns="acme", token=t.admin_token, json={"key": t.keys[0]})
    pair.a.vault.clock.advance(601)
    status = await pair.b.ok("GET", "sys/seal-status", ns="acme", token=t.admin_token)
    assert (status["progress"], status["nonce"]) == (0, "")
    # The expired share is gone: one new share is progress 1, not an unseal.
    body = await pair.b.ok("PUT", "sys/unseal", ns="acme", token=t.admin_token, json={"key": t.keys[1]})
    assert body["sealed"] is True and body["progress"] == 1


async def test_duplicate_share_is_refused_and_changes_nothing(pair: Pair) -> None:
    t = await pair.a.tenant("acme", unseal=False)
    first = await pair.a.ok("PUT", "sys/unseal", ns="acme", token=t.admin_token, json={"key": t.keys[0]})
    errors = await pair.b.fails(400, "PUT", "sys/unseal", ns="acme", token=t.admin_token, json={"key": t.keys[0]})
    assert errors == [DUPLICATE_SHARE]
    # Same share, other encoding: still the same share.
    b64 = (await pair.a.ok("GET", "sys/seal-status", ns="acme", token=t.admin_token))
    assert (b64["progress"], b64["nonce"]) == (1, first["nonce"])


async def test_shares_of_another_tenant_fail_and_reset_the_progress(pair: Pair) -> None:
    acme = await pair.a.tenant("acme", unseal=False)
    other = await pair.a.tenant("other", unseal=False)
    await pair.a.ok("PUT", "sys/unseal", ns="acme", token=acme.admin_token, json={"key": other.keys[0]})
    errors = await pair.b.fails(400, "PUT", "sys/unseal", ns="acme", token=acme.admin_token, json={"key": other.keys[1]})
    assert errors == [UNSEAL_FAILED]
    status = await pair.a.ok("GET", "sys/seal-status", ns="acme", token=acme.admin_token)
    assert (status["sealed"], status["progress"], status["nonce"]) == (True, 0, "")
    # Mixed shares (one of each) fail the same way; the right ones still work afterwards.
    await pair.a.ok("PUT", "sys/unseal", ns="acme", token=acme.admin_token, json={"key": acme.keys[0]})
    await pair.a.fails(400, "PUT", "sys/unseal", ns="acme", token=acme.admin_token, json={"key": other.keys[2]})
    await pair.a.unseal(acme)


async def test_unseal_of_an_uninitialised_tenant(pair: Pair) -> None:
    await pair.a.ok("POST", "sys/namespaces/fresh", json={"seal": 'seal "shamir" {}', "initialize": False})
    admin = await pair.a.admin("fresh")
    status = await pair.a.ok("GET", "sys/seal-status", ns="fresh", token=admin)
    assert (status["initialized"], status["sealed"], status["t"], status["n"]) == (False, True, 0, 0)
    errors = await pair.a.fails(400, "PUT", "sys/unseal", ns="fresh", token=admin, json={"key": "ab" * 33})
    assert errors == ["Vault is not initialized"]


async def test_the_key_copy_is_the_tenant_root_key_under_the_platform_barrier(pair: Pair) -> None:
    await pair.a.tenant("acme")
    node = pair.a.vault.node
    tenant = node.namespaces.vault("acme/")
    assert isinstance(tenant, TenantVault) and tenant.keys is not None
    root_key = tenant.keys.root_key.reveal()

    async def dump(tx: Transaction) -> list[tuple[bytes, bytes]]:
        return await tx.range(b"", b"\xff")

    rows = await transactional(node.store, dump)
    assert not any(root_key in value or root_key in key for key, value in rows)
    assert not any(b"acme" in key or b"acme" in value for key, value in rows)


async def test_core_errors(pair: Pair) -> None:
    t = await pair.a.tenant("acme", unseal=False)
    tenant = await _tenant(pair.a, "acme/")
    with pytest.raises(InvalidRequest):
        await tenant.submit_unseal("")
    with pytest.raises(InvalidShare):
        await tenant.submit_unseal("ab" * 20)  # 20 bytes: not a 33-byte share
    await tenant.submit_unseal(t.keys[0])
    with pytest.raises(InvalidRequest):
        await tenant.submit_unseal(t.keys[0])
    await tenant.submit_unseal(t.keys[1])
    assert not tenant.sealed
    with pytest.raises(InvalidRequest):
        await tenant.submit_unseal(None, reset=True)  # unsealed: nothing to reset
    await tenant.seal_node()

    async def use(tx: Transaction) -> None:
        await tenant.current_keys(tx)

    with pytest.raises(Sealed):
        await transactional(tenant.store, use)
    fresh = await pair.a.plain("p")  # a plain namespace is no tenant: nothing here applies
    assert fresh["path"] == "p/"
    await pair.a.ok("POST", "sys/namespaces/u", json={"seal": 'seal "shamir" {}', "initialize": False})
    with pytest.raises(NotInitialized):
        await (await _tenant(pair.a, "u/")).submit_unseal("ab" * 33)


async def _tenant(ns: Namespaces, path: str) -> TenantVault:
    """This node's vault of the top-level tenant at ``path``."""
    node = ns.vault.node

    async def read(tx: Transaction) -> list[NamespaceEntry]:
        return await NamespaceTable(tx, await node.root.current_keys(tx)).entries()

    entry = next(e for e in await transactional(node.store, read) if e.path == path)
    return node.namespaces.tenant(entry)
