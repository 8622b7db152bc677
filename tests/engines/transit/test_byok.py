"""Transit BYOK through the API: ``wrapping_key``, ``keys/:name/import``, ``keys/:name/import_version``.

Keys are wrapped here exactly as ``vault transit import`` wraps them (RSA-OAEP SHA-256 of a fresh
AES-256 key, then AES-KWP of the target key), with ``cryptography`` alone. Every imported key is then
used through the API and the results are checked against the original key material independently:
ciphertexts opened here, signatures verified here, and the reverse.
"""

from __future__ import annotations

import functools
import hmac as std_hmac
import os
import struct
from hashlib import sha256
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives.keywrap import aes_key_wrap_with_padding
from nacl import bindings as sodium

from tests.engines.transit.conftest import b64, unb64
from tests.support.vault import InProcessVault

OAEP_SHA256 = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
_HASHES = {"sha1": hashes.SHA1, "sha224": hashes.SHA224, "sha256": hashes.SHA256, "sha384": hashes.SHA384,
           "sha512": hashes.SHA512}


# -- the client side ---------------------------------------------------------------------------------------


async def wrapping_pem(vault: InProcessVault, mount: str = "transit") -> str:
    body = await vault.ok("GET", f"{mount}/wrapping_key")
    pem: str = body["data"]["public_key"]
    return pem


def wrap(pem: str, target: bytes, hash_name: str = "sha256", ephemeral: bytes | None = None) -> str:
    """``vault transit import``'s ciphertext for ``target`` under the wrapping key ``pem``."""
    public = serialization.load_pem_public_key(pem.encode())
    assert isinstance(public, rsa.RSAPublicKey)
    eph = os.urandom(32) if ephemeral is None else ephemeral
    algorithm = _HASHES[hash_name]()
    wrapped_eph = public.encrypt(eph, padding.OAEP(mgf=padding.MGF1(algorithm), algorithm=algorithm, label=None))
    return b64(wrapped_eph + aes_key_wrap_with_padding(eph, target))


def pkcs8(key: Any) -> bytes:
    der: bytes = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                   serialization.NoEncryption())
    return der


def public_pem(key: Any) -> str:
    text: str = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return text


@functools.cache
def rsa_key(bits: int, index: int = 0) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


async def import_key(vault: InProcessVault, name: str, target: bytes, **params: Any) -> None:
    pem = await wrapping_pem(vault)
    r = await vault.call("POST", f"transit/keys/{name}/import", json={"ciphertext": wrap(pem, target), **params})
    assert r.status_code == 204, r.text


async def error_of(vault: InProcessVault, path: str, body: dict[str, Any]) -> str:
    r = await vault.call("POST", path, json=body)
    assert r.status_code == 400, (path, r.status_code, r.text)
    errors: list[str] = r.json()["errors"]
    assert len(errors) == 1
    return errors[0]


async def encrypt(vault: InProcessVault, name: str, plaintext: bytes, **params: Any) -> str:
    body = await vault.ok("POST", f"transit/encrypt/{name}", json={"plaintext": b64(plaintext), **params})
    ciphertext: str = body["data"]["ciphertext"]
    return ciphertext


async def decrypt(vault: InProcessVault, name: str, ciphertext: str, **params: Any) -> bytes:
    body = await vault.ok("POST", f"transit/decrypt/{name}", json={"ciphertext": ciphertext, **params})
    return unb64(body["data"]["plaintext"])


def split(ciphertext: str) -> tuple[int, bytes]:
    _, version, payload = ciphertext.split(":", 2)
    return int(version[1:]), unb64(payload)


def seal_locally(key_type: str, key: bytes, plaintext: bytes) -> bytes:
    """Vault's layout, nonce || ciphertext || tag, made without the server."""
    if key_type == "xchacha20-poly1305":
        nonce = os.urandom(24)
        out: bytes = sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(plaintext, None, nonce, key)
        return nonce + out
    nonce = os.urandom(12)
    aead = ChaCha20Poly1305(key) if key_type == "chacha20-poly1305" else AESGCM(key)
    return nonce + aead.encrypt(nonce, plaintext, None)


def open_locally(key_type: str, key: bytes, blob: bytes) -> bytes:
    if key_type == "xchacha20-poly1305":
        out: bytes = sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(blob[24:], None, blob[:24], key)
        return out
    aead = ChaCha20Poly1305(key) if key_type == "chacha20-poly1305" else AESGCM(key)
    return aead.decrypt(blob[:12], blob[12:], None)


