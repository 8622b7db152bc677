"""datakey/plaintext and datakey/wrapped over the API: sizes, unwrapping, context, versions, refusals."""

from __future__ import annotations

import pytest

from tests.engines.transit.conftest import b64, unb64
from tests.support.vault import InProcessVault

AEADS = ["aes128-gcm96", "aes256-gcm96", "chacha20-poly1305", "xchacha20-poly1305"]


async def _errors(v: InProcessVault, path: str, status: int = 400, **body: object) -> list[str]:
    r = await v.call("POST", path, json=body)
    assert r.status_code == status, r.text
    errors: list[str] = r.json()["errors"]
    return errors


async def _unwrap(v: InProcessVault, name: str, ciphertext: str, **kw: object) -> bytes:
    body = await v.ok("POST", f"transit/decrypt/{name}", json={"ciphertext": ciphertext, **kw})
    return unb64(body["data"]["plaintext"])


@pytest.mark.parametrize("key_type", [*AEADS, "rsa-2048"])
@pytest.mark.parametrize("bits", [128, 256, 512])
async def test_plaintext_key_is_what_the_ciphertext_unwraps_to(
    transit: InProcessVault, key_type: str, bits: int
) -> None:
    await transit.ok("POST", "transit/keys/k", json={"type": key_type})
    data = (await transit.ok("POST", "transit/datakey/plaintext/k", json={"bits": bits}))["data"]
    key = unb64(data["plaintext"])
    assert len(key) == bits // 8
    assert data["ciphertext"].startswith("vault:v1:") and data["key_version"] == 1
    # The ciphertext wraps the raw key bytes; decrypt returns them base64-encoded, as Vault does.
    assert await _unwrap(transit, "k", data["ciphertext"]) == key


async def test_default_is_256_bits_and_keys_are_fresh(transit: InProcessVault) -> None:
    await transit.ok("POST", "transit/keys/k")
    first = unb64((await transit.ok("POST", "transit/datakey/plaintext/k"))["data"]["plaintext"])
    second = unb64((await transit.ok("POST", "transit/datakey/plaintext/k"))["data"]["plaintext"])
    assert len(first) == 32 and len(second) == 32 and first != second


async def test_wrapped_returns_no_plaintext(transit: InProcessVault) -> None:
    await transit.ok("POST", "transit/keys/k")
    data = (await transit.ok("POST", "transit/datakey/wrapped/k", json={"bits": 512}))["data"]
    assert set(data) == {"ciphertext", "key_version"}
    assert len(await _unwrap(transit, "k", data["ciphertext"])) == 64


async def test_acl_can_allow_wrapped_but_not_plaintext(transit: InProcessVault) -> None:
    await transit.ok("POST", "sys/policies/acl/wrapped-only",
                     json={"policy": 'path "transit/datakey/wrapped/*" { capabilities = ["update"] }'})
    token = await transit.token(["wrapped-only"])
    await transit.ok("POST", "transit/keys/k")
    await transit.ok("POST", "transit/datakey/wrapped/k", token)
    assert (await transit.call("POST", "transit/datakey/plaintext/k", token)).status_code == 403


async def test_bad_kind_bits_and_missing_key(transit: InProcessVault) -> None:
    await transit.ok("POST", "transit/keys/k")
    assert await _errors(transit, "transit/datakey/both/k") == ["Invalid path, must be 'plaintext' or 'wrapped'"]
    assert (await transit.call("POST", "transit/datakey/-bad-/k")).status_code == 404
    assert await _errors(transit, "transit/datakey/plaintext/k", bits=64) == ["invalid bit length"]
    assert await _errors(transit, "transit/datakey/plaintext/k", bits=384) == ["invalid bit length"]
    # As in Vault the key is looked up before the bit length is judged, and never created.
    assert await _errors(transit, "transit/datakey/plaintext/nokey", bits=3) == ["encryption key not found"]
    assert (await transit.call("GET", "transit/keys/nokey")).status_code == 404


async def test_nonce_is_refused(transit: InProcessVault) -> None:
    await transit.ok("POST", "transit/keys/k")
    errors = await _errors(transit, "transit/datakey/plaintext/k", nonce=b64(b"\x00" * 12))
    assert errors == ["nonce provided when not allowed"]


