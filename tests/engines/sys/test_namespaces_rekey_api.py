"""Rekey inside a tenant (``sys/rekey/*`` and OpenBao's ``sys/rotate/root/*`` with ``X-Vault-Namespace``):
the platform's bodies and rules, with the progress in storage so custodians may use different nodes.

Two nodes share one memory store, as two servers share one database (see tests/core/test_tenant_seal.py).
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from strongroom.api.app import VaultApp
from strongroom.core.node import Node
from strongroom.core.rekey import KEY_VERIFICATION_FAILED
from strongroom.storage.memory import MemoryStore
from tests.support.gpg import gpg_home
from tests.support.namespaces import Namespaces, Tenant
from tests.support.vault import InProcessVault, start_vault


@pytest.fixture
async def pair() -> AsyncIterator[tuple[Namespaces, Namespaces]]:
    first = await start_vault(MemoryStore())
    node = Node(first.node.store, clock=first.clock)
    app = VaultApp(node)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://node-b.test")
    for key in first.keys[:2]:
        assert (await client.put("/v1/sys/unseal", json={"key": key})).status_code == 200
    second = InProcessVault(node, app, client, first.clock, first.keys, first.root_token)
    try:
        yield Namespaces(first), Namespaces(second)
    finally:
        await client.aclose()
        await first.client.aclose()
        await first.node.close()


async def _seal_and_unseal(ns: Namespaces, tenant: Tenant, keys: list[str]) -> dict[str, Any]:
    await ns.ok("PUT", "sys/seal", ns=tenant.path, token=tenant.root_token)
    body: dict[str, Any] = {}
    for key in keys:
        body = await ns.ok("PUT", "sys/unseal", ns=tenant.path, token=tenant.admin_token, json={"key": key})
    return body


async def test_rekey_through_two_nodes_replaces_the_shares(pair: tuple[Namespaces, Namespaces]) -> None:
    a, b = pair
    t = await a.tenant("acme")
    await a.ok("POST", "sys/mounts/kv", ns="acme", token=t.root_token, json={"type": "kv"})
    await a.ok("PUT", "kv/x", ns="acme", token=t.root_token, json={"v": "kept"})
    assert (await b.ok("GET", "sys/rekey/init", ns="acme", token=t.root_token))["started"] is False
    started = await a.ok("PUT", "sys/rekey/init", ns="acme", token=t.root_token,
                         json={"secret_shares": 2, "secret_threshold": 2})  # fmt: skip
    nonce = started["nonce"]
    seen = await b.ok("GET", "sys/rekey/init", ns="acme", token=t.root_token)
    assert (seen["started"], seen["nonce"], seen["t"], seen["n"], seen["required"]) == (True, nonce, 2, 2, 2)
    one = await b.ok("PUT", "sys/rekey/update", ns="acme", token=t.root_token, json={"key": t.keys[0], "nonce": nonce})
    assert one["progress"] == 1
    done = await a.ok("PUT", "sys/rekey/update", ns="acme", token=t.root_token, json={"key": t.keys[1], "nonce": nonce})
    assert done["complete"] is True and len(done["keys"]) == 2
    new_keys = done["keys"]
    # Both nodes serve on with the new key; the old shares no longer unseal, the new ones do.
    assert (await b.ok("GET", "kv/x", ns="acme", token=t.root_token))["data"] == {"v": "kept"}
    await a.ok("PUT", "sys/seal", ns="acme", token=t.root_token)
    status = await b.ok("GET", "sys/seal-status", ns="acme", token=t.admin_token)
    assert (status["t"], status["n"]) == (2, 2)
    await b.ok("PUT", "sys/unseal", ns="acme", token=t.admin_token, json={"key": t.keys[0]})
    await b.fails(400, "PUT", "sys/unseal", ns="acme", token=t.admin_token, json={"key": t.keys[1]})
    for key in new_keys:
        body = await a.ok("PUT", "sys/unseal", ns="acme", token=t.admin_token, json={"key": key})
    assert body["sealed"] is False
    assert (await b.ok("GET", "kv/x", ns="acme", token=t.root_token))["data"] == {"v": "kept"}


async def test_rekey_with_verification_through_openbao_paths(pair: tuple[Namespaces, Namespaces]) -> None:
    a, b = pair
    t = await a.tenant("acme")
    init = await a.ok("PUT", "sys/rotate/root/init", ns="acme", token=t.root_token,
                      json={"secret_shares": 2, "secret_threshold": 2, "require_verification": True})  # fmt: skip
    nonce = init["data"]["nonce"]
    await b.ok("PUT", "sys/rotate/root/update", ns="acme", token=t.root_token, json={"key": t.keys[2], "nonce": nonce})
    made = (await a.ok("PUT", "sys/rotate/root/update", ns="acme", token=t.root_token,
                       json={"key": t.keys[0], "nonce": nonce}))["data"]  # fmt: skip
    assert made["verification_required"] is True and made["verification_nonce"]
    vnonce = made["verification_nonce"]
    # Not committed yet: the stored configuration is still the old one (3 shares).
    assert (await b.ok("GET", "sys/namespaces/acme/seal-status"))["data"]["n"] == 3
    status = (await b.ok("GET", "sys/rotate/root/verify", ns="acme", token=t.root_token))["data"]
    assert (status["nonce"], status["started"], status["progress"]) == (vnonce, True, 0)
    await b.ok("PUT", "sys/rotate/root/verify", ns="acme", token=t.root_token, json={"key": made["keys"][1], "nonce": vnonce})
    done = (await a.ok("PUT", "sys/rotate/root/verify", ns="acme", token=t.root_token,
                       json={"key": made["keys"][0], "nonce": vnonce}))["data"]  # fmt: skip
    assert done == {"nonce": vnonce, "complete": True}
    assert (await b.ok("GET", "sys/namespaces/acme/seal-status"))["data"]["n"] == 2
    assert (await _seal_and_unseal(b, t, made["keys"][:2]))["sealed"] is False


async def test_wrong_and_duplicate_shares(pair: tuple[Namespaces, Namespaces]) -> None:
    a, b = pair
    t = await a.tenant("acme")
    other = await a.tenant("other")
    nonce = (await a.ok("PUT", "sys/rekey/init", ns="acme", token=t.root_token,
                        json={"secret_shares": 1, "secret_threshold": 1}))["nonce"]  # fmt: skip
    await a.ok("PUT", "sys/rekey/update", ns="acme", token=t.root_token, json={"key": t.keys[0], "nonce": nonce})
    errors = await b.fails(400, "PUT", "sys/rekey/update", ns="acme", token=t.root_token,
                           json={"key": t.keys[0], "nonce": nonce})  # fmt: skip
    assert errors == ["given key has already been provided during this generation operation"]
    errors = await b.fails(400, "PUT", "sys/rekey/update", ns="acme", token=t.root_token,
                           json={"key": other.keys[0], "nonce": nonce})  # fmt: skip
    assert errors == [KEY_VERIFICATION_FAILED]
    status = await a.ok("GET", "sys/rekey/init", ns="acme", token=t.root_token)
    assert (status["started"], status["nonce"], status["progress"]) == (True, nonce, 0)  # reset, same nonce
    assert await a.fails(400, "PUT", "sys/rekey/update", ns="acme", token=t.root_token,
                         json={"key": t.keys[0], "nonce": "wrong"}) == [
        f'incorrect nonce supplied; nonce for this rekey operation is "{nonce}"'
    ]  # fmt: skip
    assert await a.fails(400, "PUT", "sys/rekey/init", ns="acme", token=t.root_token,
                         json={"secret_shares": 1, "secret_threshold": 1}) == ["rekey already in progress"]  # fmt: skip
    await b.ok("DELETE", "sys/rekey/init", ns="acme", token=t.root_token)
    assert (await a.ok("GET", "sys/rekey/init", ns="acme", token=t.root_token))["started"] is False
    assert (await _seal_and_unseal(a, t, t.keys[:2]))["sealed"] is False  # nothing changed


async def test_rekey_needs_the_tenants_own_sudo_token(pair: tuple[Namespaces, Namespaces]) -> None:
    a, _ = pair
    t = await a.tenant("acme")
    body = {"secret_shares": 1, "secret_threshold": 1}
    await a.fails(403, "PUT", "sys/rekey/init", ns="acme", json=body)  # the platform's root token
    await a.fails(403, "PUT", "sys/rekey/init", ns="acme", token="", json=body)
    plain = await a.token_in("acme", t.root_token, ["default"])
    await a.fails(403, "PUT", "sys/rekey/init", ns="acme", token=plain, json=body)
    await a.ok("PUT", "sys/rekey/init", ns="acme", token=t.root_token, json=body)


async def test_rekey_with_pgp_keys_and_backup(vault: InProcessVault) -> None:
    ns = Namespaces(vault)
    t = await ns.tenant("acme")
    with gpg_home() as gpg:
        keys = [gpg.generate(f"n{i}@tenant.test") for i in range(2)]
        nonce = (await ns.ok("PUT", "sys/rekey/init", ns="acme", token=t.root_token, json={
            "secret_shares": 2, "secret_threshold": 2, "pgp_keys": [k.vault_entry for k in keys], "backup": True,
        }))["nonce"]  # fmt: skip
        for key in t.keys[:2]:
            done = await ns.ok("PUT", "sys/rekey/update", ns="acme", token=t.root_token, json={"key": key, "nonce": nonce})
        shares = [gpg.decrypt(base64.b64decode(m)).decode() for m in done["keys_base64"]]
    backup = await ns.ok("GET", "sys/rekey/backup", ns="acme", token=t.root_token)
    assert set(backup["data"]["keys"]) == {k.fingerprint.lower() for k in keys}
    assert (await _seal_and_unseal(ns, t, shares))["sealed"] is False
    await ns.ok("DELETE", "sys/rekey/backup", ns="acme", token=t.root_token)
    await ns.fails(400, "GET", "sys/rekey/backup", ns="acme", token=t.root_token)


async def test_sealing_drops_a_rekey_in_progress(pair: tuple[Namespaces, Namespaces]) -> None:
    a, b = pair
    t = await a.tenant("acme")
    nonce = (await a.ok("PUT", "sys/rekey/init", ns="acme", token=t.root_token,
                        json={"secret_shares": 1, "secret_threshold": 1}))["nonce"]  # fmt: skip
    await a.ok("PUT", "sys/rekey/update", ns="acme", token=t.root_token, json={"key": t.keys[0], "nonce": nonce})
    await b.ok("PUT", "sys/namespaces/acme/seal")
    await a.fails(503, "GET", "sys/rekey/init", ns="acme", token=t.root_token)
    await b.unseal(t)
    assert (await a.ok("GET", "sys/rekey/init", ns="acme", token=t.root_token))["started"] is False


async def test_failed_verification_starts_over_with_a_new_nonce(pair: tuple[Namespaces, Namespaces]) -> None:
    a, b = pair
    t = await a.tenant("acme")
    nonce = (await a.ok("PUT", "sys/rekey/init", ns="acme", token=t.root_token, json={
        "secret_shares": 2, "secret_threshold": 2, "require_verification": True,
    }))["nonce"]  # fmt: skip
    for key in t.keys[:2]:
        made = await a.ok("PUT", "sys/rekey/update", ns="acme", token=t.root_token, json={"key": key, "nonce": nonce})
    vnonce = made["verification_nonce"]
    await b.ok("PUT", "sys/rekey/verify", ns="acme", token=t.root_token, json={"key": made["keys"][0], "nonce": vnonce})
    errors = await a.fails(400, "PUT", "sys/rekey/verify", ns="acme", token=t.root_token,
                           json={"key": t.keys[2], "nonce": vnonce})  # fmt: skip
    assert errors == ["rekey verification failed; incorrect key shares supplied"]
    status = await b.ok("GET", "sys/rekey/verify", ns="acme", token=t.root_token)
    assert status["progress"] == 0 and status["nonce"] != vnonce
    for key in made["keys"]:
        done = await b.ok("PUT", "sys/rekey/verify", ns="acme", token=t.root_token,
                          json={"key": key, "nonce": status["nonce"]})  # fmt: skip
    assert done == {"nonce": status["nonce"], "complete": True}
    assert (await _seal_and_unseal(a, t, made["keys"]))["sealed"] is False


async def test_generate_root_in_a_tenant_through_two_nodes(pair: tuple[Namespaces, Namespaces]) -> None:
    a, b = pair
    t = await a.tenant("acme")
    started = await a.ok("PUT", "sys/generate-root/attempt", ns="acme", token=t.admin_token, json={})
    otp, nonce = started["otp"], started["nonce"]
    assert started["started"] and len(otp) == started["otp_length"] == 28
    seen = await b.ok("GET", "sys/generate-root/attempt", ns="acme", token=t.admin_token)
    assert (seen["nonce"], seen["otp"], seen["required"]) == (nonce, "", 2)
    one = await b.ok("PUT", "sys/generate-root/update", ns="acme", token=t.admin_token, json={"key": t.keys[1], "nonce": nonce})
    assert (one["progress"], one["complete"]) == (1, False)
    errors = await a.fails(400, "PUT", "sys/generate-root/update", ns="acme", token=t.admin_token,
                           json={"key": t.keys[1], "nonce": nonce})  # fmt: skip
    assert errors == ["given key has already been provided during this generation operation"]
    done = await a.ok("PUT", "sys/generate-root/update", ns="acme", token=t.admin_token, json={"key": t.keys[2], "nonce": nonce})
    assert done["complete"] is True
    token = (await a.ok("PUT", "sys/decode-token", ns="acme", token=t.root_token,
                        json={"encoded_token": done["encoded_token"], "otp": otp}))["data"]["token"]  # fmt: skip
    me = (await b.ok("GET", "auth/token/lookup-self", ns="acme", token=token))["data"]
    assert me["policies"] == ["root"]
    await b.fails(403, "GET", "sys/mounts", token=token)  # a tenant token: nothing in the platform
    assert (await a.ok("GET", "sys/generate-root/attempt", ns="acme", token=t.admin_token))["started"] is False


async def test_generate_root_wrong_shares_and_cancel(pair: tuple[Namespaces, Namespaces]) -> None:
    a, b = pair
    t = await a.tenant("acme")
    other = await a.tenant("other")
    nonce = (await a.ok("PUT", "sys/generate-root/attempt", ns="acme", token=t.admin_token, json={}))["nonce"]
    await a.ok("PUT", "sys/generate-root/update", ns="acme", token=t.admin_token, json={"key": other.keys[0], "nonce": nonce})
    errors = await b.fails(400, "PUT", "sys/generate-root/update", ns="acme", token=t.admin_token,
                           json={"key": other.keys[1], "nonce": nonce})  # fmt: skip
    assert errors == [f"root generation aborted: {KEY_VERIFICATION_FAILED}"]
    status = await a.ok("GET", "sys/generate-root/attempt", ns="acme", token=t.admin_token)
    assert (status["started"], status["nonce"], status["progress"]) == (True, nonce, 0)
    await a.fails(400, "PUT", "sys/generate-root/attempt", ns="acme", token=t.admin_token, json={})  # already running
    await b.call("DELETE", "sys/generate-root/attempt", ns="acme", token=t.admin_token)
    assert (await a.ok("GET", "sys/generate-root/attempt", ns="acme", token=t.admin_token))["started"] is False
    # Sealing drops a generation in progress.
    await a.ok("PUT", "sys/generate-root/attempt", ns="acme", token=t.admin_token, json={})
    await a.ok("PUT", "sys/seal", ns="acme", token=t.root_token)
    await b.unseal(t)
    assert (await a.ok("GET", "sys/generate-root/attempt", ns="acme", token=t.admin_token))["started"] is False


async def test_generate_root_with_pgp_through_openbao_paths(vault: InProcessVault) -> None:
    ns = Namespaces(vault)
    t = await ns.tenant("acme")
    with gpg_home() as gpg:
        key = gpg.generate("admin@tenant.test")
        started = (await ns.ok("PUT", "sys/generate-root-token/attempt", ns="acme", token=t.admin_token,
                               json={"pgp_key": key.vault_entry}))["data"]  # fmt: skip
        assert started["pgp_fingerprint"] == key.fingerprint.lower()
        for share in t.keys[:2]:
            body = (await ns.ok("PUT", "sys/generate-root-token/update", ns="acme", token=t.admin_token,
                                json={"key": share, "nonce": started["nonce"]}))["data"]  # fmt: skip
        token = gpg.decrypt(base64.b64decode(body["encoded_token"])).decode()
    assert (await ns.ok("GET", "auth/token/lookup-self", ns="acme", token=token))["data"]["policies"] == ["root"]