# -- wrapping_key --------------------------------------------------------------------------------------------


async def test_wrapping_key_is_a_stable_rsa_4096_public_key_per_mount(transit: InProcessVault) -> None:
    first = await wrapping_pem(transit)
    assert first.startswith("-----BEGIN PUBLIC KEY-----\n") and first.endswith("-----END PUBLIC KEY-----\n")
    public = serialization.load_pem_public_key(first.encode())
    assert isinstance(public, rsa.RSAPublicKey) and public.key_size == 4096
    assert await wrapping_pem(transit) == first
    await transit.ok("POST", "sys/mounts/transit2", json={"type": "transit"})
    assert await wrapping_pem(transit, "transit2") != first


async def test_wrapping_key_is_not_a_transit_key(transit: InProcessVault) -> None:
    await wrapping_pem(transit)
    r = await transit.call("LIST", "transit/keys")
    assert r.status_code == 404
    await transit.ok("POST", "transit/keys/mine")
    assert (await transit.ok("LIST", "transit/keys"))["data"]["keys"] == ["mine"]
    for name in ("wrapping-key", "import", "wrapping_key"):
        assert (await transit.call("GET", f"transit/keys/{name}")).status_code == 404
    r = await transit.call("GET", "transit/export/public-key/wrapping-key")
    assert r.status_code in (400, 404)


async def test_wrapping_key_survives_a_failed_import_and_is_created_by_import(transit: InProcessVault) -> None:
    # An import before any wrapping_key read creates the key (Vault's upsert); the failed request rolls
    # it back with everything else, and a later read creates one that then stays.
    r = await transit.call("POST", "transit/keys/k/import", json={"ciphertext": b64(os.urandom(600))})
    assert r.status_code == 400 and r.json()["errors"] == ["crypto/rsa: decryption error"]
    pem = await wrapping_pem(transit)
    await import_key(transit, "k", os.urandom(32))
    assert await wrapping_pem(transit) == pem


# -- symmetric and HMAC keys ---------------------------------------------------------------------------------


@pytest.mark.parametrize("key_type", ["aes128-gcm96", "aes256-gcm96", "chacha20-poly1305", "xchacha20-poly1305"])
async def test_imported_symmetric_key_encrypts_with_the_original_bytes(
    transit: InProcessVault, key_type: str
) -> None:
    key = os.urandom(16 if key_type == "aes128-gcm96" else 32)
    await import_key(transit, "sym", key, type=key_type)
    ciphertext = await encrypt(transit, "sym", b"attack at dawn")
    version, blob = split(ciphertext)
    assert version == 1
    assert open_locally(key_type, key, blob) == b"attack at dawn"
    assert await decrypt(transit, "sym", "vault:v1:" + b64(seal_locally(key_type, key, b"made here"))) == b"made here"
    data = (await transit.ok("GET", "transit/keys/sym"))["data"]
    assert data["type"] == key_type and data["imported_key"] is True
    assert data["imported_key_allow_rotation"] is False and data["latest_version"] == 1


async def test_type_is_case_insensitive_and_every_oaep_hash_works(transit: InProcessVault) -> None:
    pem = await wrapping_pem(transit)
    for i, hash_name in enumerate(_HASHES):
        key = os.urandom(32)
        r = await transit.call("POST", f"transit/keys/h{i}/import", json={
            "ciphertext": wrap(pem, key, hash_name), "hash_function": hash_name.upper(), "type": "AES256-GCM96"})
        assert r.status_code == 204, r.text
        assert open_locally("aes256-gcm96", key, split(await encrypt(transit, f"h{i}", b"x"))[1]) == b"x"


async def test_line_wrapped_base64_is_accepted_as_go_decodes_it(transit: InProcessVault) -> None:
    key = os.urandom(32)
    text = wrap(await wrapping_pem(transit), key)
    wrapped = "\n".join(text[i:i + 64] for i in range(0, len(text), 64)) + "\n"
    r = await transit.call("POST", "transit/keys/lines/import", json={"ciphertext": wrapped})
    assert r.status_code == 204, r.text
    assert open_locally("aes256-gcm96", key, split(await encrypt(transit, "lines", b"y"))[1]) == b"y"


