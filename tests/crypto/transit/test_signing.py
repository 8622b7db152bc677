"""Transit signatures (crypto/transit/signing.py): RFC 8032 vectors, OpenBao-made signatures, Vault's edge rules.

``tests/vectors/transit/openbao_signing.json`` holds keys exported from OpenBao and the signatures OpenBao
made with them for every option set; every one must verify here, and where the scheme is deterministic
(Ed25519, RSA PKCS#1 v1.5, ``none``) our signature must be the same bytes. The slow test records a fresh
sample from a running ``bao`` and checks both directions (OpenBao verifies what we sign).
"""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa, utils

from strongroom.crypto.transit import signing
from strongroom.crypto.transit.derive import KDF_HKDF_SHA256, MISSING_CONTEXT, derive_ed25519
from strongroom.crypto.transit.digest import lookup
from strongroom.crypto.transit.keytypes import KeyType
from strongroom.crypto.transit.material import KeyMaterial
from strongroom.errors import InvalidRequest
from tests.support.server import start_openbao_dev
from tests.vectors.transit.generate_signing import record

VECTORS = Path(__file__).resolve().parents[2] / "vectors" / "transit"
RFC8032: list[dict[str, str]] = json.loads((VECTORS / "ed25519_rfc8032.json").read_text())["cases"]
OPENBAO: dict[str, Any] = json.loads((VECTORS / "openbao_signing.json").read_text())


@contextlib.contextmanager
def refused(message: str) -> Iterator[None]:
    """Expect InvalidRequest with exactly ``message`` (Vault's wording)."""
    with pytest.raises(InvalidRequest) as err:
        yield
    assert err.value.message == message


def _unb64(text: str) -> bytes:
    return base64.b64decode(text)


def material_of(key: dict[str, Any]) -> KeyMaterial:
    """KeyMaterial for a key exported from OpenBao (``export/signing-key`` and ``export/hmac-key``)."""
    return _material(key["type"], key["private_key"], key["hmac_key"])


@functools.cache
def _material(key_type: str, private_key: str, hmac_key_b64: str) -> KeyMaterial:
    # Cached: loading (and checking) an RSA-4096 PEM costs more than the signatures tested with it.
    hmac_key = _unb64(hmac_key_b64)
    kt = KeyType(key_type)
    if kt is KeyType.HMAC:
        return KeyMaterial(kt, key=hmac_key, hmac_key=hmac_key)
    if kt is KeyType.ED25519:
        raw = _unb64(private_key)
        material = KeyMaterial.from_ed25519(ed25519.Ed25519PrivateKey.from_private_bytes(raw[:32]), hmac_key=hmac_key)
        assert material.reveal_key() == raw  # Go's 64-byte seed || public form, byte for byte
        return material
    private = serialization.load_pem_private_key(private_key.encode(), password=None)
    assert isinstance(private, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey)
    return KeyMaterial(kt, hmac_key=hmac_key, private=private)


def options_of(case: dict[str, Any]) -> signing.SigningOptions:
    """The options a ``sign/`` request with these fields means."""
    alg = lookup(case.get("path_algorithm") or case.get("hash_algorithm") or "sha2-256")
    assert alg is not None
    return signing.SigningOptions(
        alg,
        bool(case.get("prehashed")),
        case.get("signature_algorithm", ""),
        signing.parse_salt_length(case.get("salt_length", "auto")),
        case.get("marshaling_algorithm", "asn1"),
    )


def decode(signature: str, marshaling: str) -> bytes:
    payload = signature.split(":", 2)[2]
    if marshaling == "jws":
        assert "=" not in payload and "+" not in payload and "/" not in payload
        return base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    return _unb64(payload)


def derivation_of(key: dict[str, Any], case: dict[str, Any]) -> tuple[int, bytes] | None:
    return (KDF_HKDF_SHA256, _unb64(case["context"])) if key["derived"] else None


