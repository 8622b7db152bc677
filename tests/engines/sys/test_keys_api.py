"""sys/rotate, sys/rotate/keyring and sys/key-status in process."""

from __future__ import annotations

from tests.support.vault import InProcessVault


async def test_rotate_adds_a_term_and_data_stays_readable(vault: InProcessVault) -> None:
    status = await vault.ok("GET", "sys/key-status")
    assert status["data"]["term"] == 1 and status["term"] == 1
    assert set(status["data"]) == {"term", "install_time", "encryptions", "rewrap"}  # + the re-wrap's progress
    assert status["data"]["install_time"].endswith("Z")
    await vault.ok("PUT", "sys/policies/acl/before", json={"policy": 'path "a" { capabilities = ["read"] }'})
    vault.clock.advance(60)
    assert (await vault.call("PUT", "sys/rotate")).status_code == 204
    after = (await vault.ok("GET", "sys/key-status"))["data"]
    assert after["term"] == 2 and after["install_time"] != status["data"]["install_time"]
    assert (await vault.call("POST", "sys/rotate/keyring")).status_code == 204
    assert (await vault.ok("GET", "sys/key-status"))["data"]["term"] == 3
    assert (await vault.ok("GET", "sys/policies/acl/before"))["data"]["name"] == "before"
    # after a seal/unseal the node reloads the rotated keyring from storage
    await vault.ok("PUT", "sys/seal")
    for key in vault.keys[:2]:
        await vault.ok("PUT", "sys/unseal", json={"key": key})
    assert (await vault.ok("GET", "sys/key-status"))["data"]["term"] == 3
    assert (await vault.ok("GET", "sys/policies/acl/before"))["data"]["name"] == "before"


async def test_rotate_needs_sudo_key_status_does_not(vault: InProcessVault) -> None:
    await vault.ok(
        "PUT",
        "sys/policies/acl/ops",
        json={
            "policy": (
                'path "sys/rotate" { capabilities = ["update"] }\npath "sys/key-status" { capabilities = ["read"] }'
            )
        },
    )
    token = await vault.token(["ops"])
    assert (await vault.call("PUT", "sys/rotate", token=token)).status_code == 403
    assert (await vault.call("GET", "sys/key-status", token=token)).status_code == 200
    plain = await vault.token(["default"])
    assert (await vault.call("GET", "sys/key-status", token=plain)).status_code == 403
    assert (await vault.call("GET", "sys/rotate")).status_code == 405
    assert (await vault.call("GET", "sys/rotate/keyring/status")).status_code == 404