async def test_imported_hmac_key_macs_with_the_original_bytes(transit: InProcessVault) -> None:
    key = os.urandom(48)
    await import_key(transit, "mac", key, type="hmac")
    data = (await transit.ok("GET", "transit/keys/mac"))["data"]
    assert data["key_size"] == 48
    body = await transit.ok("POST", "transit/hmac/mac", json={"input": b64(b"message")})
    expected = std_hmac.new(key, b"message", sha256).digest()
    assert body["data"]["hmac"] == "vault:v1:" + b64(expected)
    # A new version of another size changes the key's size, as in Vault.
    key2 = os.urandom(64)
    pem = await wrapping_pem(transit)
    r = await transit.call("POST", "transit/keys/mac/import_version", json={"ciphertext": wrap(pem, key2)})
    assert r.status_code == 204, r.text
    data = (await transit.ok("GET", "transit/keys/mac"))["data"]
    assert data["key_size"] == 64 and data["latest_version"] == 2
    body = await transit.ok("POST", "transit/hmac/mac", json={"input": b64(b"message")})
    assert body["data"]["hmac"] == "vault:v2:" + b64(std_hmac.new(key2, b"message", sha256).digest())


async def test_derived_import_uses_vaults_legacy_counter_kdf(transit: InProcessVault) -> None:
    key = os.urandom(32)
    await import_key(transit, "der", key, derived=True)
    data = (await transit.ok("GET", "transit/keys/der"))["data"]
    assert data["derived"] is True and data["kdf"] == "hmac-sha256-counter"
    context = b"tenant-7"
    ciphertext = await encrypt(transit, "der", b"per-context", context=b64(context))
    # NIST SP 800-108 counter mode, one HMAC-SHA256 block: i=0 || label || L=256 (Vault's kdf.CounterMode).
    derived = std_hmac.new(key, struct.pack(">I", 0) + context + struct.pack(">I", 256), sha256).digest()
    assert open_locally("aes256-gcm96", derived, split(ciphertext)[1]) == b"per-context"


async def test_import_version_adds_versions_and_old_ciphertexts_still_decrypt(transit: InProcessVault) -> None:
    k1, k2 = os.urandom(32), os.urandom(32)
    await import_key(transit, "multi", k1)
    old = await encrypt(transit, "multi", b"old")
    pem = await wrapping_pem(transit)
    r = await transit.call("POST", "transit/keys/multi/import_version", json={"ciphertext": wrap(pem, k2)})
    assert r.status_code == 204, r.text
    new = await encrypt(transit, "multi", b"new")
    assert split(new)[0] == 2 and open_locally("aes256-gcm96", k2, split(new)[1]) == b"new"
    assert await decrypt(transit, "multi", old) == b"old"
    data = (await transit.ok("GET", "transit/keys/multi"))["data"]
    assert data["latest_version"] == 2 and data["imported_key"] is True


async def test_rotation_of_imported_keys_needs_allow_rotation(transit: InProcessVault) -> None:
    await import_key(transit, "fixed", os.urandom(32))
    assert await error_of(transit, "transit/keys/fixed/rotate", {}) == (
        "imported key fixed does not allow rotation within Vault")
    await import_key(transit, "free", os.urandom(32), allow_rotation=True, auto_rotate_period="2h",
                     exportable=True, allow_plaintext_backup=True)
    data = (await transit.ok("GET", "transit/keys/free"))["data"]
    assert (data["auto_rotate_period"], data["exportable"], data["allow_plaintext_backup"]) == (7200, True, True)
    assert data["imported_key_allow_rotation"] is True
    rotated = (await transit.ok("POST", "transit/keys/free/rotate"))["data"]
    assert rotated["latest_version"] == 2 and rotated["imported_key"] is False
    # Once rotated inside the server, the key is no longer "imported": import_version refuses it.
    pem = await wrapping_pem(transit)
    assert await error_of(transit, "transit/keys/free/import_version", {"ciphertext": wrap(pem, os.urandom(32))}) == (
        "the import_version endpoint can only be used with an imported key")


# -- asymmetric keys ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("bits", [2048, 3072, 4096])
async def test_imported_rsa_key_encrypts_decrypts_and_signs_as_the_original(
    transit: InProcessVault, bits: int
) -> None:
    key = rsa_key(bits)
    await import_key(transit, "rsa", pkcs8(key), type=f"rsa-{bits}")
    data = (await transit.ok("GET", "transit/keys/rsa"))["data"]
    assert data["keys"]["1"]["public_key"] == public_pem(key)
    version, blob = split(await encrypt(transit, "rsa", b"for the key holder"))
    assert version == 1 and key.decrypt(blob, OAEP_SHA256) == b"for the key holder"
    local = key.public_key().encrypt(b"for the server", OAEP_SHA256)
    assert await decrypt(transit, "rsa", "vault:v1:" + b64(local)) == b"for the server"
    body = await transit.ok("POST", "transit/sign/rsa", json={"input": b64(b"doc"), "signature_algorithm": "pkcs1v15"})
    signature = split(body["data"]["signature"])[1]
    key.public_key().verify(signature, b"doc", padding.PKCS1v15(), hashes.SHA256())