def _signature_cases(doc: dict[str, Any]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    return [(key, entry) for key in doc["keys"] for entry in key["signatures"]]


def _id(pair: tuple[dict[str, Any], dict[str, Any]]) -> str:
    key, entry = pair
    return f"{key['label']}-" + ",".join(f"{k}={v}" for k, v in entry["case"].items() if k != "input")


def _deterministic(key: dict[str, Any], options: signing.SigningOptions) -> bool:
    return key["type"] == "ed25519" or (key["type"].startswith("rsa") and options.signature_algorithm == "pkcs1v15")


def check_openbao_signature(doc: dict[str, Any], key: dict[str, Any], entry: dict[str, Any]) -> None:
    """OpenBao's signature verifies with our code; a changed message does not; deterministic ones match."""
    material = material_of(key)
    case = entry["case"]
    message = _unb64(case.get("input", doc["message"]))
    options = options_of(case)
    derivation = derivation_of(key, case)
    value = decode(entry["signature"], options.marshaling)
    assert signing.verify(material, message, value, options, derivation=derivation)
    # Flip the first byte (an appended one would be truncated away from a long ECDSA prehashed digest).
    changed = bytes([message[0] ^ 1]) + message[1:] if message else b"!"
    assert not signing.verify(material, changed, value, options, derivation=derivation)
    ours = signing.sign(material, message, options, derivation=derivation)
    assert signing.verify(material, message, ours.value, options, derivation=derivation)
    if _deterministic(key, options):
        assert ours.value == value
    if derivation is not None:
        assert base64.b64encode(ours.derived_public_key).decode() == entry["public_key"]


# -- RFC 8032 ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", RFC8032, ids=lambda c: c["name"])
def test_ed25519_rfc8032(case: dict[str, str]) -> None:
    private = ed25519.Ed25519PrivateKey.from_private_bytes(bytes.fromhex(case["secret"]))
    material = KeyMaterial.from_ed25519(private, hmac_key=bytes(32))
    message = bytes.fromhex(case["message"])
    sig = signing.sign(material, message)
    assert sig.value.hex() == case["signature"]
    assert sig.derived_public_key == b""
    assert material.public_key_text() == base64.b64encode(bytes.fromhex(case["public"])).decode()
    assert signing.verify(material, message, sig.value)
    tampered = bytes([sig.value[0] ^ 1]) + sig.value[1:]
    assert not signing.verify(material, message, tampered)


def test_ed25519_ignores_hash_options() -> None:
    """Vault signs the message itself whatever hash_algorithm/prehashed say (pure Ed25519)."""
    case = RFC8032[1]
    material = KeyMaterial.from_ed25519(
        ed25519.Ed25519PrivateKey.from_private_bytes(bytes.fromhex(case["secret"])), hmac_key=bytes(32)
    )
    sha512 = lookup("sha2-512")
    assert sha512 is not None
    options = signing.SigningOptions(sha512, prehashed=True, signature_algorithm="bogus", salt_length=9999)
    assert signing.sign(material, bytes.fromhex(case["message"]), options).value.hex() == case["signature"]


# -- OpenBao-made vectors ---------------------------------------------------------------------------------


@pytest.mark.parametrize("pair", _signature_cases(OPENBAO), ids=_id)
def test_openbao_signatures(pair: tuple[dict[str, Any], dict[str, Any]]) -> None:
    check_openbao_signature(OPENBAO, *pair)


def test_vectors_cover_every_signing_type() -> None:
    labels = {key["label"] for key in OPENBAO["keys"] if key["signatures"]}
    assert labels == {kt.value for kt in KeyType if kt.supports_signing} | {"ed25519-derived"}


@pytest.mark.slow
def test_against_a_running_openbao(tmp_path: Path) -> None:
    """A fresh sample from OpenBao verifies here, and OpenBao verifies what this code signs."""
    bao = start_openbao_dev(tmp_path)
    try:
        with bao.client() as client:
            doc = record(client)
            for key, entry in _signature_cases(doc):
                check_openbao_signature(doc, key, entry)
                _openbao_verifies_ours(client, doc, key, entry)
    finally:
        bao.kill()


def _openbao_verifies_ours(client: httpx.Client, doc: dict[str, Any], key: dict[str, Any],
                           entry: dict[str, Any]) -> None:
    case = dict(entry["case"])
    options = options_of(case)
    message = _unb64(case.get("input", doc["message"]))
    ours = signing.sign(material_of(key), message, options, derivation=derivation_of(key, case))
    payload = (base64.urlsafe_b64encode(ours.value).rstrip(b"=").decode() if options.marshaling == "jws"
               else base64.b64encode(ours.value).decode())
    path = f"/v1/transit/verify/vec-{key['label']}" + (f"/{case.pop('path_algorithm')}" if "path_algorithm" in case else "")
    body = {**case, "input": case.get("input", doc["message"]), "signature": f"vault:v1:{payload}"}
    r = client.post(path, json=body)
    assert r.status_code == 200 and r.json()["data"]["valid"] is True, (key["label"], case, r.text)


# -- independent checks with cryptography's own verifiers -------------------------------------------------


def _sha256() -> Any:
    alg = lookup("sha2-256")
    assert alg is not None
    return alg


def test_pss_auto_salt_is_the_maximum_and_hash_salt_is_the_digest_size() -> None:
    material = KeyMaterial.generate(KeyType.RSA_2048)
    public = material.public_key
    assert isinstance(public, rsa.RSAPublicKey)
    auto = signing.sign(material, b"m").value
    public.verify(auto, b"m", padding.PSS(padding.MGF1(hashes.SHA256()), 256 - 32 - 2), hashes.SHA256())
    salted = signing.sign(material, b"m", signing.SigningOptions(_sha256(), salt_length=signing.SALT_HASH)).value
    public.verify(salted, b"m", padding.PSS(padding.MGF1(hashes.SHA256()), 32), hashes.SHA256())
    with pytest.raises(InvalidSignature):
        public.verify(salted, b"m", padding.PSS(padding.MGF1(hashes.SHA256()), 33), hashes.SHA256())
    # Verifying with an explicit salt length requires exactly that length, as Go does.
    assert not signing.verify(material, b"m", auto, signing.SigningOptions(_sha256(), salt_length=32))
    assert signing.verify(material, b"m", salted, signing.SigningOptions(_sha256(), salt_length=32))


def test_none_is_pkcs1v15_without_digestinfo() -> None:
    material = KeyMaterial.generate(KeyType.RSA_2048)
    none = lookup("none")
    assert none is not None
    options = signing.SigningOptions(none, prehashed=True, signature_algorithm="pkcs1v15")
    payload = hashlib.sha256(b"m").digest()
    sig = signing.sign(material, payload, options).value
    public = material.public_key
    assert isinstance(public, rsa.RSAPublicKey)
    assert public.recover_data_from_signature(sig, padding.PKCS1v15(), None) == payload
    # The same bytes with a DigestInfo prefix are a different signature.
    with pytest.raises(InvalidSignature):
        public.verify(sig, payload, padding.PKCS1v15(), utils.Prehashed(hashes.SHA256()))
    assert signing.verify(material, payload, sig, options)
    assert not signing.verify(material, payload[:-1], sig, options)
    with refused("crypto/rsa: message too long for RSA key size"):
        signing.sign(material, bytes(256 - 10), options)
    assert len(signing.sign(material, bytes(256 - 11), options).value) == 256


@pytest.mark.parametrize(("kt", "width"), [(KeyType.ECDSA_P256, 32), (KeyType.ECDSA_P384, 48), (KeyType.ECDSA_P521, 66)])
def test_ecdsa_jws_is_fixed_width_r_then_s(kt: KeyType, width: int) -> None:
    material = KeyMaterial.generate(kt)
    jws = signing.SigningOptions(_sha256(), marshaling=signing.JWS)
    for _ in range(8):  # r or s with leading zero bytes must still be padded
        sig = signing.sign(material, b"m", jws).value
        assert len(sig) == 2 * width
        public = material.public_key
        assert isinstance(public, ec.EllipticCurvePublicKey)
        der = utils.encode_dss_signature(int.from_bytes(sig[:width], "big"), int.from_bytes(sig[width:], "big"))
        public.verify(der, b"m", ec.ECDSA(hashes.SHA256()))
        assert signing.verify(material, b"m", sig, jws)
        with pytest.raises(InvalidRequest):  # r || s is not DER
            signing.verify(material, b"m", sig, signing.DEFAULT_OPTIONS)


def test_ecdsa_prehashed_input_of_any_length_is_truncated_to_the_order() -> None:
    """Go and OpenSSL both use the leftmost bits of a long digest; an empty one is refused as in OpenBao."""
    material = KeyMaterial.generate(KeyType.ECDSA_P256)
    prehashed = signing.SigningOptions(_sha256(), prehashed=True)
    long_digest = bytes(range(64))
    sig = signing.sign(material, long_digest, prehashed).value
    public = material.public_key
    assert isinstance(public, ec.EllipticCurvePublicKey)
    public.verify(sig, long_digest[:32], ec.ECDSA(utils.Prehashed(hashes.SHA256())))
    assert signing.verify(material, long_digest, sig, prehashed)
    short = signing.sign(material, b"abc", prehashed).value
    assert signing.verify(material, b"abc", short, prehashed)
    with refused("ecdsa: hash cannot be empty"):
        signing.sign(material, b"", prehashed)
    assert not signing.verify(material, b"", short, prehashed)


# -- DER as Go's encoding/asn1 reads it -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("b64", "expected"),
    [
        ("MAYCAQECAQE=", (1, 1)),
        ("MAkCAQECAQECAQE=", (1, 1)),  # a third element inside the sequence is ignored, as by Go
        ("MAYCAf8CAQE=", (-1, 1)),  # negative r parses (and never verifies)
        ("MAcCAgCAAgEB", (128, 1)),  # a leading zero is needed for 0x80
    ],
)
def test_der_signatures_that_parse(b64: str, expected: tuple[int, int]) -> None:
    assert signing.parse_der_signature(_unb64(b64)) == expected


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"abc", "supplied signature is invalid"),
        (b"", "supplied signature is invalid"),
        (_unb64("MAcCAgABAgEB"), "supplied signature is invalid"),  # 0x0001: not minimally encoded
        (_unb64("MIAGAgEBAgEB"), "supplied signature is invalid"),  # indefinite length
        (bytes.fromhex("3081060201010201 01".replace(" ", "")), "supplied signature is invalid"),  # long form < 128
        (bytes.fromhex("3003020101"), "supplied signature is invalid"),  # s missing
        (bytes.fromhex("30060200020101"), "supplied signature is invalid"),  # empty integer
        (bytes.fromhex("3007020101020101"), "supplied signature is invalid"),  # truncated
        (bytes.fromhex("310602010102010100"), "supplied signature is invalid"),  # SET, not SEQUENCE
        (bytes.fromhex("30060201010201010000"), "supplied signature contains extra data"),
    ],
)
def test_der_signatures_that_do_not(data: bytes, message: str) -> None:
    with pytest.raises(InvalidRequest) as err:
        signing.parse_der_signature(data)
    assert err.value.message == message


