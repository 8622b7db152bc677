"""encrypt / decrypt / rewrap over the API: single and batch, upsert, versions, derivation, errors."""

from __future__ import annotations

import pytest

from tests.engines.transit.conftest import b64, unb64
from tests.support.vault import InProcessVault

AEADS = ["aes128-gcm96", "aes256-gcm96", "chacha20-poly1305", "xchacha20-poly1305"]


async def _encrypt(v: InProcessVault, name: str, plaintext: bytes, **kw: object) -> str:
    body = await v.ok("POST", f"transit/encrypt/{name}", json={"plaintext": b64(plaintext), **kw})
    ciphertext: str = body["data"]["ciphertext"]
    return ciphertext


async def _decrypt(v: InProcessVault, name: str, ciphertext: str, **kw: object) -> bytes:
    body = await v.ok("POST", f"transit/decrypt/{name}", json={"ciphertext": ciphertext, **kw})
    return unb64(body["data"]["plaintext"])


@pytest.mark.parametrize("key_type", [*AEADS, "rsa-2048"])
async def test_round_trip_per_type(transit: InProcessVault, key_type: str) -> None:
    await transit.ok("POST", "transit/keys/k", json={"type": key_type})
    ciphertext = await _encrypt(transit, "k", b"\x00binary\xff")
    assert ciphertext.startswith("vault:v1:")
    assert await _decrypt(transit, "k", ciphertext) == b"\x00binary\xff"


async def test_empty_plaintext_round_trips(transit: InProcessVault) -> None:
    ciphertext = await _encrypt(transit, "k", b"")
    assert await _decrypt(transit, "k", ciphertext) == b""


async def test_upsert_needs_create_capability(transit: InProcessVault) -> None:
    await transit.ok("POST", "sys/policies/acl/update-only",
                     json={"policy": 'path "transit/encrypt/*" { capabilities = ["update"] }'})
    token = await transit.token(["update-only"])
    r = await transit.call("POST", "transit/encrypt/new", token, json={"plaintext": b64("x")})
    assert r.status_code == 403
    assert (await transit.call("GET", "transit/keys/new")).status_code == 404
    await transit.ok("POST", "transit/keys/existing")
    await transit.ok("POST", "transit/encrypt/existing", token, json={"plaintext": b64("x")})


async def test_upsert_types_and_derivation(transit: InProcessVault) -> None:
    await _encrypt(transit, "x", b"p", type="xchacha20-poly1305", context=b64("c"))
    data = (await transit.ok("GET", "transit/keys/x"))["data"]
    assert data["type"] == "xchacha20-poly1305" and data["derived"] is True
    for key_type, message in [("ecdsa-p256", "key type ecdsa-p256 not supported for this operation"),
                              ("rsa-2048", "unknown key type rsa-2048"),
                              ("bogus", "unknown key type bogus")]:
        r = await transit.call("POST", "transit/encrypt/new-" + key_type, json={"plaintext": b64("p"), "type": key_type})
        assert r.status_code == 400 and r.json()["errors"] == [message]
    r = await transit.call("POST", "transit/encrypt/conv", json={"plaintext": b64("p"), "convergent_encryption": True})
    assert r.json()["errors"] == ["convergent encryption requires derivation to be enabled, so context is required"]


async def test_disable_upsert(transit: InProcessVault) -> None:
    await transit.ok("POST", "transit/config/keys", json={"disable_upsert": True})
    assert (await transit.ok("GET", "transit/config/keys"))["data"] == {"disable_upsert": True}
    r = await transit.call("POST", "transit/encrypt/new", json={"plaintext": b64("x")})
    assert r.status_code == 400 and r.json()["errors"] == ["encryption key not found"]


async def test_versions_and_min_decryption_version(transit: InProcessVault) -> None:
    v1 = await _encrypt(transit, "k", b"one")
    await transit.ok("POST", "transit/keys/k/rotate")
    v2 = await _encrypt(transit, "k", b"two")
    assert v2.startswith("vault:v2:")
    assert (await _encrypt(transit, "k", b"old", key_version=1)).startswith("vault:v1:")
    await transit.ok("POST", "transit/keys/k/config", json={"min_decryption_version": 2})
    r = await transit.call("POST", "transit/decrypt/k", json={"ciphertext": v1})
    assert r.status_code == 400
    assert r.json()["errors"] == ["ciphertext or signature version is disallowed by policy (too old)"]
    rewrapped = await transit.ok("POST", "transit/rewrap/k", json={"ciphertext": v2})
    assert rewrapped["data"]["key_version"] == 2
    r = await transit.call("POST", "transit/decrypt/k", json={"ciphertext": "vault:v9:AAAA"})
    assert r.json()["errors"] == ["invalid ciphertext: version is too new"]
    r = await transit.call("POST", "transit/encrypt/k", json={"plaintext": b64("x"), "key_version": 5})
    assert r.json()["errors"] == ["requested version for encryption is higher than the latest key version"]


