"""``export/:type/:name[/:version]`` over the API: what may be exported, in which encoding, with Vault's refusals.

Exported keys are checked by using them outside strongroom: an exported AES key opens a ciphertext the
engine made, an exported RSA private key decrypts an engine ciphertext, public keys match the key read.
"""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tests.engines.transit.conftest import b64, unb64
from tests.support.vault import InProcessVault


async def _key(transit: InProcessVault, name: str, exportable: bool = True, **kw: Any) -> None:
    await transit.ok("POST", f"transit/keys/{name}", json={"exportable": exportable, **kw})


async def _error(transit: InProcessVault, path: str, status: int = 400) -> str:
    r = await transit.call("GET", path)
    assert r.status_code == status, r.text
    errors: list[str] = r.json()["errors"]
    return errors[0] if errors else ""


async def test_exported_aes_key_opens_engine_ciphertexts(transit: InProcessVault) -> None:
    await _key(transit, "app")
    await transit.ok("POST", "transit/keys/app/rotate")
    ct = (await transit.ok("POST", "transit/encrypt/app", json={"plaintext": b64("hello")}))["data"]["ciphertext"]
    assert ct.startswith("vault:v2:")
    body = await transit.ok("GET", "transit/export/encryption-key/app")
    assert body["data"]["name"] == "app" and body["data"]["type"] == "aes256-gcm96"
    assert set(body["data"]["keys"]) == {"1", "2"}
    blob = unb64(ct.split(":")[2])
    assert AESGCM(unb64(body["data"]["keys"]["2"])).decrypt(blob[:12], blob[12:], None) == b"hello"
    raw = await transit.ok("GET", "transit/export/encryption-key/app/latest?format=raw")
    assert raw["data"]["keys"] == {"2": body["data"]["keys"]["2"]}
    assert (await transit.ok("GET", "transit/export/encryption-key/app/v1"))["data"]["keys"] == {
        "1": body["data"]["keys"]["1"]}


async def test_exported_rsa_private_key_decrypts_and_matches_the_public_key(transit: InProcessVault) -> None:
    await _key(transit, "r", type="rsa-2048")
    ct = (await transit.ok("POST", "transit/encrypt/r", json={"plaintext": b64("secret")}))["data"]["ciphertext"]
    pem = (await transit.ok("GET", "transit/export/encryption-key/r/1"))["data"]["keys"]["1"]
    assert pem.startswith("-----BEGIN RSA PRIVATE KEY-----\n") and pem.endswith("-----END RSA PRIVATE KEY-----\n")
    private = serialization.load_pem_private_key(pem.encode(), None)
    assert isinstance(private, rsa.RSAPrivateKey)
    oaep = padding.OAEP(padding.MGF1(hashes.SHA256()), hashes.SHA256(), None)
    assert private.decrypt(unb64(ct.split(":")[2]), oaep) == b"secret"
    pkcs8 = (await transit.ok("GET", "transit/export/signing-key/r?format=pem"))["data"]["keys"]["1"]
    assert pkcs8.startswith("-----BEGIN PRIVATE KEY-----\n")
    der = (await transit.ok("GET", "transit/export/signing-key/r?format=der"))["data"]["keys"]["1"]
    assert unb64(der) == private.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption())
    public = (await transit.ok("GET", "transit/export/public-key/r"))["data"]["keys"]["1"]
    read = (await transit.ok("GET", "transit/keys/r"))["data"]["keys"]["1"]["public_key"]
    assert public == read


async def test_ecdsa_and_ed25519_exports(transit: InProcessVault) -> None:
    await _key(transit, "ec", type="ecdsa-p384")
    sec1 = (await transit.ok("GET", "transit/export/signing-key/ec"))["data"]["keys"]["1"]
    assert sec1.startswith("-----BEGIN EC PRIVATE KEY-----") and not sec1.endswith("\n")
    private = serialization.load_pem_private_key(sec1.encode(), None)
    assert isinstance(private, ec.EllipticCurvePrivateKey) and private.curve.name == "secp384r1"
    public = (await transit.ok("GET", "transit/export/public-key/ec"))["data"]["keys"]["1"]
    assert public == private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode().strip()
    await _key(transit, "ed", type="ed25519")
    seed_pub = unb64((await transit.ok("GET", "transit/export/signing-key/ed"))["data"]["keys"]["1"])
    public_raw = (await transit.ok("GET", "transit/export/public-key/ed"))["data"]["keys"]["1"]
    assert len(seed_pub) == 64 and seed_pub[32:] == unb64(public_raw)
    hmac_key = (await transit.ok("GET", "transit/export/hmac-key/ed"))["data"]["keys"]["1"]
    assert len(unb64(hmac_key)) == 32