def test_zero_or_negative_ecdsa_components_are_simply_invalid() -> None:
    material = KeyMaterial.generate(KeyType.ECDSA_P256)
    assert not signing.verify(material, b"m", _unb64("MAYCAf8CAQE="))
    assert not signing.verify(material, b"m", b"", signing.SigningOptions(_sha256(), marshaling=signing.JWS))


# -- RSA options and Go's messages -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [("auto", 0), ("AUTO", 0), ("hash", -1), ("Hash", -1), ("0", 0), ("-1", -1), ("20", 20), ("+5", 5)],
)
def test_salt_length_parsing(text: str, value: int) -> None:
    assert signing.parse_salt_length(text) == value


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("abc", "salt length neither 'auto', 'hash', nor an int: abc"),
        (" 5", "salt length neither 'auto', 'hash', nor an int:  5"),
        ("", "salt length neither 'auto', 'hash', nor an int: "),
        ("-2", "salt length is invalid: -2"),
    ],
)
def test_salt_length_refusals(text: str, message: str) -> None:
    with pytest.raises(InvalidRequest) as err:
        signing.parse_salt_length(text)
    assert err.value.message == message


@pytest.fixture(scope="module")
def rsa2048() -> KeyMaterial:
    return KeyMaterial.generate(KeyType.RSA_2048)


