"""keys/:name/trim over the API: Vault's rules and messages, and that trimmed material is really gone."""

from __future__ import annotations

from typing import Any

from strongroom.storage.subspace import namespace
from tests.engines.transit.conftest import b64
from tests.support.vault import InProcessVault


async def _error(v: InProcessVault, path: str, status: int = 400, **body: object) -> str:
    r = await v.call("POST", path, json=body)
    assert r.status_code == status, r.text
    errors: list[str] = r.json()["errors"]
    assert len(errors) == 1
    return errors[0]


async def _key_with_versions(v: InProcessVault, name: str, versions: int) -> None:
    await v.ok("POST", f"transit/keys/{name}")
    for _ in range(versions - 1):
        await v.ok("POST", f"transit/keys/{name}/rotate")


async def _stored_records(v: InProcessVault) -> int:
    """Number of physical records in the transit mount's storage view (policy, material, index)."""
    mounts = (await v.ok("GET", "sys/mounts"))["data"]
    space = namespace(b"root").sub("m", mounts["transit/"]["uuid"])
    begin, end = space.range()
    async with v.node.store.transaction() as tx:
        return len(await tx.range(begin, end))


async def test_rules_in_vaults_order(transit: InProcessVault) -> None:
    await _key_with_versions(transit, "k", 5)
    trim = "transit/keys/k/trim"
    assert await _error(transit, trim) == "missing min_available_version"
    assert await _error(transit, trim, min_available_version=1) == (
        "minimum available version cannot be set when minimum encryption version is not set"
    )
    await transit.ok("POST", "transit/keys/k/config", json={"min_encryption_version": 3})
    # min_decryption_version is 1 by default, so it is set: the bound is the decryption minimum.
    assert await _error(transit, trim, min_available_version=2) == (
        "minimum available version cannot be greater than minimum decryption version"
    )
    await transit.ok("POST", "transit/keys/k/config", json={"min_decryption_version": 3})
    assert await _error(transit, trim, min_available_version=4) == (
        "minimum available version cannot be greater than minmum encryption version"
    )
    assert await _error(transit, trim, min_available_version=0) == "minimum available version should be positive"
    # Below the current value (0) is "decremented" before it is "negative", as in Vault.
    assert await _error(transit, trim, min_available_version=-1) == "minimum available version cannot be decremented"
    data = (await transit.ok("POST", trim, json={"min_available_version": 2}))["data"]
    assert data["min_available_version"] == 2
    assert await _error(transit, trim, min_available_version=1) == "minimum available version cannot be decremented"
    # Explicit null counts as 0, as Vault's GetOkErr sees it.
    assert await _error(transit, trim, min_available_version=None) == "minimum available version cannot be decremented"
    r = await transit.call("POST", trim, json={"min_available_version": "x"})
    assert r.status_code == 400


async def test_trim_deletes_material_and_versions(transit: InProcessVault) -> None:
    await _key_with_versions(transit, "k", 4)
    old = (await transit.ok("POST", "transit/encrypt/k", json={"plaintext": b64("x"), "key_version": 2}))["data"]
    await transit.ok("POST", "transit/keys/k/config", json={"min_decryption_version": 3, "min_encryption_version": 3})
    before = await _stored_records(transit)
    data = (await transit.ok("POST", "transit/keys/k/trim", json={"min_available_version": 3}))["data"]
    assert data["min_available_version"] == 3 and data["latest_version"] == 4
    assert sorted(data["keys"]) == ["3", "4"]
    # Exactly the two material records of versions 1 and 2 left storage.
    assert await _stored_records(transit) == before - 2
    read = (await transit.ok("GET", "transit/keys/k"))["data"]
    assert sorted(read["keys"]) == ["3", "4"] and read["min_available_version"] == 3
    # Old ciphertexts stay refused; the remaining versions keep working.
    r = await transit.call("POST", "transit/decrypt/k", json={"ciphertext": old["ciphertext"]})
    assert r.status_code == 400
    new = (await transit.ok("POST", "transit/encrypt/k", json={"plaintext": b64("y")}))["data"]["ciphertext"]
    await transit.ok("POST", "transit/decrypt/k", json={"ciphertext": new})
    # The minimums can no longer go below the trimmed range.
    msg = await _error(transit, "transit/keys/k/config", min_decryption_version=2)
    assert msg == "min decryption version should not be less then min available version"


async def test_trimming_to_the_same_value_again_is_a_no_op(transit: InProcessVault) -> None:
    await _key_with_versions(transit, "k", 3)
    await transit.ok("POST", "transit/keys/k/config", json={"min_decryption_version": 2, "min_encryption_version": 2})
    first: Any = (await transit.ok("POST", "transit/keys/k/trim", json={"min_available_version": 2}))["data"]
    records = await _stored_records(transit)
    second: Any = (await transit.ok("POST", "transit/keys/k/trim", json={"min_available_version": 2}))["data"]
    assert first == second
    assert await _stored_records(transit) == records


async def test_missing_and_invalid_key_names(transit: InProcessVault) -> None:
    assert await _error(transit, "transit/keys/nokey/trim", min_available_version=1) == "invalid key name"
    # The key is looked up before the parameter is checked.
    assert await _error(transit, "transit/keys/nokey/trim") == "invalid key name"
    assert (await transit.call("POST", "transit/keys/-bad-/trim", json={"min_available_version": 1})).status_code == 404


async def test_trim_needs_update_on_its_own_path(transit: InProcessVault) -> None:
    await _key_with_versions(transit, "k", 2)
    await transit.ok("POST", "transit/keys/k/config", json={"min_decryption_version": 2, "min_encryption_version": 2})
    await transit.ok("POST", "sys/policies/acl/rotate-only",
                     json={"policy": 'path "transit/keys/k/rotate" { capabilities = ["update"] }'})
    token = await transit.token(["rotate-only"])
    r = await transit.call("POST", "transit/keys/k/trim", token, json={"min_available_version": 2})
    assert r.status_code == 403
