"""Every transit endpoint hvac exposes, driven by hvac against a real strongroom server process.

The same tests also run against ``bao server -dev`` (the ``openbao`` parameter). That run checks the
tests themselves: an expectation that OpenBao does not meet is not Vault's behaviour. Where strongroom
differs on purpose (docs/api-compatibility.md, "Transit"), :func:`expect_error` names both outcomes.

Results are checked independently where possible: signatures with ``cryptography`` and the public key
read from the server, HMACs and ciphertexts with keys exported from the server (or imported into it),
hashes with :mod:`hashlib`. Endpoints hvac has no method for (``wrapping_key``, ``keys/:name/import``,
``cache-config``, ``config/keys``, ``partial_failure_response_code``) go through hvac's adapter.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hvac
import hvac.exceptions
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed, encode_dss_signature
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives.keywrap import aes_key_wrap_with_padding

from tests.support.server import ServerProcess, start_openbao_dev, start_strongroom

pytestmark = pytest.mark.slow

AUTH_FAILED = "cipher: message authentication failed"
TOO_OLD = "ciphertext or signature version is disallowed by policy (too old)"
AEAD_TYPES = ("aes128-gcm96", "aes256-gcm96", "chacha20-poly1305", "xchacha20-poly1305")
_names = itertools.count()


@dataclass
class Target:
    """A server under test: ``kind`` is ``strongroom`` or ``openbao``."""

    kind: str
    server: ServerProcess
    client: hvac.Client

    @property
    def ours(self) -> bool:
        return self.kind == "strongroom"

    def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        """POST through hvac's adapter (raises hvac's exceptions like the typed methods)."""
        return self.client.adapter.post(f"/v1/transit/{path}", json=body or {})

    def key(self, key_type: str = "aes256-gcm96", **options: Any) -> str:
        """Create a fresh key of any type (hvac's create_key refuses types it does not list)."""
        name = f"k{next(_names)}-{key_type}"
        if key_type == "hmac":
            options.setdefault("key_size", 32)  # OpenBao requires it (500 without); strongroom defaults to 32
        self.post(f"keys/{name}", {"type": key_type, **options})
        return name


@pytest.fixture(scope="module", params=["strongroom", "openbao"])
def target(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    work: Path = tmp_path_factory.mktemp(f"transit-hvac-{request.param}")
    if request.param == "strongroom":
        server = start_strongroom(["--dev", "--dev-root-token-id", "root", "--storage", "memory://"], work)
        server.token = "root"
    else:
        server = start_openbao_dev(work)
    try:
        client = hvac.Client(url=server.addr, token="root")
        client.sys.enable_secrets_engine("transit", path="transit")
        yield Target(request.param, server, client)
    finally:
        server.kill()


def b64(data: bytes | str) -> str:
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()


def unb64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


def blob(value: str) -> bytes:
    """The bytes after ``vault:vN:``."""
    assert value.startswith("vault:v"), value
    return unb64(value.split(":", 2)[2])


def expect_error(target: Target, call: Any, ours: type[Exception], message: str | None,
                 openbao: type[Exception] | None = None,
                 bao_message: str | None = None) -> hvac.exceptions.VaultError:
    """Run ``call`` and check the exception class and message.

    ``openbao``/``bao_message``: OpenBao's class or text where it differs (docs/api-compatibility.md). A 500
    from OpenBao carries Go's multierror text, so its message is not compared.
    """
    expected = ours if target.ours or openbao is None else openbao
    with pytest.raises(hvac.exceptions.VaultError) as caught:
        call()
    assert type(caught.value) is expected, (caught.value, caught.value.json)
    if not target.ours:
        message = None if openbao is not None else (bao_message or message)
    if message is not None:
        assert caught.value.errors == [message], caught.value.errors
    return caught.value


def auth_failed(target: Target, call: Any, key_type: str = "aes256-gcm96") -> None:
    """Strongroom's one message; OpenBao names the cipher package (``chacha20poly1305: ...``)."""
    bao = "chacha20poly1305: message authentication failed" if "chacha" in key_type else AUTH_FAILED
    expect_error(target, call, hvac.exceptions.InvalidRequest, AUTH_FAILED, bao_message=bao)


# -- keys: create, read, list, config, rotate, delete --------------------------------------------------


def test_key_lifecycle(target: Target) -> None:
    t = target.client.secrets.transit
    target.key()  # so that the list is never empty (an empty list is a 404)
    name = f"life{next(_names)}"
    t.create_key(name)
    again = t.create_key(name)
    # Vault's source adds this warning; OpenBao 2.7.2 sends none (documented).
    assert again["warnings"] == ([f"key {name} already existed"] if target.ours else None)
    assert again["data"]["name"] == name
    data = t.read_key(name)["data"]
    assert data["type"] == "aes256-gcm96"
    assert data["latest_version"] == 1 and data["min_decryption_version"] == 1
    assert data["min_encryption_version"] == 0 and data["min_available_version"] == 0
    assert data["supports_encryption"] and data["supports_decryption"] and data["supports_derivation"]
    assert not data["supports_signing"] and not data["derived"] and not data["exportable"]
    assert set(data["keys"]) == {"1"} and isinstance(data["keys"]["1"], int)
    assert name in t.list_keys()["data"]["keys"]

    expect_error(target, lambda: t.delete_key(name), hvac.exceptions.InvalidRequest,
                 f"error deleting policy {name}: deletion is not allowed for this key")
    t.update_key_configuration(name, deletion_allowed=True, auto_rotate_period="2h")
    data = t.read_key(name)["data"]
    assert data["deletion_allowed"] is True and data["auto_rotate_period"] == 7200
    t.delete_key(name)
    with pytest.raises(hvac.exceptions.InvalidPath):
        t.read_key(name)
    assert name not in t.list_keys()["data"]["keys"]


@pytest.mark.parametrize("key_type", [*AEAD_TYPES, "ed25519", "ecdsa-p256", "ecdsa-p384", "ecdsa-p521",
                                      "rsa-2048", "rsa-3072", "rsa-4096", "hmac"])
def test_every_key_type_is_created_and_read(target: Target, key_type: str) -> None:
    name = target.key(key_type)
    data = target.client.secrets.transit.read_key(name)["data"]
    assert data["type"] == key_type
    signing = key_type.startswith(("ed", "ecdsa", "rsa"))
    assert data["supports_signing"] is signing
    assert data["supports_encryption"] is (key_type in AEAD_TYPES or key_type.startswith("rsa"))
    if signing:
        entry = data["keys"]["1"]
        assert entry["public_key"] and entry["creation_time"]
        if key_type == "ed25519":
            assert len(unb64(entry["public_key"])) == 32
        else:
            serialization.load_pem_public_key(entry["public_key"].encode())
    if key_type == "hmac":
        assert data["key_size"] == 32


def test_key_creation_errors(target: Target) -> None:
    expect_error(target, lambda: target.post("keys/bad", {"type": "aes512"}),
                 hvac.exceptions.InvalidRequest, "unknown key type aes512")
    expect_error(target, lambda: target.post("keys/bad", {"convergent_encryption": True}),
                 hvac.exceptions.InvalidRequest, "convergent encryption requires derivation to be enabled")
    expect_error(target, lambda: target.post("keys/bad", {"type": "ecdsa-p256", "derived": True}),
                 hvac.exceptions.InvalidRequest,
                 "key derivation and convergent encryption not supported for keys of type ecdsa-p256",
                 openbao=hvac.exceptions.InternalServerError)
    expect_error(target, lambda: target.post("keys/bad", {"type": "hmac", "key_size": 16}),
                 hvac.exceptions.InvalidRequest, "invalid key_size 16")
    expect_error(target, lambda: target.post("keys/bad", {"auto_rotate_period": "10m"}),
                 hvac.exceptions.InvalidRequest, "auto rotate period must be 0 to disable or at least an hour")
    with pytest.raises(hvac.exceptions.InvalidPath):
        target.client.secrets.transit.read_key("bad")


def test_rotate_versions_and_minimums(target: Target) -> None:
    t = target.client.secrets.transit
    name = target.key()
    v1 = t.encrypt_data(name, b64("one"))["data"]["ciphertext"]
    assert v1.startswith("vault:v1:")
    rotated = t.rotate_key(name)
    assert rotated["data"]["latest_version"] == 2
    v2 = t.encrypt_data(name, b64("two"))["data"]
    assert v2["ciphertext"].startswith("vault:v2:") and v2["key_version"] == 2
    old = t.encrypt_data(name, b64("old"), key_version=1)["data"]["ciphertext"]
    assert old.startswith("vault:v1:")
    assert unb64(t.decrypt_data(name, v1)["data"]["plaintext"]) == b"one"

    t.rotate_key(name)
    t.update_key_configuration(name, min_decryption_version=2, min_encryption_version=3)
    data = t.read_key(name)["data"]
    assert (data["min_decryption_version"], data["min_encryption_version"]) == (2, 3)
    expect_error(target, lambda: t.decrypt_data(name, v1), hvac.exceptions.InvalidRequest, TOO_OLD)
    expect_error(target, lambda: t.encrypt_data(name, b64("x"), key_version=2), hvac.exceptions.InvalidRequest,
                 "requested version for encryption is less than the minimum encryption key version")
    expect_error(target, lambda: t.encrypt_data(name, b64("x"), key_version=9), hvac.exceptions.InvalidRequest,
                 "requested version for encryption is higher than the latest key version")
    expect_error(target, lambda: t.decrypt_data(name, "vault:v9:" + b64(bytes(40))),
                 hvac.exceptions.InvalidRequest, "invalid ciphertext: version is too new")
    rewrapped = t.rewrap_data(name, v2["ciphertext"])["data"]
    assert rewrapped["ciphertext"].startswith("vault:v3:") and rewrapped["key_version"] == 3
    assert unb64(t.decrypt_data(name, rewrapped["ciphertext"])["data"]["plaintext"]) == b"two"
    expect_error(target, lambda: t.update_key_configuration(name, min_decryption_version=9),
                 hvac.exceptions.InvalidRequest, "cannot set min decryption version of 9, latest key version is 3")


# -- encrypt / decrypt / rewrap ----------------------------------------------------------------------------


@pytest.mark.parametrize("key_type", [*AEAD_TYPES, "rsa-2048"])
def test_encrypt_decrypt_round_trip(target: Target, key_type: str) -> None:
    t = target.client.secrets.transit
    name = target.key(key_type)
    # 190 bytes: the most RSA-OAEP-SHA256 takes with a 2048-bit key
    for plaintext in (b"", b"hello", bytes(range(190)) if key_type.startswith("rsa") else bytes(range(256)) * 3):
        ct = t.encrypt_data(name, b64(plaintext))["data"]
        assert ct["key_version"] == 1
        assert unb64(t.decrypt_data(name, ct["ciphertext"])["data"]["plaintext"]) == plaintext
    if key_type.startswith("rsa"):
        expect_error(target, lambda: t.encrypt_data(name, b64("x"), associated_data=b64("ad")),
                     hvac.exceptions.InvalidRequest, None)
        return
    aad = b64("row 17")
    ct = t.encrypt_data(name, b64("bound"), associated_data=aad)["data"]["ciphertext"]
    assert unb64(t.decrypt_data(name, ct, associated_data=aad)["data"]["plaintext"]) == b"bound"
    auth_failed(target, lambda: t.decrypt_data(name, ct), key_type)
    auth_failed(target, lambda: t.decrypt_data(name, ct, associated_data=b64("row 18")), key_type)
    raw = bytearray(blob(ct))
    raw[-1] ^= 1
    auth_failed(target, lambda: t.decrypt_data(name, "vault:v1:" + b64(bytes(raw)), associated_data=aad), key_type)


def test_rsa_plaintext_too_long(target: Target) -> None:
    """Ours: 400 naming the problem. OpenBao: 500 (documented)."""
    name = target.key("rsa-2048")
    expect_error(target, lambda: target.client.secrets.transit.encrypt_data(name, b64(bytes(191))),
                 hvac.exceptions.InvalidRequest, "failed to RSA encrypt the plaintext: message too long for RSA key size",
                 openbao=hvac.exceptions.InternalServerError)


def test_rsa_decrypt_failure(target: Target) -> None:
    """Ours: the one authentication error, 400. OpenBao: 500 with the Go error text (documented)."""
    t = target.client.secrets.transit
    name = target.key("rsa-2048")
    ct = t.encrypt_data(name, b64("secret"))["data"]["ciphertext"]
    raw = bytearray(blob(ct))
    raw[10] ^= 1
    expect_error(target, lambda: t.decrypt_data(name, "vault:v1:" + b64(bytes(raw))),
                 hvac.exceptions.InvalidRequest, AUTH_FAILED, openbao=hvac.exceptions.InternalServerError)


def test_malformed_input_errors(target: Target) -> None:
    t = target.client.secrets.transit
    name = target.key()
    expect_error(target, lambda: t.encrypt_data(name, "not base64!"), hvac.exceptions.InvalidRequest,
                 "illegal base64 data at input byte 3")
    expect_error(target, lambda: t.decrypt_data(name, "garbage"), hvac.exceptions.InvalidRequest,
                 "invalid ciphertext: no prefix")
    expect_error(target, lambda: t.decrypt_data(name, "vault:v1"), hvac.exceptions.InvalidRequest,
                 "invalid ciphertext: wrong number of fields")
    expect_error(target, lambda: t.decrypt_data(name, "vault:vX:AAAA"), hvac.exceptions.InvalidRequest,
                 "invalid ciphertext: version number could not be decoded")
    expect_error(target, lambda: t.decrypt_data(name, "vault:v1:!!!!"), hvac.exceptions.InvalidRequest,
                 "invalid ciphertext: could not decode base64")
    # A caller nonce: refused here (documented); OpenBao no longer has the field and ignores it.
    if target.ours:
        expect_error(target, lambda: t.encrypt_data(name, b64("x"), nonce=b64(bytes(12))),
                     hvac.exceptions.InvalidRequest, "nonce provided when not allowed")
    else:
        ignored = t.encrypt_data(name, b64("x"), nonce=b64(bytes(12)))
        assert ignored["warnings"] == ["Endpoint ignored these unrecognized parameters: [nonce]"]
    expect_error(target, lambda: t.decrypt_data("missing-key", "vault:v1:AAAA"), hvac.exceptions.InvalidRequest,
                 "encryption key not found")
    signer = target.key("ed25519")
    expect_error(target, lambda: t.encrypt_data(signer, b64("x")), hvac.exceptions.InvalidRequest,
                 "message encryption not supported for key type ed25519")


def test_derived_and_convergent_keys(target: Target) -> None:
    t = target.client.secrets.transit
    ctx, other = b64("customer-1"), b64("customer-2")
    name = target.key(derived=True)
    assert t.read_key(name)["data"]["kdf"] == "hkdf_sha256"
    expect_error(target, lambda: t.encrypt_data(name, b64("x")), hvac.exceptions.InvalidRequest, None)
    ct = t.encrypt_data(name, b64("x"), context=ctx)["data"]["ciphertext"]
    assert unb64(t.decrypt_data(name, ct, context=ctx)["data"]["plaintext"]) == b"x"
    auth_failed(target, lambda: t.decrypt_data(name, ct, context=other))
    assert ct != t.encrypt_data(name, b64("x"), context=ctx)["data"]["ciphertext"]

    conv = target.key(derived=True, convergent_encryption=True)
    data = t.read_key(conv)["data"]
    # -1: "each version records its own scheme" (Vault's value for every key made since version 3)
    assert data["convergent_encryption"] is True and data["convergent_encryption_version"] == -1
    first = t.encrypt_data(conv, b64("same"), context=ctx)["data"]["ciphertext"]
    assert t.encrypt_data(conv, b64("same"), context=ctx)["data"]["ciphertext"] == first
    assert t.encrypt_data(conv, b64("same"), context=other)["data"]["ciphertext"] != first
    assert t.rewrap_data(conv, first, context=ctx)["data"]["ciphertext"] == first

    # Upsert with a context makes a derived key; with convergent_encryption a convergent one.
    up = f"upsert{next(_names)}"
    t.encrypt_data(up, b64("x"), context=ctx, convergent_encryption=True, type="chacha20-poly1305")
    data = t.read_key(up)["data"]
    assert data["derived"] and data["convergent_encryption"] and data["type"] == "chacha20-poly1305"


def test_batches(target: Target) -> None:
    t = target.client.secrets.transit
    name = target.key()
    good = t.encrypt_data(name, batch_input=[{"plaintext": b64("a"), "reference": "r1"},
                                             {"plaintext": b64("b")}])["data"]["batch_results"]
    assert [r["reference"] for r in good] == ["r1", ""]
    assert all(r["ciphertext"].startswith("vault:v1:") and r["key_version"] == 1 for r in good)

    # One bad item: the good ones are still answered, each bad one has its own error, status 400.
    err = expect_error(target, lambda: t.encrypt_data(name, batch_input=[
        {"plaintext": b64("c")}, {"plaintext": "%%%"}]), hvac.exceptions.InvalidRequest, None)
    results = err.json["data"]["batch_results"]
    assert results[0]["ciphertext"].startswith("vault:v1:")
    assert results[1]["error"] == "illegal base64 data at input byte 0"

    err = expect_error(target, lambda: t.decrypt_data(name, batch_input=[
        {"ciphertext": good[0]["ciphertext"], "reference": "x"}, {"ciphertext": "vault:v1:" + b64(bytes(40))}]),
        hvac.exceptions.InvalidRequest, None)
    results = err.json["data"]["batch_results"]
    assert unb64(results[0]["plaintext"]) == b"a" and results[0]["reference"] == "x"
    assert results[1]["error"] == AUTH_FAILED

    # partial_failure_response_code: the caller's status when some items succeed (hvac: adapter).
    response = target.client.adapter.post(f"/v1/transit/decrypt/{name}", json={
        "batch_input": [{"ciphertext": good[1]["ciphertext"]}, {"ciphertext": "nope"}],
        "partial_failure_response_code": 207,
    })
    assert response.status_code == 207
    results = response.json()["data"]["batch_results"]
    assert unb64(results[0]["plaintext"]) == b"b" and results[1]["error"] == "invalid ciphertext: no prefix"

    rewrapped = t.rewrap_data(name, None, batch_input=[{"ciphertext": r["ciphertext"]} for r in good])
    assert [r["key_version"] for r in rewrapped["data"]["batch_results"]] == [1, 1]

    derived = target.key(derived=True)
    expect_error(target, lambda: t.encrypt_data(derived, batch_input=[
        {"plaintext": b64("a"), "context": b64("c")}, {"plaintext": b64("b")}]),
        hvac.exceptions.InvalidRequest, "context should be set either in all the request blocks or in none")


def test_upsert_and_disable_upsert(target: Target) -> None:
    t = target.client.secrets.transit
    name = f"upsert{next(_names)}"
    t.encrypt_data(name, b64("x"), type="xchacha20-poly1305")
    assert t.read_key(name)["data"]["type"] == "xchacha20-poly1305"
    target.post("config/keys", {"disable_upsert": True})
    try:
        assert target.client.read("transit/config/keys")["data"] == {"disable_upsert": True}
        expect_error(target, lambda: t.encrypt_data(f"none{next(_names)}", b64("x")),
                     hvac.exceptions.InvalidRequest, "encryption key not found")
        t.encrypt_data(name, b64("existing keys still work"))
    finally:
        target.post("config/keys", {"disable_upsert": False})


def test_upsert_needs_create_capability(target: Target) -> None:
    client = target.client
    existing = target.key()
    client.sys.create_or_update_policy("transit-update-only", 'path "transit/encrypt/*" { capabilities = ["update"] }')
    token = client.auth.token.create(policies=["transit-update-only"])["auth"]["client_token"]
    app = hvac.Client(url=target.server.addr, token=token)
    app.secrets.transit.encrypt_data(existing, b64("fine"))
    with pytest.raises(hvac.exceptions.Forbidden):
        app.secrets.transit.encrypt_data(f"new{next(_names)}", b64("needs create"))


def test_cache_config(target: Target) -> None:
    assert target.client.read("transit/cache-config")["data"] == {"size": 0}
    expect_error(target, lambda: target.post("cache-config", {"size": 5}), hvac.exceptions.InvalidRequest,
                 "size must be 0 or a value greater or equal to 10")


# -- data keys, random bytes, hashes ----------------------------------------------------------------------


def test_generate_data_key(target: Target) -> None:
    t = target.client.secrets.transit
    name = target.key()
    for bits in (128, 256, 512):
        data = t.generate_data_key(name, key_type="plaintext", bits=bits)["data"]
        assert len(unb64(data["plaintext"])) == bits // 8 and data["key_version"] == 1
        assert t.decrypt_data(name, data["ciphertext"])["data"]["plaintext"] == data["plaintext"]
    wrapped = t.generate_data_key(name, key_type="wrapped")["data"]
    assert "plaintext" not in wrapped
    assert len(unb64(t.decrypt_data(name, wrapped["ciphertext"])["data"]["plaintext"])) == 32
    expect_error(target, lambda: target.post(f"datakey/plaintext/{name}", {"bits": 100}),
                 hvac.exceptions.InvalidRequest, "invalid bit length")
    expect_error(target, lambda: t.generate_data_key("missing-key", key_type="plaintext"),
                 hvac.exceptions.InvalidRequest, "encryption key not found")
    derived = target.key(derived=True)
    data = t.generate_data_key(derived, key_type="plaintext", context=b64("ctx"))["data"]
    assert t.decrypt_data(derived, data["ciphertext"], context=b64("ctx"))["data"]["plaintext"] == data["plaintext"]


def test_generate_random_bytes(target: Target) -> None:
    t = target.client.secrets.transit
    assert len(unb64(t.generate_random_bytes()["data"]["random_bytes"])) == 32
    assert len(unb64(t.generate_random_bytes(n_bytes=16)["data"]["random_bytes"])) == 16
    assert len(bytes.fromhex(t.generate_random_bytes(n_bytes=8, output_format="hex")["data"]["random_bytes"])) == 8
    one, two = (t.generate_random_bytes(n_bytes=32)["data"]["random_bytes"] for _ in range(2))
    assert one != two
    assert len(bytes.fromhex(target.post("random/12", {"format": "hex"})["data"]["random_bytes"])) == 12
    assert len(unb64(target.post("random/platform/24")["data"]["random_bytes"])) == 24
    expect_error(target, lambda: t.generate_random_bytes(n_bytes=-1), hvac.exceptions.InvalidRequest, None)
    expect_error(target, lambda: t.generate_random_bytes(n_bytes=128 * 1024 + 1), hvac.exceptions.InvalidRequest,
                 None)


@pytest.mark.parametrize(("algorithm", "function"), [
    ("sha2-224", hashlib.sha224), ("sha2-256", hashlib.sha256), ("sha2-384", hashlib.sha384),
    ("sha2-512", hashlib.sha512), ("sha3-256", hashlib.sha3_256), ("sha3-512", hashlib.sha3_512),
])
def test_hash_data(target: Target, algorithm: str, function: Any) -> None:
    t = target.client.secrets.transit
    data = b"hash me"
    if algorithm.startswith("sha2"):  # hvac only lets sha2-* through
        assert t.hash_data(b64(data), algorithm=algorithm)["data"]["sum"] == function(data).hexdigest()
        digest = t.hash_data(b64(data), algorithm=algorithm, output_format="base64")["data"]["sum"]
        assert unb64(digest) == function(data).digest()
    assert target.post(f"hash/{algorithm}", {"input": b64(data)})["data"]["sum"] == function(data).hexdigest()


def test_hash_errors(target: Target) -> None:
    assert target.client.secrets.transit.hash_data(b64(""))["data"]["sum"] == hashlib.sha256().hexdigest()
    expect_error(target, lambda: target.post("hash", {"input": b64("x"), "algorithm": "md5"}),
                 hvac.exceptions.InvalidRequest, "unsupported algorithm md5")
    expect_error(target, lambda: target.post("hash", {"input": b64("x"), "format": "base32"}),
                 hvac.exceptions.InvalidRequest, 'unsupported encoding format base32; must be "hex" or "base64"')


# -- HMAC, signatures ----------------------------------------------------------------------------------------


def test_hmac_and_verify(target: Target) -> None:
    t = target.client.secrets.transit
    for key_type in ("hmac", "aes256-gcm96"):
        name = target.key(key_type, exportable=True)
        key = unb64(t.export_key(name, key_type="hmac-key")["data"]["keys"]["1"])
        mac = t.generate_hmac(name, b64("message"))["data"]["hmac"]
        assert mac == "vault:v1:" + b64(hmac.digest(key, b"message", "sha256"))
        mac512 = t.generate_hmac(name, b64("message"), algorithm="sha2-512")["data"]["hmac"]
        assert blob(mac512) == hmac.digest(key, b"message", "sha512")
        assert t.verify_signed_data(name, b64("message"), hmac=mac)["data"]["valid"] is True
        assert t.verify_signed_data(name, b64("messagE"), hmac=mac)["data"]["valid"] is False
        assert t.verify_signed_data(name, b64("message"), hmac=mac512, hash_algorithm="sha2-512")["data"]["valid"]
    batch = target.post(f"hmac/{name}", {"batch_input": [{"input": b64("a")}, {"input": b64("b")}]})
    assert [r["hmac"] for r in batch["data"]["batch_results"]] == [
        "vault:v1:" + b64(hmac.digest(key, m, "sha256")) for m in (b"a", b"b")
    ]
    expect_error(target, lambda: target.post(f"verify/{name}", {"input": b64("m"), "hmac": mac, "signature": mac}),
                 hvac.exceptions.InvalidRequest, None)


def _public(target: Target, name: str) -> Any:
    text = target.client.secrets.transit.read_key(name)["data"]["keys"]["1"]["public_key"]
    if text.startswith("-----"):
        return serialization.load_pem_public_key(text.encode())
    return ed25519.Ed25519PublicKey.from_public_bytes(unb64(text))


def test_sign_verify_ed25519(target: Target) -> None:
    t = target.client.secrets.transit
    name = target.key("ed25519")
    signature = t.sign_data(name, hash_input=b64("document"))["data"]["signature"]
    assert signature.startswith("vault:v1:") and len(blob(signature)) == 64
    _public(target, name).verify(blob(signature), b"document")
    assert t.verify_signed_data(name, b64("document"), signature=signature)["data"]["valid"] is True
    assert t.verify_signed_data(name, b64("documenT"), signature=signature)["data"]["valid"] is False
    batch = t.sign_data(name, batch_input=[{"input": b64("a")}, {"input": b64("b")}])["data"]["batch_results"]
    for result, message in zip(batch, (b"a", b"b"), strict=True):
        _public(target, name).verify(blob(result["signature"]), message)

    derived = target.key("ed25519", derived=True)
    signature = t.sign_data(derived, hash_input=b64("doc"), context=b64("ctx"))["data"]["signature"]
    assert t.verify_signed_data(derived, b64("doc"), signature=signature, context=b64("ctx"))["data"]["valid"]
    assert not t.verify_signed_data(derived, b64("doc"), signature=signature, context=b64("xtc"))["data"]["valid"]


@pytest.mark.parametrize(("key_type", "size", "algorithm"), [
    ("ecdsa-p256", 32, hashes.SHA256()), ("ecdsa-p384", 48, hashes.SHA384()), ("ecdsa-p521", 66, hashes.SHA512()),
])
def test_sign_verify_ecdsa(target: Target, key_type: str, size: int, algorithm: Any) -> None:
    t = target.client.secrets.transit
    name = target.key(key_type)
    public = _public(target, name)
    hash_name = {32: "sha2-256", 48: "sha2-384", 66: "sha2-512"}[size]
    asn1 = t.sign_data(name, hash_input=b64("doc"), hash_algorithm=hash_name)["data"]["signature"]
    public.verify(blob(asn1), b"doc", ec.ECDSA(algorithm))
    jws = t.sign_data(name, hash_input=b64("doc"), hash_algorithm=hash_name,
                      marshaling_algorithm="jws")["data"]["signature"]
    raw = base64.urlsafe_b64decode(jws.split(":", 2)[2] + "==")
    assert len(raw) == 2 * size
    public.verify(encode_dss_signature(int.from_bytes(raw[:size], "big"), int.from_bytes(raw[size:], "big")),
                  b"doc", ec.ECDSA(algorithm))
    assert t.verify_signed_data(name, b64("doc"), signature=jws, hash_algorithm=hash_name,
                                marshaling_algorithm="jws")["data"]["valid"]
    digest = hashlib.new(algorithm.name, b"pre").digest()
    pre = t.sign_data(name, hash_input=b64(digest), hash_algorithm=hash_name, prehashed=True)["data"]["signature"]
    public.verify(blob(pre), digest, ec.ECDSA(Prehashed(algorithm)))


def test_sign_verify_rsa(target: Target) -> None:
    t = target.client.secrets.transit
    name = target.key("rsa-2048")
    public = _public(target, name)
    pss = t.sign_data(name, hash_input=b64("doc"), hash_algorithm="sha2-512")["data"]["signature"]
    public.verify(blob(pss), b"doc", padding.PSS(padding.MGF1(hashes.SHA512()), padding.PSS.AUTO), hashes.SHA512())
    pkcs = t.sign_data(name, hash_input=b64("doc"), signature_algorithm="pkcs1v15")["data"]["signature"]
    public.verify(blob(pkcs), b"doc", padding.PKCS1v15(), hashes.SHA256())
    hashed = t.sign_data(name, hash_input=b64("doc"), salt_length="hash")["data"]["signature"]
    public.verify(blob(hashed), b"doc", padding.PSS(padding.MGF1(hashes.SHA256()), 32), hashes.SHA256())
    assert t.verify_signed_data(name, b64("doc"), signature=pkcs, signature_algorithm="pkcs1v15")["data"]["valid"]
    assert not t.verify_signed_data(name, b64("doc"), signature=pkcs, signature_algorithm="pss")["data"]["valid"]
    with pytest.raises(InvalidSignature):
        public.verify(blob(pss), b"dog", padding.PSS(padding.MGF1(hashes.SHA512()), padding.PSS.AUTO),
                      hashes.SHA512())


def test_sign_errors(target: Target) -> None:
    t = target.client.secrets.transit
    aes = target.key()
    expect_error(target, lambda: t.sign_data(aes, hash_input=b64("x")), hvac.exceptions.InvalidRequest,
                 "key type aes256-gcm96 does not support signing")
    expect_error(target, lambda: t.sign_data("missing-key", hash_input=b64("x")), hvac.exceptions.InvalidRequest,
                 "signing key not found")
    ed = target.key("ed25519")
    expect_error(target, lambda: t.verify_signed_data(ed, b64("x"), signature="vault:v1:!!"),
                 hvac.exceptions.InvalidRequest, None)


# -- export, backup/restore, trim ----------------------------------------------------------------------------


def test_export_key(target: Target) -> None:
    t = target.client.secrets.transit
    name = target.key(exportable=True)
    t.rotate_key(name)
    ct = t.encrypt_data(name, b64("exported"))["data"]["ciphertext"]
    keys = t.export_key(name, key_type="encryption-key")["data"]["keys"]
    assert set(keys) == {"1", "2"}
    raw = blob(ct)
    assert AESGCM(unb64(keys["2"])).decrypt(raw[:12], raw[12:], None) == b"exported"
    assert t.export_key(name, key_type="encryption-key", version="latest")["data"]["keys"] == {"2": keys["2"]}
    assert t.export_key(name, key_type="encryption-key", version="1")["data"]["keys"] == {"1": keys["1"]}
    assert len(unb64(t.export_key(name, key_type="hmac-key")["data"]["keys"]["1"])) == 32
    expect_error(target, lambda: t.export_key(name, key_type="signing-key"), hvac.exceptions.InvalidRequest,
                 "signing not supported for the key")
    expect_error(target, lambda: t.export_key(name, key_type="encryption-key", version="7"),
                 hvac.exceptions.InvalidRequest, "version does not exist or cannot be found")
    sealed = target.key()
    expect_error(target, lambda: t.export_key(sealed, key_type="encryption-key"), hvac.exceptions.InvalidRequest,
                 "private key material is not exportable")
    signer = target.key("ecdsa-p256", exportable=True)
    pem = t.export_key(signer, key_type="signing-key")["data"]["keys"]["1"]
    private = serialization.load_pem_private_key(pem.encode(), password=None)
    assert isinstance(private, ec.EllipticCurvePrivateKey)
    signature = t.sign_data(signer, hash_input=b64("x"))["data"]["signature"]
    private.public_key().verify(blob(signature), b"x", ec.ECDSA(hashes.SHA256()))


def test_backup_and_restore(target: Target) -> None:
    t = target.client.secrets.transit
    name = target.key("chacha20-poly1305", allow_plaintext_backup=True, exportable=True)
    t.rotate_key(name)
    old = t.encrypt_data(name, b64("before backup"), key_version=1)["data"]["ciphertext"]
    backup = t.backup_key(name)["data"]["backup"]
    json.loads(unb64(backup))  # Vault's format: base64 of JSON
    copy = f"restored{next(_names)}"
    t.restore_key(backup, name=copy)
    data = t.read_key(copy)["data"]
    assert data["type"] == "chacha20-poly1305" and data["latest_version"] == 2
    assert unb64(t.decrypt_data(copy, old)["data"]["plaintext"]) == b"before backup"
    expect_error(target, lambda: t.restore_key(backup, name=copy), hvac.exceptions.InvalidRequest,
                 f'key "{copy}" already exists', openbao=hvac.exceptions.InternalServerError)
    t.restore_key(backup, name=copy, force=True)
    expect_error(target, lambda: target.post("restore", {}), hvac.exceptions.InvalidRequest,
                 "'backup' must be supplied")
    private = target.key()
    expect_error(target, lambda: t.backup_key(private), hvac.exceptions.InvalidRequest,
                 "exporting is disallowed on the policy", openbao=hvac.exceptions.InternalServerError)
    private = target.key(exportable=True)
    expect_error(target, lambda: t.backup_key(private), hvac.exceptions.InvalidRequest,
                 "plaintext backup is disallowed on the policy", openbao=hvac.exceptions.InternalServerError)


def test_trim_key(target: Target) -> None:
    t = target.client.secrets.transit
    name = target.key()
    for _ in range(3):
        t.rotate_key(name)
    expect_error(target, lambda: t.trim_key(name, 2), hvac.exceptions.InvalidRequest,
                 "minimum available version cannot be set when minimum encryption version is not set")
    t.update_key_configuration(name, min_decryption_version=3, min_encryption_version=4)
    expect_error(target, lambda: t.trim_key(name, 4), hvac.exceptions.InvalidRequest,
                 "minimum available version cannot be greater than minimum decryption version")
    t.trim_key(name, 3)
    data = t.read_key(name)["data"]
    assert data["min_available_version"] == 3 and set(data["keys"]) == {"3", "4"}
    expect_error(target, lambda: t.trim_key(name, 2), hvac.exceptions.InvalidRequest,
                 "minimum available version cannot be decremented")


# -- BYOK: wrapping key, import, import_version ---------------------------------------------------------------


def _wrap(target: Target, key: bytes) -> str:
    pem = target.client.read("transit/wrapping_key")["data"]["public_key"]
    wrapping = serialization.load_pem_public_key(pem.encode())
    assert isinstance(wrapping, rsa.RSAPublicKey) and wrapping.key_size == 4096
    ephemeral = AESGCM.generate_key(256)
    oaep = padding.OAEP(padding.MGF1(hashes.SHA256()), hashes.SHA256(), None)
    return b64(wrapping.encrypt(ephemeral, oaep) + aes_key_wrap_with_padding(ephemeral, key))


def test_import_symmetric_key_and_version(target: Target) -> None:
    t = target.client.secrets.transit
    name = f"imported{next(_names)}"
    mine = ChaCha20Poly1305.generate_key()
    target.post(f"keys/{name}/import", {"ciphertext": _wrap(target, mine), "type": "chacha20-poly1305",
                                         "exportable": True})
    data = t.read_key(name)["data"]
    assert data["imported_key"] is True and data["type"] == "chacha20-poly1305"
    raw = blob(t.encrypt_data(name, b64("imported"))["data"]["ciphertext"])
    assert ChaCha20Poly1305(mine).decrypt(raw[:12], raw[12:], None) == b"imported"
    assert unb64(t.export_key(name, key_type="encryption-key")["data"]["keys"]["1"]) == mine
    expect_error(target, lambda: t.rotate_key(name), hvac.exceptions.InvalidRequest, None,
                 openbao=hvac.exceptions.InternalServerError)

    second = ChaCha20Poly1305.generate_key()
    target.post(f"keys/{name}/import_version", {"ciphertext": _wrap(target, second)})
    raw = blob(t.encrypt_data(name, b64("v2"))["data"]["ciphertext"])
    assert ChaCha20Poly1305(second).decrypt(raw[:12], raw[12:], None) == b"v2"
    expect_error(target, lambda: target.post(f"keys/{name}/import", {"ciphertext": _wrap(target, mine),
                                                                      "type": "chacha20-poly1305"}),
                 hvac.exceptions.InvalidRequest, None, openbao=hvac.exceptions.InternalServerError)


def test_import_signing_key(target: Target) -> None:
    t = target.client.secrets.transit
    name = f"imported{next(_names)}"
    private = ec.generate_private_key(ec.SECP256R1())
    der = private.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    target.post(f"keys/{name}/import", {"ciphertext": _wrap(target, der), "type": "ecdsa-p256"})
    signature = t.sign_data(name, hash_input=b64("mine"))["data"]["signature"]
    private.public_key().verify(blob(signature), b"mine", ec.ECDSA(hashes.SHA256()))
