"""Transit key lifecycle over the API: create, read, list, config, rotate, delete, and what storage holds."""

from __future__ import annotations

import pytest

from strongroom.storage.memory import MemoryStore
from tests.engines.transit.conftest import b64
from tests.support.vault import InProcessVault


async def test_create_read_list_rotate_delete(transit: InProcessVault) -> None:
    body = await transit.ok("POST", "transit/keys/app", json={})
    data = body["data"]
    assert data["type"] == "aes256-gcm96" and data["latest_version"] == 1
    assert data["min_decryption_version"] == 1 and data["min_encryption_version"] == 0
    assert data["supports_encryption"] and not data["supports_signing"]
    assert set(data["keys"]) == {"1"} and isinstance(data["keys"]["1"], int)

    again = await transit.ok("POST", "transit/keys/app", json={"type": "rsa-2048"})
    assert again["warnings"] == ["key app already existed"]
    assert again["data"]["type"] == "aes256-gcm96"

    rotated = await transit.ok("POST", "transit/keys/app/rotate")
    assert rotated["data"]["latest_version"] == 2 and set(rotated["data"]["keys"]) == {"1", "2"}

    await transit.ok("POST", "transit/keys/other", json={"type": "ed25519"})
    listing = await transit.ok("LIST", "transit/keys")
    assert listing["data"]["keys"] == ["app", "other"]

    r = await transit.call("DELETE", "transit/keys/app")
    assert r.status_code == 400
    assert r.json()["errors"] == ["error deleting policy app: deletion is not allowed for this key"]
    await transit.ok("POST", "transit/keys/app/config", json={"deletion_allowed": True})
    await transit.ok("DELETE", "transit/keys/app")
    assert (await transit.call("GET", "transit/keys/app")).status_code == 404
    assert (await transit.ok("LIST", "transit/keys"))["data"]["keys"] == ["other"]


async def test_empty_listing_and_missing_key_are_404(transit: InProcessVault) -> None:
    assert (await transit.call("LIST", "transit/keys")).status_code == 404
    assert (await transit.call("GET", "transit/keys/nope")).status_code == 404


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"type": "rsa-1024"}, "unknown key type rsa-1024"),
        ({"convergent_encryption": True}, "convergent encryption requires derivation to be enabled"),
        ({"auto_rotate_period": "30m"}, "auto rotate period must be 0 to disable or at least an hour"),
        ({"type": "aes256-gcm96", "key_size": 64}, "key_size is not valid for algorithm aes256-gcm96"),
        ({"type": "hmac", "key_size": 8}, "invalid key_size 8"),
        ({"type": "rsa-2048", "derived": True}, "key derivation and convergent encryption not supported"),
    ],
)
async def test_invalid_create_is_400_and_writes_nothing(
    transit: InProcessVault, body: dict[str, object], message: str
) -> None:
    r = await transit.call("POST", "transit/keys/bad", json=body)
    assert r.status_code == 400 and message in r.json()["errors"][0]
    assert (await transit.call("GET", "transit/keys/bad")).status_code == 404


async def test_invalid_names_are_not_routes(transit: InProcessVault) -> None:
    for name in ("-lead", "trail.", "sp ace"):
        r = await transit.call("POST", f"transit/keys/{name}", json={})
        assert r.status_code == 404, name


async def test_asymmetric_read_shows_public_keys(transit: InProcessVault) -> None:
    await transit.ok("POST", "transit/keys/sig", json={"type": "ecdsa-p384"})
    keys = (await transit.ok("GET", "transit/keys/sig"))["data"]["keys"]
    assert keys["1"]["name"] == "P-384"
    assert keys["1"]["public_key"].startswith("-----BEGIN PUBLIC KEY-----")
    assert keys["1"]["creation_time"].endswith("Z")


async def test_derived_ed25519_public_key_needs_context(transit: InProcessVault) -> None:
    await transit.ok("POST", "transit/keys/ed", json={"type": "ed25519", "derived": True})
    plain = (await transit.ok("GET", "transit/keys/ed"))["data"]
    assert plain["keys"]["1"]["public_key"] == "" and plain["kdf"] == "hkdf_sha256"
    a = (await transit.ok("GET", "transit/keys/ed", params={"context": b64("a")}))["data"]["keys"]["1"]
    b = (await transit.ok("GET", "transit/keys/ed", params={"context": b64("b")}))["data"]["keys"]["1"]
    assert a["public_key"] and b["public_key"] and a["public_key"] != b["public_key"]
    r = await transit.call("GET", "transit/keys/ed", params={"context": "!!"})
    assert r.status_code == 400 and r.json()["errors"] == ["failed to base64-decode context"]


async def test_config_rules(transit: InProcessVault) -> None:
    await transit.ok("POST", "transit/keys/k", json={"exportable": True})
    for _ in range(3):
        await transit.ok("POST", "transit/keys/k/rotate")
    ok = await transit.ok("POST", "transit/keys/k/config",
                          json={"min_decryption_version": 2, "min_encryption_version": 3})
    assert ok["data"]["min_decryption_version"] == 2 and ok["data"]["min_encryption_version"] == 3
    cases = [
        ({"min_decryption_version": 9}, "cannot set min decryption version of 9, latest key version is 4"),
        ({"min_encryption_version": -1}, "min encryption version cannot be negative"),
        ({"min_encryption_version": 1}, "min encryption version of 1 must be greater than or equal to min "
                                        "decryption version of 2"),
        ({"auto_rotate_period": 60}, "auto rotate period must be 0 to disable or at least an hour"),
    ]
    for body, message in cases:
        r = await transit.call("POST", "transit/keys/k/config", json=body)
        assert r.status_code == 400 and message in r.json()["errors"][0], body
    # exportable cannot be turned off; zero min_decryption_version is forced to 1 with a warning.
    kept = await transit.ok("POST", "transit/keys/k/config", json={"exportable": False})
    assert kept["data"]["exportable"] is True
    forced = await transit.ok("POST", "transit/keys/k/config", json={"min_decryption_version": 0})
    assert forced["data"]["min_decryption_version"] == 1 and forced["warnings"]
    r = await transit.call("POST", "transit/keys/none/config", json={})
    assert r.json()["errors"] == ["no existing key named none could be found"]


async def test_rotate_missing_key(transit: InProcessVault) -> None:
    r = await transit.call("POST", "transit/keys/nope/rotate")
    assert r.status_code == 400 and r.json()["errors"] == ["key not found"]


async def test_storage_holds_no_name_and_no_key_material() -> None:
    from tests.support.vault import start_vault

    store = MemoryStore()
    vault = await start_vault(store)
    await vault.ok("POST", "sys/mounts/transit", json={"type": "transit"})
    await vault.ok("POST", "transit/keys/very-distinctive-key-name", json={"type": "hmac", "exportable": True})
    exported = await vault.call("GET", "transit/export/hmac-key/very-distinctive-key-name/1")
    async with store.transaction() as tx:
        rows = await tx.range(b"", b"\xff" * 16)
    dump = b"".join(k + v for k, v in rows)
    assert len(rows) > 10
    assert b"very-distinctive-key-name" not in dump
    assert b"hmac" not in dump
    if exported.status_code == 200:
        import base64

        raw = base64.b64decode(exported.json()["data"]["keys"]["1"])
        assert raw not in dump