async def test_rewrap_moves_to_latest_without_revealing(transit: InProcessVault) -> None:
    old = await _encrypt(transit, "k", b"secret", context=b64("ctx"))
    await transit.ok("POST", "transit/keys/k/rotate")
    body = await transit.ok("POST", "transit/rewrap/k", json={"ciphertext": old, "context": b64("ctx")})
    assert "plaintext" not in body["data"] and body["data"]["ciphertext"].startswith("vault:v2:")
    assert await _decrypt(transit, "k", body["data"]["ciphertext"], context=b64("ctx")) == b"secret"


async def test_associated_data(transit: InProcessVault) -> None:
    ciphertext = await _encrypt(transit, "k", b"p", associated_data=b64("row-7"))
    assert await _decrypt(transit, "k", ciphertext, associated_data=b64("row-7")) == b"p"
    r = await transit.call("POST", "transit/decrypt/k", json={"ciphertext": ciphertext, "associated_data": b64("row-8")})
    assert r.status_code == 400 and r.json()["errors"] == ["cipher: message authentication failed"]
    await transit.ok("POST", "transit/keys/r", json={"type": "rsa-2048"})
    r = await transit.call("POST", "transit/encrypt/r", json={"plaintext": b64("p"), "associated_data": b64("a")})
    assert r.json()["errors"] == ["'[0].associated_data' provided for non-AEAD cipher suite rsa-2048"]


async def test_convergent_encryption_is_deterministic(transit: InProcessVault) -> None:
    await transit.ok("POST", "transit/keys/c", json={"derived": True, "convergent_encryption": True})
    a = await _encrypt(transit, "c", b"same", context=b64("ctx"))
    b = await _encrypt(transit, "c", b"same", context=b64("ctx"))
    c = await _encrypt(transit, "c", b"same", context=b64("other"))
    assert a == b != c
    data = (await transit.ok("GET", "transit/keys/c"))["data"]
    assert data["convergent_encryption"] is True and data["convergent_encryption_version"] == -1


async def test_authentication_failures_share_one_message(transit: InProcessVault) -> None:
    await transit.ok("POST", "transit/keys/d", json={"derived": True})
    ciphertext = await _encrypt(transit, "d", b"p", context=b64("right"))
    await transit.ok("POST", "transit/keys/other", json={"derived": True})
    tampered = ciphertext[:-4] + ("AAAA" if not ciphertext.endswith("AAAA") else "BBBB")
    errors = set()
    for name, ct, ctx in [("d", ciphertext, "wrong"), ("d", tampered, "right"), ("other", ciphertext, "right")]:
        r = await transit.call("POST", f"transit/decrypt/{name}", json={"ciphertext": ct, "context": b64(ctx)})
        assert r.status_code == 400
        errors.add(tuple(r.json()["errors"]))
    assert errors == {("cipher: message authentication failed",)}


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        ("encrypt/k", {}, "missing plaintext to encrypt"),
        ("encrypt/k", {"plaintext": "not base64!"}, "illegal base64 data at input byte 3"),
        ("encrypt/k", {"plaintext": b64("x"), "nonce": b64("n" * 12)}, "nonce provided when not allowed"),
        ("decrypt/k", {}, "missing ciphertext to decrypt"),
        ("decrypt/k", {"ciphertext": "nope"}, "invalid ciphertext: no prefix"),
        ("decrypt/k", {"ciphertext": "vault:v1"}, "invalid ciphertext: wrong number of fields"),
        ("decrypt/k", {"ciphertext": "vault:vX:AAAA"}, "invalid ciphertext: version number could not be decoded"),
        ("decrypt/k", {"ciphertext": "vault:v1:@@@"}, "invalid ciphertext: could not decode base64"),
        ("decrypt/missing", {"ciphertext": "vault:v1:AAAA"}, "encryption key not found"),
        ("decrypt/d", {"ciphertext": "vault:v1:AAAA"}, "missing 'context' for key derivation"),
        ("encrypt/d", {"plaintext": b64("x")}, "missing 'context' for key derivation"),
    ],
)
async def test_bad_input_is_a_clear_400(transit: InProcessVault, path: str, body: dict[str, object], message: str) -> None:
    await transit.ok("POST", "transit/keys/k")
    await transit.ok("POST", "transit/keys/d", json={"derived": True})
    r = await transit.call("POST", f"transit/{path}", json=body)
    assert r.status_code == 400, r.text
    assert r.json()["errors"][0].startswith(message), r.json()