@pytest.mark.parametrize(("key_type", "curve", "digest"), [
    ("ecdsa-p256", ec.SECP256R1(), hashes.SHA256()),
    ("ecdsa-p384", ec.SECP384R1(), hashes.SHA384()),
    ("ecdsa-p521", ec.SECP521R1(), hashes.SHA512()),
])
async def test_imported_ecdsa_key_signs_as_the_original(
    transit: InProcessVault, key_type: str, curve: ec.EllipticCurve, digest: hashes.HashAlgorithm
) -> None:
    key = ec.generate_private_key(curve)
    await import_key(transit, "ec", pkcs8(key), type=key_type)
    data = (await transit.ok("GET", "transit/keys/ec"))["data"]
    assert data["keys"]["1"]["public_key"] == public_pem(key)
    algorithm = {"SHA256": "sha2-256", "SHA384": "sha2-384", "SHA512": "sha2-512"}[digest.name.upper()]
    body = await transit.ok("POST", "transit/sign/ec", json={"input": b64(b"doc"), "hash_algorithm": algorithm})
    key.public_key().verify(split(body["data"]["signature"])[1], b"doc", ec.ECDSA(digest))
    local = key.sign(b"doc2", ec.ECDSA(digest))
    body = await transit.ok("POST", "transit/verify/ec", json={
        "input": b64(b"doc2"), "signature": "vault:v1:" + b64(local), "hash_algorithm": algorithm})
    assert body["data"]["valid"] is True


async def test_imported_ed25519_key_signs_as_the_original(transit: InProcessVault) -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    await import_key(transit, "ed", pkcs8(key), type="ed25519")
    data = (await transit.ok("GET", "transit/keys/ed"))["data"]
    assert unb64(data["keys"]["1"]["public_key"]) == key.public_key().public_bytes_raw()
    body = await transit.ok("POST", "transit/sign/ed", json={"input": b64(b"doc")})
    key.public_key().verify(split(body["data"]["signature"])[1], b"doc")


async def test_public_key_only_import_then_private_key_for_that_version(transit: InProcessVault) -> None:
    key = rsa_key(2048)
    r = await transit.call("POST", "transit/keys/pub/import", json={"public_key": public_pem(key), "type": "rsa-2048"})
    assert r.status_code == 204, r.text
    before = (await transit.ok("GET", "transit/keys/pub"))["data"]
    assert before["keys"]["1"]["public_key"] == public_pem(key)
    # Encrypt and verify work with the public key alone; decrypt and sign need the private key.
    ciphertext = await encrypt(transit, "pub", b"sealed for the holder")
    assert key.decrypt(split(ciphertext)[1], OAEP_SHA256) == b"sealed for the holder"
    signature = key.sign(b"doc", padding.PKCS1v15(), hashes.SHA256())
    body = await transit.ok("POST", "transit/verify/pub", json={
        "input": b64(b"doc"), "signature": "vault:v1:" + b64(signature), "signature_algorithm": "pkcs1v15"})
    assert body["data"]["valid"] is True
    r = await transit.call("POST", "transit/decrypt/pub", json={"ciphertext": ciphertext})
    assert r.status_code == 400
    r = await transit.call("POST", "transit/sign/pub", json={"input": b64(b"doc")})
    assert r.status_code == 400
    pem = await wrapping_pem(transit)
    assert await error_of(transit, "transit/keys/pub/import_version", {
        "ciphertext": wrap(pem, pkcs8(rsa_key(2048, 1))), "version": 1}) == "cannot import key, key pair does not match"
    assert await error_of(transit, "transit/keys/pub/import_version", {
        "public_key": public_pem(key), "version": 1}) == (
        "cannot add a public key to a key version that already has a public key set")
    r = await transit.call("POST", "transit/keys/pub/import_version", json={
        "ciphertext": wrap(pem, pkcs8(key)), "version": 1})
    assert r.status_code == 204, r.text
    after = (await transit.ok("GET", "transit/keys/pub"))["data"]
    assert after["latest_version"] == 1
    assert after["keys"]["1"]["creation_time"] == before["keys"]["1"]["creation_time"]
    assert await decrypt(transit, "pub", ciphertext) == b"sealed for the holder"
    body = await transit.ok("POST", "transit/sign/pub", json={"input": b64(b"doc"), "signature_algorithm": "pkcs1v15"})
    assert split(body["data"]["signature"])[1] == signature  # PKCS#1 v1.5 is deterministic
    assert await error_of(transit, "transit/keys/pub/import_version", {
        "ciphertext": wrap(pem, pkcs8(key)), "version": 1}) == "private key imported, key version cannot be updated"


