"""sys/init, sys/seal-status, sys/unseal, sys/health, sys/leader, sys/seal and sys/step-down in process."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from strongroom.api.app import VaultApp
from strongroom.clock import FakeClock
from strongroom.core.node import Node
from strongroom.storage.memory import MemoryStore
from tests.support.gpg import gpg_home
from tests.support.vault import InProcessVault

SEAL_STATUS_KEYS = {
    "type",
    "initialized",
    "sealed",
    "t",
    "n",
    "progress",
    "nonce",
    "recovery_seal",
    "version",
    "build_date",
    "commit_date",
    "migration",
    "storage_type",
}
HEALTH_KEYS = {
    "initialized",
    "sealed",
    "standby",
    "performance_standby",
    "replication_performance_mode",
    "replication_dr_mode",
    "server_time_utc",
    "version",
    "enterprise",
    "echo_duration_ms",
    "clock_skew_ms",
    "replication_primary_canary_age_ms",
}


@pytest.fixture
async def fresh() -> AsyncIterator[httpx.AsyncClient]:
    """An uninitialised node."""
    node = Node(MemoryStore(), clock=FakeClock())
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=VaultApp(node)), base_url="http://sr.test")
    try:
        yield client
    finally:
        await client.aclose()
        await node.close()


async def _init(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    r = await client.put("/v1/sys/init", json={"secret_shares": 3, "secret_threshold": 2, **body})
    assert r.status_code == 200, r.text
    result: dict[str, Any] = r.json()
    return result


async def test_uninitialised_shapes(fresh: httpx.AsyncClient) -> None:
    assert (await fresh.get("/v1/sys/init")).json() == {"initialized": False}
    status = (await fresh.get("/v1/sys/seal-status")).json()
    assert set(status) == SEAL_STATUS_KEYS
    assert (status["initialized"], status["sealed"], status["t"], status["n"]) == (False, True, 0, 0)
    r = await fresh.get("/v1/sys/health")
    assert r.status_code == 501 and set(r.json()) == HEALTH_KEYS
    assert r.json()["standby"] is True and r.json()["replication_dr_mode"] == "unknown"
    assert (await fresh.get("/v1/sys/health", params={"uninitcode": "200"})).status_code == 200
    r = await fresh.put("/v1/sys/unseal", json={})
    assert r.json() == {"errors": ["'key' must be specified in request body as JSON, or 'reset' set to true"]}
    r = await fresh.put("/v1/sys/unseal", json={"key": "00" * 33})
    assert (r.status_code, r.json()) == (400, {"errors": ["Vault is not initialized"]})
    assert (await fresh.put("/v1/sys/unseal", json={"reset": True})).status_code == 200
    assert (await fresh.put("/v1/sys/seal")).status_code == 204
    assert (await fresh.put("/v1/sys/step-down")).status_code == 204


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "invalid seal configuration: shares must be at least one"),
        (
            {"secret_shares": 3, "secret_threshold": 1},
            "invalid seal configuration: threshold must be greater than one for multiple shares",
        ),
        (
            {"secret_shares": 1, "secret_threshold": 2},
            "invalid seal configuration: threshold cannot be larger than shares",
        ),
        (
            {"secret_shares": 256, "secret_threshold": 2},
            "invalid seal configuration: shares must be less than 256",
        ),
        (
            {"secret_shares": 3, "secret_threshold": 2, "pgp_keys": ["a"]},
            "invalid seal configuration: count mismatch between number of provided PGP keys and number of shares",
        ),
        (
            {"secret_shares": "3", "secret_threshold": 2},
            "failed to decode JSON input: json: cannot unmarshal string into Go struct field InitRequest.secret_shares of type int",
        ),
        (
            {"secret_shares": 3, "secret_threshold": 2.5},
            "failed to decode JSON input: json: cannot unmarshal number 2.5 into Go struct field InitRequest.secret_threshold of type int",
        ),
        (
            {"secret_shares": 3, "secret_threshold": 2, "pgp_keys": "abc"},
            "failed to decode JSON input: json: cannot unmarshal string into Go struct field InitRequest.pgp_keys of type []string",
        ),
        (
            {"secret_shares": 3, "secret_threshold": 2, "recovery_shares": 1, "recovery_pgp_keys": ["x"]},
            "parameters recovery_shares,recovery_pgp_keys not applicable to seal type shamir",
        ),
    ],
)
async def test_init_validation(fresh: httpx.AsyncClient, body: dict[str, Any], message: str) -> None:
    r = await fresh.put("/v1/sys/init", json=body)
    assert (r.status_code, r.json()) == (400, {"errors": [message]})
    assert (await fresh.get("/v1/sys/init")).json() == {"initialized": False}


async def test_init_bad_pgp_keys_are_400(fresh: httpx.AsyncClient) -> None:
    for body in ({"pgp_keys": ["!", "!", "!"]}, {"root_token_pgp_key": "bm90IGEga2V5"}):
        r = await fresh.put("/v1/sys/init", json={"secret_shares": 3, "secret_threshold": 2, **body})
        assert r.status_code == 400 and r.json()["errors"], body
    assert (await fresh.get("/v1/sys/init")).json() == {"initialized": False}


async def test_init_once_then_unseal_with_hex_and_base64(fresh: httpx.AsyncClient) -> None:
    init = await _init(fresh, stored_shares=1)  # stored_shares is ignored, as OpenBao does
    assert (
        len(init["keys"]) == 3
        and init["keys_base64"][0] == base64.b64encode(bytes.fromhex(init["keys"][0])).decode()
    )
    r = await fresh.put("/v1/sys/init", json={"secret_shares": 3, "secret_threshold": 2})
    assert r.json() == {"errors": ["Vault is already initialized"]}
    status = (await fresh.get("/v1/sys/seal-status")).json()
    assert (status["sealed"], status["t"], status["n"], status["progress"], status["nonce"]) == (
        True,
        2,
        3,
        0,
        "",
    )
    assert "cluster_name" not in status
    assert (await fresh.get("/v1/sys/health")).status_code == 503
    first = (await fresh.put("/v1/sys/unseal", json={"key": init["keys"][0]})).json()
    assert (first["progress"], first["sealed"]) == (1, True) and first["nonce"]
    done = (await fresh.put("/v1/sys/unseal", json={"KEY": init["keys_base64"][1]})).json()
    assert (done["sealed"], done["progress"], done["nonce"]) == (False, 0, "")
    assert done["cluster_name"] and done["cluster_id"]
    # A key sent to an unsealed vault answers the status (hvac relies on it); an undecodable one is a 400.
    assert (await fresh.put("/v1/sys/unseal", json={"key": init["keys"][2]})).json()["sealed"] is False
    assert (await fresh.put("/v1/sys/unseal", json={"key": "not hex!"})).status_code == 400
    r = await fresh.put("/v1/sys/unseal", json={"reset": True})
    assert (r.status_code, r.json()) == (400, {"errors": ["vault is unsealed"]})
    health = await fresh.get("/v1/sys/health")
    assert health.status_code == 200 and health.json()["standby"] is False
    assert health.json()["replication_performance_mode"] == "disabled" and health.json()["cluster_id"]
    token = init["root_token"]
    assert (await fresh.get("/v1/sys/mounts", headers={"X-Vault-Token": token})).status_code == 200


async def test_unseal_progress_reset_duplicate_and_wrong_shares(fresh: httpx.AsyncClient) -> None:
    init = await _init(fresh)
    keys = init["keys"]
    assert (await fresh.put("/v1/sys/unseal", json={"key": keys[0]})).json()["progress"] == 1
    assert (await fresh.put("/v1/sys/unseal", json={"key": keys[0]})).json()["progress"] == 1  # duplicate
    reset = (await fresh.put("/v1/sys/unseal", json={"reset": True})).json()
    assert (reset["progress"], reset["nonce"]) == (0, "")
    assert (await fresh.put("/v1/sys/unseal", json={"key": keys[0]})).json()["progress"] == 1
    wrong = bytearray(bytes.fromhex(keys[1]))
    wrong[0] ^= 1
    r = await fresh.put("/v1/sys/unseal", json={"key": wrong.hex()})
    assert r.status_code == 400 and r.json()["errors"]
    status = (await fresh.get("/v1/sys/seal-status")).json()
    assert (status["sealed"], status["progress"]) == (True, 0)
    for bad in ({"key": "ab"}, {"key": 5}, {"reset": "yes"}, {"key": keys[0], "migrate": True}):
        assert (await fresh.put("/v1/sys/unseal", json=bad)).status_code == 400, bad
    assert (await fresh.get("/v1/sys/seal-status")).json()["progress"] == 0
    assert (await fresh.put("/v1/sys/unseal", json={"key": keys[2]})).json()["progress"] == 1
    assert (await fresh.put("/v1/sys/unseal", json={"key": keys[1]})).json()["sealed"] is False


async def test_init_with_pgp_keys_decrypted_by_gpg(fresh: httpx.AsyncClient) -> None:
    with gpg_home() as gpg:
        custodians = [gpg.generate(f"c{i}@strongroom.test") for i in range(2)]
        root_key = gpg.generate("root@strongroom.test")
        init = await _init(
            fresh,
            secret_shares=2,
            secret_threshold=2,
            pgp_keys=[k.vault_entry for k in custodians],
            root_token_pgp_key=root_key.vault_entry,
        )
        shares = [gpg.decrypt(base64.b64decode(m)).decode() for m in init["keys_base64"]]
        token = gpg.decrypt(base64.b64decode(init["root_token"])).decode()
    assert init["keys"] == [base64.b64decode(m).hex() for m in init["keys_base64"]]
    assert all(len(bytes.fromhex(s)) == 33 for s in shares)
    for share in shares:
        r = await fresh.put("/v1/sys/unseal", json={"key": share})
    assert r.json()["sealed"] is False
    assert (await fresh.get("/v1/sys/mounts", headers={"X-Vault-Token": token})).status_code == 200


async def test_single_share_is_the_raw_key(fresh: httpx.AsyncClient) -> None:
    init = await _init(fresh, secret_shares=1, secret_threshold=1)
    assert len(bytes.fromhex(init["keys"][0])) == 32
    assert (await fresh.put("/v1/sys/unseal", json={"key": init["keys_base64"][0]})).json()["sealed"] is False


@pytest.mark.parametrize(
    "name",
    ["activecode", "standbycode", "drsecondarycode", "performancestandbycode", "sealedcode", "uninitcode"],
)
async def test_health_code_parameters(vault: InProcessVault, name: str) -> None:
    r = await vault.client.get("/v1/sys/health", params={name: "218"})
    assert r.status_code == (218 if name == "activecode" else 200)
    for bad in ("abc", "1.5", "42", "1000", ""):
        r = await vault.client.get("/v1/sys/health", params={name: bad})
        assert r.status_code == 400 and r.json()["errors"], (name, bad)


async def test_health_flags_and_sealed_codes(vault: InProcessVault) -> None:
    for flag in ("standbyok", "perfstandbyok"):
        assert (await vault.client.get("/v1/sys/health", params={flag: "true"})).status_code == 200
        assert (await vault.client.get("/v1/sys/health", params={flag: "maybe"})).status_code == 400
    body = (await vault.client.get("/v1/sys/health")).json()
    assert set(body) == HEALTH_KEYS | {"cluster_name", "cluster_id"}
    assert body["server_time_utc"] == int(vault.clock.now())
    await vault.ok("PUT", "sys/seal")
    assert (await vault.client.get("/v1/sys/health")).status_code == 503
    r = await vault.client.get("/v1/sys/health", params={"sealedcode": "299", "activecode": "204"})
    assert r.status_code == 299 and r.json()["sealed"] is True and "cluster_id" not in r.json()
    assert (await vault.client.head("/v1/sys/health", params={"sealedcode": "298"})).status_code == 298


async def test_leader_and_step_down(vault: InProcessVault) -> None:
    assert await vault.ok("GET", "sys/leader") == {"ha_enabled": False}
    assert (await vault.call("PUT", "sys/step-down", token="")).status_code == 204
    assert (await vault.call("GET", "sys/step-down")).status_code == 405


async def test_seal_needs_sudo_and_forgets_keys(vault: InProcessVault) -> None:
    assert (await vault.call("PUT", "sys/seal", token="")).status_code == 403
    assert (await vault.call("PUT", "sys/seal", token="bogus")).status_code == 403
    plain = await vault.token(["default"])
    assert (await vault.call("PUT", "sys/seal", token=plain)).status_code == 403
    await vault.ok(
        "PUT", "sys/policies/acl/sealer", json={"policy": 'path "sys/seal" { capabilities = ["update"] }'}
    )
    nosudo = await vault.token(["sealer"])
    assert (await vault.call("PUT", "sys/seal", token=nosudo)).status_code == 403
    await vault.ok(
        "PUT",
        "sys/policies/acl/sealer",
        json={"policy": 'path "sys/seal" { capabilities = ["update", "sudo"] }'},
    )
    assert (await vault.call("GET", "sys/seal")).status_code == 405
    assert (await vault.call("PUT", "sys/seal", token=nosudo)).status_code == 204
    assert vault.node.root.keys is None
    assert (await vault.call("GET", "sys/mounts")).status_code == 503
    for key in vault.keys[:2]:
        await vault.ok("PUT", "sys/unseal", json={"key": key})
    assert (await vault.call("GET", "sys/mounts")).status_code == 200