async def test_public_keys_need_no_exportable_flag_but_private_keys_do(transit: InProcessVault) -> None:
    await _key(transit, "locked", exportable=False, type="ecdsa-p256")
    assert (await transit.ok("GET", "transit/export/public-key/locked"))["data"]["keys"]["1"].startswith(
        "-----BEGIN PUBLIC KEY-----")
    for kind in ("signing-key", "hmac-key", "encryption-key"):
        assert await _error(transit, f"transit/export/{kind}/locked") == "private key material is not exportable"


async def test_hmac_key_export_is_the_key_itself(transit: InProcessVault) -> None:
    await _key(transit, "mac", type="hmac", key_size=48)
    mac = (await transit.ok("GET", "transit/export/hmac-key/mac"))["data"]["keys"]["1"]
    assert len(unb64(mac)) == 48
    assert await _error(transit, "transit/export/encryption-key/mac") == "encryption not supported for the key"


@pytest.mark.parametrize(("path", "message"), [
    ("transit/export/bogus/k", "invalid export type: bogus"),
    ("transit/export/encryption-key/k?format=xml", "invalid format: xml"),
    ("transit/export/signing-key/k", "signing not supported for the key"),
    ("transit/export/certificate-chain/k", "certificate chain not supported for keys that do not support signing"),
    ("transit/export/public-key/k", "unknown key type aes256-gcm96 for export type public-key"),
    ("transit/export/encryption-key/k?format=pem", "unknown format for HMAC key; supported values are `` or `raw`"),
    ("transit/export/encryption-key/k/abc", "invalid key version"),
    ("transit/export/encryption-key/k/99999999999999999999", "invalid key version"),
    ("transit/export/encryption-key/k/0", "version for export is below minimum decryption version"),
    ("transit/export/encryption-key/k/-1", "version for export is below minimum decryption version"),
    ("transit/export/encryption-key/k/1", "version for export is below minimum decryption version"),
    ("transit/export/encryption-key/k/4", "version does not exist or cannot be found"),
])
async def test_refusals_use_vaults_messages(transit: InProcessVault, path: str, message: str) -> None:
    await _key(transit, "k")
    for _ in range(2):
        await transit.ok("POST", "transit/keys/k/rotate")
    await transit.ok("POST", "transit/keys/k/config", json={"min_decryption_version": 2})
    assert await _error(transit, path) == message


async def test_versions_below_min_decryption_are_not_exported(transit: InProcessVault) -> None:
    await _key(transit, "k")
    for _ in range(3):
        await transit.ok("POST", "transit/keys/k/rotate")
    await transit.ok("POST", "transit/keys/k/config", json={"min_decryption_version": 3})
    assert set((await transit.ok("GET", "transit/export/encryption-key/k"))["data"]["keys"]) == {"3", "4"}
    assert set((await transit.ok("GET", "transit/export/encryption-key/k/+3"))["data"]["keys"]) == {"3"}


async def test_missing_key_is_404_and_bad_names_are_404(transit: InProcessVault) -> None:
    assert await _error(transit, "transit/export/encryption-key/nope", 404) == ""
    assert (await transit.call("GET", "transit/export/encryption-key/bad name!")).status_code == 404


async def test_export_needs_read_capability_on_the_path(transit: InProcessVault) -> None:
    await _key(transit, "k")
    await transit.ok("PUT", "sys/policies/acl/pub", json={
        "policy": 'path "transit/export/public-key/*" { capabilities = ["read"] }'})
    token = await transit.token(["pub"])
    r = await transit.call("GET", "transit/export/encryption-key/k", token=token)
    assert r.status_code == 403