async def test_import_version_without_version_completes_a_matching_latest(transit: InProcessVault) -> None:
    mine, other = ed25519.Ed25519PrivateKey.generate(), ed25519.Ed25519PrivateKey.generate()
    r = await transit.call("POST", "transit/keys/edp/import", json={"public_key": public_pem(mine), "type": "ed25519"})
    assert r.status_code == 204, r.text
    pem = await wrapping_pem(transit)
    # A key that does not match the public-only latest version becomes a new version (as Vault does)...
    r = await transit.call("POST", "transit/keys/edp/import_version", json={"ciphertext": wrap(pem, pkcs8(other))})
    assert r.status_code == 204, r.text
    data = (await transit.ok("GET", "transit/keys/edp"))["data"]
    assert data["latest_version"] == 2
    assert unb64(data["keys"]["2"]["public_key"]) == other.public_key().public_bytes_raw()
    # ...and a public-only latest version is completed in place by its own private key.
    r = await transit.call("POST", "transit/keys/edp/import_version", json={"public_key": public_pem(mine)})
    assert r.status_code == 204, r.text
    r = await transit.call("POST", "transit/keys/edp/import_version", json={"ciphertext": wrap(pem, pkcs8(mine))})
    assert r.status_code == 204, r.text
    data = (await transit.ok("GET", "transit/keys/edp"))["data"]
    assert data["latest_version"] == 3
    body = await transit.ok("POST", "transit/sign/edp", json={"input": b64(b"doc")})
    assert split(body["data"]["signature"])[0] == 3
    mine.public_key().verify(split(body["data"]["signature"])[1], b"doc")
    r = await transit.call("POST", "transit/sign/edp", json={"input": b64(b"doc"), "key_version": 1})
    assert r.status_code == 400


# -- refusals -----------------------------------------------------------------------------------------------


async def test_import_refusals_in_vaults_words(transit: InProcessVault) -> None:
    pem = await wrapping_pem(transit)
    good = wrap(pem, os.urandom(32))
    blob = unb64(good)
    r2048 = rsa_key(2048)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"ciphertext": good, "convergent_encryption": False},
         "import cannot be used on keys with convergent encryption enabled"),
        ({"ciphertext": good, "auto_rotate_period": "2h"},
         "allow_rotation must be set to true if auto-rotation is enabled"),
        ({"ciphertext": good, "auto_rotate_period": "10m", "allow_rotation": True},
         "auto rotate period must be 0 to disable or at least an hour"),
        ({"ciphertext": good, "type": "bogus"}, "unknown key type: bogus"),
        ({"ciphertext": good, "hash_function": "md5"}, "unknown hash function: md5"),
        ({"ciphertext": "!!!!"}, "illegal base64 data at input byte 0"),
        ({"ciphertext": ""}, "provided ciphertext is too short"),
        ({"ciphertext": b64(blob[:512])}, "provided ciphertext is too short"),
        ({"ciphertext": b64(os.urandom(520))}, "crypto/rsa: decryption error"),
        ({"ciphertext": wrap(pem, os.urandom(32), "sha1")}, "crypto/rsa: decryption error"),
        ({"ciphertext": wrap(pem, os.urandom(16), ephemeral=os.urandom(16))},
         "expected ephemeral AES key to be 256-bit"),
        ({"ciphertext": b64(blob[:-1] + bytes([blob[-1] ^ 1]))}, "kwp: unwrap failed integrity check"),
        ({"ciphertext": b64(blob[:512] + blob[512:528])}, "kwp: wrapped key size too small"),
        ({"ciphertext": wrap(pem, os.urandom(16))}, "error importing key: invalid key size 16 bytes for key type aes256-gcm96"),
        ({"ciphertext": wrap(pem, os.urandom(20)), "type": "hmac"},
         "error importing key: invalid key size 20 bytes for key type hmac"),
        ({"ciphertext": wrap(pem, pkcs8(r2048)), "type": "rsa-3072"},
         "error importing key: invalid key size: expected 384 bytes, got 256 bytes"),
        ({"ciphertext": wrap(pem, pkcs8(r2048)), "type": "ecdsa-p256"},
         "error importing key: invalid key type: expected ecdsa-p256, got *rsa.PrivateKey"),
        ({"ciphertext": wrap(pem, pkcs8(ec.generate_private_key(ec.SECP384R1()))), "type": "ecdsa-p256"},
         "error importing key: invalid curve: expected P-256, got P-384"),
        ({"public_key": public_pem(r2048)}, "provided type does not support public_key import"),
        ({"type": "rsa-2048"}, "error importing key: error parsing public key: not in PEM format"),
        ({"public_key": "x", "type": "rsa-2048"}, "error importing key: error parsing public key: not in PEM format"),
        ({"public_key": public_pem(ed25519.Ed25519PrivateKey.generate()), "type": "ed25519", "derived": True},
         "error importing key: unable to import only public key for derived Ed25519 key: imported key should "
         "not be an Ed25519 key pair but is instead an HKDF key"),
    ]
    for body, message in cases:
        assert await error_of(transit, "transit/keys/new/import", body) == message, body
    # None of those wrote anything.
    assert (await transit.call("GET", "transit/keys/new")).status_code == 404
    await import_key(transit, "new", os.urandom(32))
    for body in ({"ciphertext": good}, {"public_key": "x"}, {}):
        assert await error_of(transit, "transit/keys/new/import", body) == (
            "the import path cannot be used with an existing key; use import-version to rotate an existing "
            "imported key")
    await transit.ok("POST", "transit/keys/made-here")
    message = await error_of(transit, "transit/keys/made-here/import", {"ciphertext": good})
    assert message.startswith("the import path cannot be used with an existing key")
    assert (await transit.call("POST", "transit/keys/bad%20name/import", json={"ciphertext": good})).status_code == 404