def test_salt_length_bounds_are_vaults(rsa2048: KeyMaterial) -> None:
    """2048-bit key, SHA-256: the largest salt is 256 - 2 - 32 = 222, for signing and verifying alike."""
    ok = signing.SigningOptions(_sha256(), salt_length=222)
    sig = signing.sign(rsa2048, b"m", ok).value
    assert signing.verify(rsa2048, b"m", sig, ok)
    too_long = signing.SigningOptions(_sha256(), salt_length=223)
    for call in (lambda: signing.sign(rsa2048, b"m", too_long), lambda: signing.verify(rsa2048, b"m", sig, too_long)):
        with refused("requested salt length 223 is invalid"):
            call()


def test_rsa_prehashed_digest_must_fit_the_hash(rsa2048: KeyMaterial) -> None:
    pss = signing.SigningOptions(_sha256(), prehashed=True)
    pkcs = signing.SigningOptions(_sha256(), prehashed=True, signature_algorithm="pkcs1v15")
    with refused("crypto/rsa: input must be hashed with given hash"):
        signing.sign(rsa2048, b"short", pss)
    with refused("crypto/rsa: input must be hashed message"):
        signing.sign(rsa2048, b"short", pkcs)
    sig = signing.sign(rsa2048, bytes(32), pkcs).value
    assert signing.verify(rsa2048, bytes(32), sig, pkcs)
    assert not signing.verify(rsa2048, bytes(31), sig, pkcs)


