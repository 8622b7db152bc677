"""Regression tests for problems found by the security review of the core server."""

from __future__ import annotations

import time

from strongroom.core.vault import Vault
from tests.support.vault import InProcessVault

DENY_ADMIN = """
path "sys/policies/acl/*" { capabilities = ["read", "delete", "list"] }
path "sys/policies/acl/admin" { capabilities = ["deny"] }
"""


async def test_trailing_slash_does_not_reach_a_denied_exact_path(vault: InProcessVault) -> None:
    await vault.ok("PUT", "sys/policies/acl/admin", json={"policy": 'path "x" { capabilities = ["read"] }'})
    await vault.ok("PUT", "sys/policies/acl/limited", json={"policy": DENY_ADMIN})
    token = await vault.token(["limited"])
    assert (await vault.call("GET", "sys/policies/acl/admin", token=token)).status_code == 403
    r = await vault.call("GET", "sys/policies/acl/admin/", token=token)
    assert r.status_code == 404
    r = await vault.call("DELETE", "sys/policies/acl/admin/", token=token)
    assert r.status_code in (403, 404)
    assert (await vault.call("GET", "sys/policies/acl/admin")).status_code == 200  # still there
    # LIST keeps working with the slash.
    assert (await vault.call("LIST", "sys/policies/acl", token=token)).status_code == 200


async def test_many_form_fields_are_refused_quickly(vault: InProcessVault) -> None:
    body = ("a=&" * 200_000 + "a=").encode()
    started = time.process_time()
    r = await vault.client.post("/v1/sys/unseal", content=body,
                                headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 400
    # Not a timing assertion on the product: a guard that the test itself did not hang for minutes.
    assert time.process_time() - started < 60
    r = await vault.call("GET", "sys/health?" + "&".join(["x=1"] * 2000), token="")
    assert r.status_code == 400


async def test_repeated_form_fields_are_joined(vault: InProcessVault) -> None:
    r = await vault.client.post("/v1/sys/capabilities-self", content=b"paths=a&paths=b",
                                headers={**vault.headers(), "Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 200
    assert set(r.json()["data"]) >= {"a", "b"}


async def test_huge_numbers_and_deep_nesting_are_client_errors(vault: InProcessVault) -> None:
    assert (await vault.call("GET", "sys/health?activecode=" + "9" * 5000, token="")).status_code == 400
    r = await vault.call("POST", "auth/token/create", json={"num_uses": "9" * 5000})
    assert r.status_code == 400
    r = await vault.call("POST", "auth/token/create", json={"ttl": "9" * 40 + "h"})
    assert r.status_code == 400
    r = await vault.call("POST", "sys/mounts/y", json={"type": "kv", "config": {"max_lease_ttl": "9" * 400 + "s"}})
    assert r.status_code == 400
    r = await vault.call("PUT", "sys/policies/acl/deep", json={"policy": '{"path":' * 3000})
    assert r.status_code == 400


async def test_policy_parameters_apply_to_rekey(vault: InProcessVault) -> None:
    policy = """
    path "sys/rekey/init" {
      capabilities = ["update", "read", "sudo"]
      denied_parameters = { "pgp_keys" = [] "backup" = [] }
    }
    """
    await vault.ok("PUT", "sys/policies/acl/rekeyer", json={"policy": policy})
    token = await vault.token(["rekeyer"])
    r = await vault.call("PUT", "sys/rekey/init", token=token,
                         json={"secret_shares": 1, "secret_threshold": 1, "backup": True})
    assert r.status_code == 403
    r = await vault.call("PUT", "sys/rekey/init", token=token, json={"secret_shares": 5, "secret_threshold": 3})
    assert r.status_code == 200


async def test_limited_use_tokens_pay_for_failed_and_system_requests(vault: InProcessVault) -> None:
    await vault.ok("PUT", "sys/policies/acl/reader", json={"policy": 'path "secret/*" { capabilities = ["read"] }'})
    await vault.ok("POST", "sys/mounts/secret", json={"type": "kv", "options": {"version": "2"}})
    token = await vault.token(["reader"], num_uses=2)
    assert (await vault.call("GET", "secret/data/missing", token=token)).status_code == 404
    assert (await vault.call("GET", "secret/data/missing", token=token)).status_code == 404
    assert (await vault.call("GET", "secret/data/missing", token=token)).status_code == 403  # used up
    sudo = await vault.token(["root"], num_uses=1)
    assert (await vault.call("GET", "sys/rekey/init", token=sudo)).status_code == 200
    assert (await vault.call("GET", "sys/rekey/init", token=sudo)).status_code == 403


async def test_replacing_a_policy_always_takes_effect(vault: InProcessVault) -> None:
    await vault.ok("POST", "sys/mounts/secret", json={"type": "kv", "options": {"version": "2"}})
    await vault.ok("POST", "secret/data/x", json={"data": {"a": 1}})
    token = await vault.token(["p"])
    for _ in range(200):
        await vault.ok("PUT", "sys/policy/p", json={"policy": 'path "secret/*" { capabilities = ["read"] }'})
        assert (await vault.call("GET", "secret/data/x", token=token)).status_code == 200
        await vault.ok("DELETE", "sys/policy/p")
        await vault.call("GET", "sys/policy/p")
        await vault.ok("PUT", "sys/policy/p", json={"policy": 'path "secret/*" { capabilities = ["deny"] }'})
        assert (await vault.call("GET", "secret/data/x", token=token)).status_code == 403


async def test_seal_drops_a_rekey_in_progress(vault: InProcessVault) -> None:
    init = await vault.ok("PUT", "sys/rekey/init", json={"secret_shares": 3, "secret_threshold": 2,
                                                         "require_verification": True})
    for key in vault.keys[:2]:
        await vault.ok("PUT", "sys/rekey/update", json={"key": key, "nonce": init["nonce"]})
    assert (await vault.ok("GET", "sys/rekey/verify"))["started"] is True  # the new key awaits verification
    await vault.ok("PUT", "sys/seal")
    for key in vault.keys[:2]:
        await vault.ok("PUT", "sys/unseal", "", json={"key": key})
    # The attempt (in storage, holding the new key) went with the seal; the old shares still unsealed.
    assert (await vault.ok("GET", "sys/rekey/init"))["started"] is False


async def test_a_stale_node_crossing_the_threshold_does_not_overwrite_a_rekey(vault: InProcessVault) -> None:
    stale = vault.node.root.keys
    assert stale is not None
    init = await vault.ok("PUT", "sys/rekey/init", json={"secret_shares": 1, "secret_threshold": 1})
    for key in vault.keys[:2]:
        done = await vault.ok("PUT", "sys/rekey/update", json={"key": key, "nonce": init["nonce"]})
    new_key = done["keys"][0]
    budget = vault.node.root.budget
    budget.threshold = 0
    assert await budget.reserve(stale) is None  # refuses to rotate a keyring it no longer serves
    fresh = Vault(vault.node.store, vault.clock)
    await fresh.submit_unseal(new_key)
    assert not fresh.sealed