async def test_ciphertext_wins_over_public_key_as_in_vault(transit: InProcessVault) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    other = ec.generate_private_key(ec.SECP256R1())
    pem = await wrapping_pem(transit)
    r = await transit.call("POST", "transit/keys/both/import", json={
        "ciphertext": wrap(pem, pkcs8(key)), "public_key": public_pem(other), "type": "ecdsa-p256"})
    assert r.status_code == 204, r.text
    data = (await transit.ok("GET", "transit/keys/both"))["data"]
    assert data["keys"]["1"]["public_key"] == public_pem(key)
    await transit.ok("POST", "transit/sign/both", json={"input": b64(b"has a private key")})


async def test_import_version_refusals_in_vaults_words(transit: InProcessVault) -> None:
    pem = await wrapping_pem(transit)
    good = wrap(pem, os.urandom(32))
    path = "transit/keys/{}/import_version"
    assert await error_of(transit, path.format("ghost"), {"ciphertext": good}) == (
        "no key found with name ghost; to import a new key, use the import/ endpoint")
    await transit.ok("POST", "transit/keys/native")
    assert await error_of(transit, path.format("native"), {"ciphertext": good}) == (
        "the import_version endpoint can only be used with an imported key")
    await import_key(transit, "aes", os.urandom(32))
    assert await error_of(transit, path.format("aes"), {"ciphertext": good, "version": 1}) == (
        "provided type does not support importing key versions")
    assert await error_of(transit, path.format("aes"), {"ciphertext": good, "version": 7}) == "no such key version"
    assert await error_of(transit, path.format("aes"), {"public_key": "x"}) == (
        "provided type does not support public_key import")
    assert await error_of(transit, path.format("aes"), {"ciphertext": wrap(pem, os.urandom(31))}) == (
        "invalid key size 31 bytes for key type aes256-gcm96")
    assert await error_of(transit, path.format("aes"), {"ciphertext": good, "hash_function": "sha3"}) == (
        "unknown hash function: sha3")
    key = ec.generate_private_key(ec.SECP256R1())
    await import_key(transit, "ec", pkcs8(key), type="ecdsa-p256")
    assert await error_of(transit, path.format("ec"), {"public_key": public_pem(key), "version": 1}) == (
        "private key imported, key version cannot be updated")
    assert await error_of(transit, path.format("ec"), {"ciphertext": wrap(pem, pkcs8(rsa_key(2048)))}) == (
        "invalid key type: expected ecdsa-p256, got *rsa.PrivateKey")
    data = (await transit.ok("GET", "transit/keys/ec"))["data"]
    assert data["latest_version"] == 1