async def test_wrong_key_type_for_encryption(transit: InProcessVault) -> None:
    await transit.ok("POST", "transit/keys/e", json={"type": "ed25519"})
    r = await transit.call("POST", "transit/encrypt/e", json={"plaintext": b64("x")})
    assert r.status_code == 400 and r.json()["errors"] == ["message encryption not supported for key type ed25519"]


async def test_batch_reports_each_item(transit: InProcessVault) -> None:
    await transit.ok("POST", "transit/keys/k")
    batch = [{"plaintext": b64("a"), "reference": "r1"}, {"plaintext": "%%", "reference": "r2"},
             {"plaintext": b64("c")}]
    r = await transit.call("POST", "transit/encrypt/k", json={"batch_input": batch})
    assert r.status_code == 400
    results = r.json()["data"]["batch_results"]
    assert [res["reference"] for res in results] == ["r1", "r2", ""]
    assert results[0]["ciphertext"].startswith("vault:v1:") and "error" not in results[0]
    assert results[1] == {"error": "illegal base64 data at input byte 0", "reference": "r2"}
    r = await transit.call("POST", "transit/encrypt/k", json={"batch_input": batch, "partial_failure_response_code": 207})
    assert r.status_code == 207
    good = [{"ciphertext": results[0]["ciphertext"]}, {"ciphertext": results[2]["ciphertext"]}, {"ciphertext": "bad"}]
    r = await transit.call("POST", "transit/decrypt/k", json={"batch_input": good})
    out = r.json()["data"]["batch_results"]
    assert r.status_code == 400
    assert [unb64(o["plaintext"]) for o in out[:2]] == [b"a", b"c"]
    assert out[2]["error"] == "invalid ciphertext: no prefix" and out[2]["plaintext"] == ""
    ok = await transit.ok("POST", "transit/decrypt/k", json={"batch_input": good[:2]})
    assert len(ok["data"]["batch_results"]) == 2


async def test_batch_shape_errors(transit: InProcessVault) -> None:
    await transit.ok("POST", "transit/keys/k")
    cases = [
        ({"batch_input": []}, "missing batch input to process"),
        ({"batch_input": "x"}, "failed to parse batch input"),
        ({"batch_input": [{"plaintext": b64("a"), "context": b64("c")}, {"plaintext": b64("b")}]},
         "context should be set either in all the request blocks or in none"),
    ]
    for body, message in cases:
        r = await transit.call("POST", "transit/encrypt/k", json=body)
        assert r.status_code == 400 and r.json()["errors"][0].startswith(message), body


async def test_batch_limit_is_a_mount_option(vault: InProcessVault) -> None:
    await vault.ok("POST", "sys/mounts/small", json={"type": "transit", "options": {"max_batch_items": "2"}})
    batch = [{"plaintext": b64("a")}] * 3
    r = await vault.call("POST", "small/encrypt/k", json={"batch_input": batch})
    assert r.status_code == 400 and "limit on this mount is 2" in r.json()["errors"][0]
    assert (await vault.call("GET", "small/keys/k")).status_code == 404  # nothing half-written
    await vault.ok("POST", "small/encrypt/k", json={"batch_input": batch[:2]})


async def test_hvac_style_null_plaintext_with_batch(transit: InProcessVault) -> None:
    # hvac sends {"plaintext": null, "batch_input": [...]}.
    body = await transit.ok("POST", "transit/encrypt/k", json={"plaintext": None, "batch_input": [{"plaintext": b64("z")}]})
    assert body["data"]["batch_results"][0]["key_version"] == 1