def test_unknown_rsa_scheme_is_refused_but_ignored_by_other_types(rsa2048: KeyMaterial) -> None:
    bogus = signing.SigningOptions(_sha256(), signature_algorithm="foo")
    with refused("unsupported rsa signature algorithm foo"):
        signing.sign(rsa2048, b"m", bogus)
    ecdsa = KeyMaterial.generate(KeyType.ECDSA_P256)
    assert signing.verify(ecdsa, b"m", signing.sign(ecdsa, b"m", bogus).value, bogus)


def test_wrong_rsa_signatures_are_false_not_errors(rsa2048: KeyMaterial) -> None:
    for sig in (b"", b"abc", bytes(256), b"\xff" * 256, bytes(257)):
        for scheme in ("pss", "pkcs1v15"):
            assert not signing.verify(rsa2048, b"m", sig, signing.SigningOptions(_sha256(), signature_algorithm=scheme))


# -- keys without a private part, derived Ed25519 ----------------------------------------------------------


@pytest.mark.parametrize("kt", [KeyType.ED25519, KeyType.ECDSA_P384, KeyType.RSA_2048])
def test_public_only_versions_verify_but_do_not_sign(kt: KeyType) -> None:
    full = KeyMaterial.generate(kt)
    public_only = KeyMaterial(kt, hmac_key=bytes(32), public=full.public_key)
    assert not public_only.has_private
    sig = signing.sign(full, b"m").value
    assert signing.verify(public_only, b"m", sig)
    with refused("requested version for signing does not contain a private part"):
        signing.sign(public_only, b"m")
    if kt is KeyType.ED25519:
        with refused("requested version for signing does not contain a private part"):
            signing.sign(public_only, b"m", derivation=(KDF_HKDF_SHA256, b"ctx"))


def test_derived_ed25519_signs_with_the_context_key() -> None:
    material = KeyMaterial.generate(KeyType.ED25519)
    one = signing.sign(material, b"m", derivation=(KDF_HKDF_SHA256, b"ctx-1"))
    two = signing.sign(material, b"m", derivation=(KDF_HKDF_SHA256, b"ctx-2"))
    expected = derive_ed25519(material.reveal_key(), b"ctx-1", KDF_HKDF_SHA256).public_key()
    assert one.derived_public_key == expected.public_bytes_raw()
    expected.verify(one.value, b"m")
    assert one.derived_public_key != two.derived_public_key
    assert signing.verify(material, b"m", one.value, derivation=(KDF_HKDF_SHA256, b"ctx-1"))
    assert not signing.verify(material, b"m", one.value, derivation=(KDF_HKDF_SHA256, b"ctx-2"))
    assert not signing.verify(material, b"m", one.value)  # the base key did not sign it
    for call in (lambda: signing.sign(material, b"m", derivation=(KDF_HKDF_SHA256, b"")),
                 lambda: signing.verify(material, b"m", one.value, derivation=(KDF_HKDF_SHA256, b""))):
        with pytest.raises(InvalidRequest) as err:
            call()
        assert err.value.message == f"error deriving key: {MISSING_CONTEXT}"


def test_the_derived_key_cache_holds_fixed_size_entries_and_stays_bounded() -> None:
    # Contexts are caller input up to the request size; the cache used to keep each one in its key.
    material = KeyMaterial.generate(KeyType.ED25519)
    big = b"c" * 100_000
    first = signing.sign(material, b"m", derivation=(KDF_HKDF_SHA256, big))
    derived = [k for k in material.cache if isinstance(k, tuple) and k[0] == "ed25519-derived"]
    assert derived and all(len(repr(k)) < 200 for k in derived)
    again = signing.sign(material, b"m", derivation=(KDF_HKDF_SHA256, big))
    assert again.derived_public_key == first.derived_public_key
    for i in range(3 * signing._DERIVED_CACHE_LIMIT):
        signing.sign(material, b"m", derivation=(KDF_HKDF_SHA256, i.to_bytes(4, "big")))
    assert len(material.cache) <= signing._DERIVED_CACHE_LIMIT + 2  # plus non-derived entries


def test_signatures_carry_no_key_material_in_reprs() -> None:
    material = KeyMaterial.generate(KeyType.ED25519)
    sig = signing.sign(material, b"m", derivation=(KDF_HKDF_SHA256, b"c"))
    assert material.reveal_key().hex() not in repr(material)
    assert "derived_public_key" in repr(sig)  # public data only
