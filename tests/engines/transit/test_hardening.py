"""Transit findings of the security review: each test failed before its fix.

Status overrides that are not HTTP, batch integers that crashed the parser, archived versions that could
still encrypt, backups that could not be formatted or that pinned unbounded work on a later backup,
rotation periods no backup can carry, caller nonces beside a batch, batch caps for asymmetric keys, and
the bounds of the worker's key caches.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from strongroom.engines.transit import settings, store
from tests.engines.transit.conftest import b64, unb64
from tests.support.vault import InProcessVault

OVERRIDE_WARNING = "invalid HTTP response code override from partial_failure_response_code, reverting to 400"


async def _error(v: InProcessVault, path: str, body: dict[str, Any]) -> str:
    r = await v.call("POST", "transit/" + path, json=body)
    assert r.status_code == 400, (path, r.status_code, r.text)
    errors: list[str] = r.json()["errors"]
    return errors[0]


# -- partial_failure_response_code ------------------------------------------------------------------------


@pytest.mark.parametrize("code", [1, 99, 100, 150, 199, 600])
async def test_a_status_override_that_is_not_a_final_http_status_is_refused(transit: InProcessVault, code: int) -> None:
    # 99 made the ASGI server abort the whole process; 1xx are interim responses without a body.
    batch = [{"plaintext": b64("ok")}, {"plaintext": "not base64!"}]
    r = await transit.call("POST", "transit/encrypt/k",
                           json={"batch_input": batch, "partial_failure_response_code": code})
    assert r.status_code == 400
    assert r.json()["warnings"] == [OVERRIDE_WARNING]
    assert "ciphertext" in r.json()["data"]["batch_results"][0]


@pytest.mark.parametrize("code", [1, 99, 150])
async def test_sign_and_hmac_batches_refuse_the_same_overrides(transit: InProcessVault, code: int) -> None:
    await transit.ok("POST", "transit/keys/ed", json={"type": "ed25519"})
    batch = [{"input": b64("ok")}, {"input": "not base64!"}]
    for path in ("sign/ed", "hmac/ed"):
        r = await transit.call("POST", "transit/" + path,
                               json={"batch_input": batch, "partial_failure_response_code": code})
        assert r.status_code == 400, path
        assert r.json()["warnings"] == [OVERRIDE_WARNING]


@pytest.mark.parametrize("code", [200, 207, 422, 599])
async def test_final_statuses_are_still_honoured(transit: InProcessVault, code: int) -> None:
    batch = [{"plaintext": b64("ok")}, {"plaintext": "not base64!"}]
    r = await transit.call("POST", "transit/encrypt/k",
                           json={"batch_input": batch, "partial_failure_response_code": code})
    assert r.status_code == code
    assert r.json()["data"]["batch_results"][1]["error"] == "illegal base64 data at input byte 3"


# -- batch item integers ----------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["--5", "\u00b2", "1\u00b2", "-", "+-1", "1e3", "0x10", "9" * 19])
async def test_a_batch_key_version_that_is_no_integer_fails_its_item(transit: InProcessVault, text: str) -> None:
    # "--5" and "\u00b2" passed str.isdigit() and then crashed int(): a 500.
    batch = [{"plaintext": b64("x"), "key_version": text}, {"plaintext": b64("y")}]
    r = await transit.call("POST", "transit/encrypt/k", json={"batch_input": batch})
    assert r.status_code == 400
    results = r.json()["data"]["batch_results"]
    assert results[0]["error"] == "failed to parse batch input: 'key_version' must be an integer"
    assert "ciphertext" in results[1]


@pytest.mark.parametrize(("text", "version"), [("1", 1), (" 1 ", 1), ("+1", 1), ("0", 1), ("", 1)])
async def test_numeric_text_still_selects_a_version(transit: InProcessVault, text: str, version: int) -> None:
    body = await transit.ok("POST", "transit/encrypt/k",
                            json={"batch_input": [{"plaintext": b64("x"), "key_version": text}]})
    assert body["data"]["batch_results"][0]["key_version"] == version


# -- archived versions ------------------------------------------------------------------------------------


async def _archived_key(v: InProcessVault, name: str, key_type: str) -> None:
    """``name`` with versions 1..4 and min_decryption_version 3 (min_encryption_version stays 0)."""
    await v.ok("POST", f"transit/keys/{name}", json={"type": key_type, "exportable": True,
                                                       "allow_plaintext_backup": True})
    for _ in range(3):
        await v.ok("POST", f"transit/keys/{name}/rotate")
    await v.ok("POST", f"transit/keys/{name}/config", json={"min_decryption_version": 3})


@pytest.mark.parametrize("version", [1, 2])
async def test_archived_versions_cannot_encrypt_hmac_or_make_data_keys(transit: InProcessVault, version: int) -> None:
    # Vault's message: versions below min_decryption_version leave its live key map. Before the fix they
    # encrypted, producing ciphertexts that this same key refused to decrypt.
    await _archived_key(transit, "k", "aes256-gcm96")
    assert await _error(transit, "encrypt/k", {"plaintext": b64("x"), "key_version": version}) == "no such key version"
    assert await _error(transit, "datakey/wrapped/k", {"key_version": version}) == "no such key version"
    assert await _error(transit, "hmac/k", {"input": b64("x"), "key_version": version}) == "no such key version"
    ct = (await transit.ok("POST", "transit/encrypt/k", json={"plaintext": b64("x")}))["data"]["ciphertext"]
    assert await _error(transit, "rewrap/k", {"ciphertext": ct, "key_version": version}) == "no such key version"
    batch = {"batch_input": [{"plaintext": b64("x"), "key_version": version}, {"plaintext": b64("x")}]}
    r = await transit.call("POST", "transit/encrypt/k", json=batch)
    assert [item.get("error") for item in r.json()["data"]["batch_results"]] == ["no such key version", None]


async def test_archived_versions_cannot_sign(transit: InProcessVault) -> None:
    await _archived_key(transit, "ed", "ed25519")
    assert await _error(transit, "sign/ed", {"input": b64("x"), "key_version": 2}) == "no such key version"
    signed = await transit.ok("POST", "transit/sign/ed", json={"input": b64("x"), "key_version": 3})
    assert signed["data"]["signature"].startswith("vault:v3:")


async def test_archived_versions_come_back_with_min_decryption_version_and_stay_in_backups(
    transit: InProcessVault,
) -> None:
    await transit.ok("POST", "transit/keys/k", json={"exportable": True, "allow_plaintext_backup": True})
    old = (await transit.ok("POST", "transit/encrypt/k", json={"plaintext": b64("v1")}))["data"]["ciphertext"]
    for _ in range(3):
        await transit.ok("POST", "transit/keys/k/rotate")
    await transit.ok("POST", "transit/keys/k/config", json={"min_decryption_version": 3})
    backup = (await transit.ok("GET", "transit/backup/k"))["data"]["backup"]
    doc = json.loads(base64.b64decode(backup))
    assert doc["archived_keys"]["keys"][1]["key"]  # version 1's material is in the archive
    await transit.ok("POST", "transit/restore/copy", json={"backup": backup})
    await transit.ok("POST", "transit/keys/copy/config", json={"min_decryption_version": 1})
    body = await transit.ok("POST", "transit/decrypt/copy", json={"ciphertext": old})
    assert unb64(body["data"]["plaintext"]) == b"v1"
    assert (await transit.ok("POST", "transit/encrypt/copy",
                             json={"plaintext": b64("x"), "key_version": 1}))["data"]["key_version"] == 1


# -- restore ----------------------------------------------------------------------------------------------


def _backup(policy: dict[str, Any], archive: list[Any] | None = None) -> str:
    doc: dict[str, Any] = {"policy": {"name": "r", "type": 0, "latest_version": 1, "min_decryption_version": 1,
                                      **policy}}
    if archive is not None:
        doc["archived_keys"] = {"keys": archive}
    return base64.b64encode(json.dumps(doc).encode()).decode()


AES_ENTRY = {"key": b64(bytes(32)), "hmac_key": b64(bytes(32))}


@pytest.mark.parametrize("when", ["9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+00:01"])
async def test_restore_refuses_times_that_leave_the_calendar_in_utc(transit: InProcessVault, when: str) -> None:
    backup = _backup({"keys": {"1": {**AES_ENTRY, "time": when}}})
    message = await _error(transit, "restore", {"backup": backup})
    assert message == "invalid backup: policy.keys.1.time is not an RFC 3339 time"
    assert (await transit.call("GET", "transit/keys/r")).status_code == 404


async def test_restore_refuses_a_negative_rsa_exponent(transit: InProcessVault) -> None:
    entry = {"rsa_public_key": {"N": 2**2047 + 1, "E": -3}}
    backup = _backup({"type": 3, "keys": {"1": entry}})
    assert await _error(transit, "restore", {"backup": backup}) == "invalid backup: policy.keys.1 is not a valid rsa-2048 key"


async def test_restore_refuses_versions_without_material(transit: InProcessVault) -> None:
    # A claimed latest_version of 10**17 with one version used to restore; the key's next backup then
    # walked 10**17 archive slots.
    huge = 10**17
    backup = _backup({"latest_version": huge, "min_decryption_version": huge, "exportable": True,
                      "allow_plaintext_backup": True, "keys": {str(huge): AES_ENTRY}})
    assert await _error(transit, "restore", {"backup": backup}) == "invalid backup: no key material for version 1"
    gap = _backup({"latest_version": 3, "min_decryption_version": 3, "keys": {"3": AES_ENTRY}},
                  archive=[{}, AES_ENTRY, {}, AES_ENTRY])
    assert await _error(transit, "restore", {"backup": gap}) == "invalid backup: no key material for version 2"


async def test_restore_after_a_trim_needs_only_the_versions_kept(transit: InProcessVault) -> None:
    backup = _backup({"latest_version": 3, "min_decryption_version": 2, "min_encryption_version": 2,
                      "min_available_version": 2, "keys": {"2": AES_ENTRY, "3": AES_ENTRY}},
                     archive=[AES_ENTRY, AES_ENTRY])
    await transit.ok("POST", "transit/restore", json={"backup": backup})
    assert (await transit.ok("GET", "transit/keys/r"))["data"]["latest_version"] == 3


# -- auto_rotate_period -----------------------------------------------------------------------------------


async def test_rotation_periods_beyond_go_durations_are_refused(transit: InProcessVault) -> None:
    limit = (2**63 - 1) // 10**9
    message = f"auto rotate period must be at most {limit} seconds"
    assert await _error(transit, "keys/long", {"auto_rotate_period": limit + 1}) == message
    assert await _error(transit, "keys/long", {"auto_rotate_period": "9999999999999h"}) == message
    await transit.ok("POST", "transit/keys/k", json={"exportable": True, "allow_plaintext_backup": True})
    assert await _error(transit, "keys/k/config", {"auto_rotate_period": limit + 1}) == message
    # The longest period survives its own backup.
    await transit.ok("POST", "transit/keys/k/config", json={"auto_rotate_period": limit})
    backup = (await transit.ok("GET", "transit/backup/k"))["data"]["backup"]
    await transit.ok("POST", "transit/restore/k2", json={"backup": backup})
    assert (await transit.ok("GET", "transit/keys/k2"))["data"]["auto_rotate_period"] == limit


# -- nonces -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["encrypt/k", "decrypt/k", "rewrap/k"])
async def test_a_nonce_beside_a_batch_is_refused(transit: InProcessVault, path: str) -> None:
    ct = (await transit.ok("POST", "transit/encrypt/k", json={"plaintext": b64("x")}))["data"]["ciphertext"]
    item = {"plaintext": b64("x")} if path.startswith("encrypt") else {"ciphertext": ct}
    body = {"batch_input": [item], "nonce": b64(bytes(12))}
    assert await _error(transit, path, body) == "nonce provided when not allowed"


@pytest.mark.parametrize("path", ["encrypt/k", "decrypt/k", "rewrap/k", "datakey/wrapped/k", "datakey/plaintext/k"])
async def test_a_caller_nonce_is_refused_everywhere(transit: InProcessVault, path: str) -> None:
    await transit.ok("POST", "transit/keys/k", json={"derived": True, "convergent_encryption": True})
    ct = (await transit.ok("POST", "transit/encrypt/k",
                           json={"plaintext": b64("x"), "context": b64("c")}))["data"]["ciphertext"]
    body = {"plaintext": b64("x"), "ciphertext": ct, "context": b64("c"), "nonce": b64(bytes(12))}
    assert await _error(transit, path, body) == "nonce provided when not allowed"
    if not path.startswith("datakey"):
        item = {k: v for k, v in body.items() if k != ("ciphertext" if path.startswith("encrypt") else "plaintext")}
        r = await transit.call("POST", "transit/" + path, json={"batch_input": [item]})
        assert r.json()["data"]["batch_results"][0]["error"] == "nonce provided when not allowed"


# -- batch caps for asymmetric keys -----------------------------------------------------------------------


async def test_signature_batches_have_a_lower_default_cap(transit: InProcessVault) -> None:
    cap = settings.MAX_ASYMMETRIC_BATCH_ITEMS
    await transit.ok("POST", "transit/keys/ed", json={"type": "ed25519"})
    expected = f"batch_input has {cap + 1} items; the limit on this mount is {cap}"
    assert await _error(transit, "sign/ed", {"batch_input": [{"input": ""}] * (cap + 1)}) == expected
    signed = await transit.ok("POST", "transit/sign/ed", json={"batch_input": [{"input": ""}] * cap})
    sig = signed["data"]["batch_results"][0]["signature"]
    assert await _error(transit, "verify/ed", {"batch_input": [{"input": "", "signature": sig}] * (cap + 1)}) == expected
    # HMACs and symmetric keys keep the general cap.
    assert len((await transit.ok("POST", "transit/hmac/ed",
                                 json={"batch_input": [{"input": ""}] * (cap + 1)}))["data"]["batch_results"]) == cap + 1


async def test_rsa_decryption_batches_have_a_lower_default_cap(transit: InProcessVault) -> None:
    cap = settings.MAX_ASYMMETRIC_BATCH_ITEMS
    await transit.ok("POST", "transit/keys/rsa", json={"type": "rsa-2048"})
    ct = (await transit.ok("POST", "transit/encrypt/rsa", json={"plaintext": b64("x")}))["data"]["ciphertext"]
    expected = f"batch_input has {cap + 1} items; the limit on this mount is {cap}"
    for path in ("decrypt/rsa", "rewrap/rsa"):
        assert await _error(transit, path, {"batch_input": [{"ciphertext": ct}] * (cap + 1)}) == expected
    # Encrypting with the public key is cheap and keeps the general cap.
    big = await transit.ok("POST", "transit/encrypt/rsa", json={"batch_input": [{"plaintext": ""}] * (cap + 1)})
    assert len(big["data"]["batch_results"]) == cap + 1


async def test_the_mount_option_sets_the_asymmetric_cap_too(transit: InProcessVault) -> None:
    await transit.ok("POST", "sys/mounts/big", json={"type": "transit", "options": {"max_batch_items": "1500"}})
    await transit.ok("POST", "transit/keys/ed", json={"type": "ed25519"})
    await transit.ok("POST", "big/keys/ed", json={"type": "ed25519"})
    body = await transit.ok("POST", "big/sign/ed", json={"batch_input": [{"input": ""}] * 1500})
    assert len(body["data"]["batch_results"]) == 1500


# -- the worker's caches ----------------------------------------------------------------------------------


async def test_creating_keys_never_grows_the_material_cache_past_its_limit(
    transit: InProcessVault, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Creation and rotation cached material without looking at the limit (only reads did).
    monkeypatch.setattr(store, "_MATERIAL_CACHE_LIMIT", 8)
    for i in range(20):
        await transit.ok("POST", f"transit/keys/k{i}")
        await transit.ok("POST", f"transit/keys/k{i}/rotate")
    keys = transit.node.vault("").keys
    assert keys is not None
    assert len(keys.engine_cache) <= 8
    body = await transit.ok("POST", "transit/encrypt/k0", json={"plaintext": b64("still works")})
    plain = await transit.ok("POST", "transit/decrypt/k0", json={"ciphertext": body["data"]["ciphertext"]})
    assert unb64(plain["data"]["plaintext"]) == b"still works"


# -- one answer for every ciphertext that does not authenticate --------------------------------------------

REJECTED = "cipher: message authentication failed"


def _variants(blob: bytes) -> list[bytes]:
    """Tampered forms of ``blob``: every region flipped, truncations at every boundary, an extension."""
    out = [blob + b"\x00", b"", b"\x00", bytes(len(blob)), b"\xff" * len(blob)]
    for cut in (1, 12, 16, 24, 27, 28, 39, 40, len(blob) - 1):
        if cut < len(blob):
            out.append(blob[:cut])
    for pos in (0, 11, 12, 23, 24, len(blob) // 2, len(blob) - 17, len(blob) - 16, len(blob) - 1):
        flipped = bytearray(blob)
        flipped[pos % len(blob)] ^= 0x01
        out.append(bytes(flipped))
    return out


@pytest.mark.parametrize("spec", [
    {"type": "aes128-gcm96"}, {"type": "aes256-gcm96"}, {"type": "chacha20-poly1305"},
    {"type": "xchacha20-poly1305"}, {"type": "rsa-2048"}, {"derived": True},
    {"derived": True, "convergent_encryption": True}, {"type": "xchacha20-poly1305", "derived": True},
], ids=lambda spec: "-".join(str(v) for v in spec.values()))
async def test_every_unauthentic_ciphertext_gets_the_one_answer(transit: InProcessVault, spec: dict[str, Any]) -> None:
    await transit.ok("POST", "transit/keys/k", json=spec)
    await transit.ok("POST", "transit/keys/twin", json=spec)
    aead = spec.get("type", "aes256-gcm96") != "rsa-2048"
    context = {"context": b64("right")} if spec.get("derived") else {}
    extra = {"associated_data": b64("row 1")} if aead else {}
    body = await transit.ok("POST", "transit/encrypt/k", json={"plaintext": b64("secret"), **context, **extra})
    blob = unb64(body["data"]["ciphertext"].removeprefix("vault:v1:"))
    requests: list[tuple[str, dict[str, Any]]] = [
        ("twin", {"ciphertext": body["data"]["ciphertext"], **context, **extra}),  # another key
    ]
    requests += [("k", {"ciphertext": "vault:v1:" + b64(b), **context, **extra}) for b in _variants(blob)]
    if spec.get("derived"):
        requests.append(("k", {"ciphertext": body["data"]["ciphertext"], "context": b64("wrong"), **extra}))
    if aead:
        requests.append(("k", {"ciphertext": body["data"]["ciphertext"], **context, "associated_data": b64("row 2")}))
        requests.append(("k", {"ciphertext": body["data"]["ciphertext"], **context}))
    for name, request in requests:
        for op in ("decrypt", "rewrap"):
            r = await transit.call("POST", f"transit/{op}/{name}", json=request)
            assert (r.status_code, r.json().get("errors")) == (400, [REJECTED]), (op, request)
        batch = await transit.call("POST", f"transit/decrypt/{name}", json={"batch_input": [request]})
        assert batch.json()["data"]["batch_results"][0]["error"] == REJECTED


# -- the BYOK wrapping key stays out of reach --------------------------------------------------------------


async def test_no_key_path_reaches_the_wrapping_key(transit: InProcessVault) -> None:
    public = (await transit.ok("GET", "transit/wrapping_key"))["data"]["public_key"]
    assert public.startswith("-----BEGIN PUBLIC KEY-----") and "PRIVATE" not in public
    assert (await transit.call("LIST", "transit/keys")).status_code == 404  # no keys: the wrapping key is not one
    for kind in ("encryption-key", "signing-key", "hmac-key", "public-key"):
        assert (await transit.call("GET", f"transit/export/{kind}/wrapping-key")).status_code == 404
    assert (await transit.call("GET", "transit/keys/wrapping-key")).status_code == 404
    assert await _error(transit, "decrypt/wrapping-key", {"ciphertext": "vault:v1:AAAA"}) == "encryption key not found"
    r = await transit.call("GET", "transit/backup/wrapping-key")
    assert r.status_code == 400 and r.json()["errors"] == ['key "wrapping-key" not found']
    # A key of that name is an ordinary, separate key.
    await transit.ok("POST", "transit/keys/wrapping-key", json={"type": "rsa-2048"})
    assert (await transit.ok("GET", "transit/wrapping_key"))["data"]["public_key"] == public
