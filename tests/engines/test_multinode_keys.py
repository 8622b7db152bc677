"""Two nodes over one store: key changes made through one are honoured by the other at once."""

from __future__ import annotations

import httpx

from strongroom.api.app import VaultApp
from strongroom.core.node import Node
from tests.support.vault import InProcessVault, start_vault


async def _second_node(vault: InProcessVault) -> httpx.AsyncClient:
    node = Node(vault.node.store, clock=vault.clock)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=VaultApp(node)), base_url="http://b")
    for key in vault.keys[:2]:
        r = await client.put("/v1/sys/unseal", json={"key": key})
    assert r.json()["sealed"] is False
    return client


async def test_rotation_on_one_node_is_readable_on_the_other() -> None:
    vault = await start_vault()
    other = await _second_node(vault)
    headers = {"X-Vault-Token": vault.root_token}
    await vault.ok("POST", "sys/rotate")
    # A record written under the new term by node A (a policy) is read by node B.
    await vault.ok("PUT", "sys/policies/acl/after-rotate", json={"policy": 'path "x" { capabilities = ["read"] }'})
    r = await other.get("/v1/sys/policies/acl/after-rotate", headers=headers)
    assert r.status_code == 200, r.text
    r = await other.get("/v1/sys/key-status", headers=headers)
    assert r.json()["data"]["term"] == 2
    await other.aclose()


async def test_rekey_elsewhere_seals_a_node_with_the_old_root_key() -> None:
    vault = await start_vault()
    other = await _second_node(vault)
    headers = {"X-Vault-Token": vault.root_token}
    init = await vault.ok("PUT", "sys/rekey/init", json={"secret_shares": 1, "secret_threshold": 1})
    for key in vault.keys[:2]:
        body = await vault.ok("PUT", "sys/rekey/update", json={"key": key, "nonce": init["nonce"]})
    assert body["complete"] is True
    # Node B still holds the old root key: it must not serve, it seals itself.
    r = await other.get("/v1/sys/mounts", headers=headers)
    assert r.status_code == 503
    r = await other.get("/v1/sys/seal-status")
    assert r.json()["sealed"] is True
    r = await other.put("/v1/sys/unseal", json={"key": body["keys"][0]})
    assert r.json()["sealed"] is False
    await other.aclose()