async def test_derived_key_needs_the_context_both_ways(transit: InProcessVault) -> None:
    await transit.ok("POST", "transit/keys/d", json={"derived": True})
    errors = await _errors(transit, "transit/datakey/plaintext/d")
    assert errors[0].startswith("missing 'context' for key derivation")
    assert await _errors(transit, "transit/datakey/plaintext/d", context="!!") == ["failed to base64-decode context"]
    data = (await transit.ok("POST", "transit/datakey/plaintext/d", json={"context": b64("tenant-1")}))["data"]
    assert await _unwrap(transit, "d", data["ciphertext"], context=b64("tenant-1")) == unb64(data["plaintext"])
    r = await transit.call("POST", "transit/decrypt/d", json={"ciphertext": data["ciphertext"], "context": b64("tenant-2")})
    assert r.status_code == 400 and r.json()["errors"] == ["cipher: message authentication failed"]


async def test_associated_data_binds_the_wrapped_key(transit: InProcessVault) -> None:
    await transit.ok("POST", "transit/keys/k")
    data = (await transit.ok("POST", "transit/datakey/wrapped/k", json={"associated_data": b64("row 7")}))["data"]
    assert len(await _unwrap(transit, "k", data["ciphertext"], associated_data=b64("row 7"))) == 32
    r = await transit.call("POST", "transit/decrypt/k", json={"ciphertext": data["ciphertext"]})
    assert r.status_code == 400 and r.json()["errors"] == ["cipher: message authentication failed"]
    errors = await _errors(transit, "transit/datakey/wrapped/k", associated_data="!!")
    assert errors == ["unable to get associated_data/additional_data from factory[0]: illegal base64 data at input byte 0"]
    await transit.ok("POST", "transit/keys/r", json={"type": "rsa-2048"})
    errors = await _errors(transit, "transit/datakey/wrapped/r", associated_data=b64("x"))
    assert errors == ["'associated_data' provided for non-AEAD cipher suite rsa-2048"]


async def test_key_version_rules(transit: InProcessVault) -> None:
    await transit.ok("POST", "transit/keys/k")
    await transit.ok("POST", "transit/keys/k/rotate")
    await transit.ok("POST", "transit/keys/k/rotate")
    latest = (await transit.ok("POST", "transit/datakey/wrapped/k"))["data"]
    assert latest["key_version"] == 3 and latest["ciphertext"].startswith("vault:v3:")
    old = (await transit.ok("POST", "transit/datakey/wrapped/k", json={"key_version": 1}))["data"]
    assert old["key_version"] == 1 and old["ciphertext"].startswith("vault:v1:")
    assert await _errors(transit, "transit/datakey/wrapped/k", key_version=4) == [
        "requested version for encryption is higher than the latest key version"
    ]
    assert await _errors(transit, "transit/datakey/wrapped/k", key_version=-1) == [
        "requested version for encryption is negative"
    ]
    await transit.ok("POST", "transit/keys/k/config", json={"min_encryption_version": 2})
    assert await _errors(transit, "transit/datakey/wrapped/k", key_version=1) == [
        "requested version for encryption is less than the minimum encryption key version"
    ]


@pytest.mark.parametrize("key_type", ["ed25519", "ecdsa-p256", "hmac"])
async def test_key_types_that_cannot_encrypt(transit: InProcessVault, key_type: str) -> None:
    await transit.ok("POST", "transit/keys/k", json={"type": key_type})
    errors = await _errors(transit, "transit/datakey/plaintext/k")
    assert errors == [f"message encryption not supported for key type {key_type}"]


async def test_convergent_key_still_gives_random_data_keys(transit: InProcessVault) -> None:
    await transit.ok("POST", "transit/keys/c", json={"derived": True, "convergent_encryption": True})
    ctx = b64("ctx")
    a = (await transit.ok("POST", "transit/datakey/plaintext/c", json={"context": ctx}))["data"]
    b = (await transit.ok("POST", "transit/datakey/plaintext/c", json={"context": ctx}))["data"]
    assert a["plaintext"] != b["plaintext"] and a["ciphertext"] != b["ciphertext"]
    assert await _unwrap(transit, "c", a["ciphertext"], context=ctx) == unb64(a["plaintext"])
