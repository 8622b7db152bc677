"""AES-KWP (RFC 5649) and the BYOK import format: unwrapping, key parsing, key-pair matching.

Known answers come from RFC 5649 section 6 and Wycheproof's AES-256 KWP group
(``tests/vectors/transit/kwp.json``). The import format is produced here independently, as
``vault transit import`` produces it: RSA-OAEP of a fresh AES-256 key with ``cryptography``, then KWP.
"""

from __future__ import annotations

import base64
import functools
import json
import os
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, padding, rsa, x25519
from cryptography.hazmat.primitives.keywrap import aes_key_wrap_with_padding

from strongroom.crypto.transit import importing, keywrap
from strongroom.crypto.transit.keytypes import KeyType
from strongroom.crypto.transit.material import KeyMaterial
from strongroom.errors import InvalidRequest

VECTORS = json.loads((Path(__file__).parents[2] / "vectors" / "transit" / "kwp.json").read_text())
RFC5649 = VECTORS["rfc5649"]["cases"]
WYCHEPROOF = VECTORS["wycheproof_kwp_aes256"]["cases"]


def _hex(case: dict[str, Any], name: str) -> bytes:
    return bytes.fromhex(case[name])


# -- KWP ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", RFC5649, ids=lambda c: c["name"])
def test_rfc5649_vectors(case: dict[str, Any]) -> None:
    kek, key, wrapped = _hex(case, "kek"), _hex(case, "key"), _hex(case, "wrapped")
    assert keywrap.wrap(kek, key) == wrapped
    assert keywrap.unwrap(kek, wrapped) == key


@pytest.mark.parametrize("case", WYCHEPROOF, ids=lambda c: f"tc{c['tcId']}")
def test_wycheproof_kwp_aes256(case: dict[str, Any]) -> None:
    kek, key, wrapped = _hex(case, "kek"), _hex(case, "key"), _hex(case, "wrapped")
    if case["valid"]:
        assert keywrap.unwrap(kek, wrapped) == key
        assert keywrap.wrap(kek, key) == wrapped
    else:
        with pytest.raises(InvalidRequest) as err:
            keywrap.unwrap(kek, wrapped)
        assert err.value.message == keywrap.ERR_INTEGRITY


def test_every_modified_byte_fails_integrity() -> None:
    case = RFC5649[0]
    kek, wrapped = _hex(case, "kek"), _hex(case, "wrapped")
    for i in range(len(wrapped)):
        tampered = bytearray(wrapped)
        tampered[i] ^= 0x01
        with pytest.raises(InvalidRequest, match=r"^kwp: unwrap failed integrity check$"):
            keywrap.unwrap(kek, bytes(tampered))
    with pytest.raises(InvalidRequest, match="integrity"):
        keywrap.unwrap(bytes(24), wrapped)


def test_bounded_unwrap_has_tinks_limits_and_messages() -> None:
    kek = os.urandom(32)
    # Tink (and so Vault) unwraps 24..8200 bytes in steps of 8.
    small = keywrap.wrap(kek, b"1234567")
    assert len(small) == 16 and keywrap.unwrap(kek, small) == b"1234567"
    with pytest.raises(InvalidRequest, match=r"^kwp: wrapped key size too small$"):
        keywrap.unwrap_bounded(kek, small)
    nine = keywrap.wrap(kek, b"123456789")
    assert len(nine) == 24 and keywrap.unwrap_bounded(kek, nine) == b"123456789"
    largest = os.urandom(keywrap.MAX_WRAP_BYTES)
    assert keywrap.unwrap_bounded(kek, keywrap.wrap(kek, largest)) == largest
    with pytest.raises(InvalidRequest, match=r"^kwp: wrapped key size too large$"):
        keywrap.unwrap_bounded(kek, keywrap.wrap(kek, largest + b"x"))
    with pytest.raises(InvalidRequest, match=r"^kwp: wrapped key size must be a multiple of 8 bytes$"):
        keywrap.unwrap_bounded(kek, nine + b"x")


def test_wrap_refuses_empty_key_and_odd_kek() -> None:
    with pytest.raises(InvalidRequest, match="too small"):
        keywrap.wrap(bytes(32), b"")
    with pytest.raises(InvalidRequest, match="invalid AES key size"):
        keywrap.wrap(bytes(20), b"0123456789abcdef")
    with pytest.raises(InvalidRequest, match="invalid AES key size"):
        keywrap.unwrap(bytes(20), bytes(24))


# -- the import wire format --------------------------------------------------------------------------------


@functools.cache
def _wrapping() -> KeyMaterial:
    return KeyMaterial.generate(KeyType.RSA_4096)


@functools.cache
def _rsa(bits: int) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


_CLIENT_HASHES = {"SHA1": hashes.SHA1, "SHA224": hashes.SHA224, "SHA256": hashes.SHA256,
                  "SHA384": hashes.SHA384, "SHA512": hashes.SHA512}


def client_wrap(target: bytes, hash_name: str = "SHA256", ephemeral: bytes | None = None) -> bytes:
    """What ``vault transit import`` sends (before base64), made with ``cryptography`` alone."""
    public = _wrapping().public_key
    assert isinstance(public, rsa.RSAPublicKey)
    eph = os.urandom(32) if ephemeral is None else ephemeral
    algorithm = _CLIENT_HASHES[hash_name]()
    wrapped_eph = public.encrypt(eph, padding.OAEP(mgf=padding.MGF1(algorithm), algorithm=algorithm, label=None))
    return wrapped_eph + aes_key_wrap_with_padding(eph, target)


def server_unwrap(blob: bytes, hash_name: str = "SHA256") -> bytes:
    eph, key = importing.split_ciphertext(blob)
    return importing.unwrap_target_key(_wrapping(), eph, key, hash_name)


@pytest.mark.parametrize("hash_name", ["SHA1", "SHA224", "SHA256", "SHA384", "SHA512"])
def test_unwrap_round_trip_for_every_oaep_hash(hash_name: str) -> None:
    target = os.urandom(32)
    assert server_unwrap(client_wrap(target, hash_name), hash_name.lower()) == target


def test_unwrap_refusals_in_vaults_words() -> None:
    target = os.urandom(32)
    with pytest.raises(InvalidRequest, match=r"^crypto/rsa: decryption error$"):
        server_unwrap(client_wrap(target, "SHA1"), "SHA256")
    blob = client_wrap(target)
    tampered = blob[:10] + bytes([blob[10] ^ 1]) + blob[11:]
    with pytest.raises(InvalidRequest, match=r"^crypto/rsa: decryption error$"):
        server_unwrap(tampered)
    with pytest.raises(InvalidRequest, match=r"^expected ephemeral AES key to be 256-bit$"):
        server_unwrap(client_wrap(target, ephemeral=os.urandom(16)))
    with pytest.raises(InvalidRequest, match=r"^kwp: unwrap failed integrity check$"):
        server_unwrap(blob[:-1] + bytes([blob[-1] ^ 1]))
    with pytest.raises(InvalidRequest, match=r"^provided ciphertext is too short$"):
        importing.split_ciphertext(blob[:512])
    with pytest.raises(InvalidRequest, match=r"^unknown hash function: md5$"):
        importing.check_hash_function("md5")
    assert importing.check_hash_function("sha384") == "SHA384"


# -- parsing imported keys -----------------------------------------------------------------------------------


def pkcs8(key: Any) -> bytes:
    der: bytes = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                   serialization.NoEncryption())
    return der


def pem(key: Any, fmt: serialization.PublicFormat = serialization.PublicFormat.SubjectPublicKeyInfo) -> bytes:
    out: bytes = key.public_key().public_bytes(serialization.Encoding.PEM, fmt)
    return out


def _der(tag: int, body: bytes) -> bytes:
    n = len(body)
    if n < 0x80:
        return bytes([tag, n]) + body
    size = (n.bit_length() + 7) // 8
    return bytes([tag, 0x80 | size]) + n.to_bytes(size, "big") + body


def rsa_pss_pkcs8(key: rsa.RSAPrivateKey) -> bytes:
    """The same RSA key in a PKCS#8 with the RSASSA-PSS algorithm identifier (no parameters)."""
    pkcs1 = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.TraditionalOpenSSL,
                              serialization.NoEncryption())
    pss_oid = _der(0x06, bytes.fromhex("2a864886f70d01010a"))
    return _der(0x30, _der(0x02, b"\x00") + _der(0x30, pss_oid) + _der(0x04, pkcs1))


def _import_error(kt: KeyType, key: bytes, *, private: bool = True, derived: bool = False) -> str:
    with pytest.raises(InvalidRequest) as err:
        importing.material_from_import(kt, key, private=private, derived=derived)
    return err.value.message


@pytest.mark.parametrize("kt", [KeyType.AES128_GCM96, KeyType.AES256_GCM96, KeyType.CHACHA20_POLY1305,
                                KeyType.XCHACHA20_POLY1305])
def test_symmetric_import_takes_the_raw_key(kt: KeyType) -> None:
    key = os.urandom(kt.symmetric_key_bytes)
    material = importing.material_from_import(kt, key, private=True, derived=False)
    assert material.reveal_key() == key and len(material.reveal_hmac_key()) == 32
    assert material.reveal_hmac_key() != key
    wrong = kt.symmetric_key_bytes + 1
    assert _import_error(kt, bytes(wrong)) == f"invalid key size {wrong} bytes for key type {kt.value}"
    assert _import_error(kt, b"", private=False) == "provided type does not support public_key import"


def test_hmac_import_bounds_and_hmac_key() -> None:
    for size in (32, 512):
        key = os.urandom(size)
        material = importing.material_from_import(KeyType.HMAC, key, private=True, derived=False)
        assert material.reveal_key() == key == material.reveal_hmac_key()
    assert _import_error(KeyType.HMAC, bytes(31)) == "invalid key size 31 bytes for key type hmac"
    assert _import_error(KeyType.HMAC, bytes(513)) == "invalid key size 513 bytes for key type hmac"


@pytest.mark.parametrize(
    ("kt", "make"),
    [
        (KeyType.RSA_2048, lambda: _rsa(2048)),
        (KeyType.ECDSA_P256, lambda: ec.generate_private_key(ec.SECP256R1())),
        (KeyType.ECDSA_P384, lambda: ec.generate_private_key(ec.SECP384R1())),
        (KeyType.ECDSA_P521, lambda: ec.generate_private_key(ec.SECP521R1())),
        (KeyType.ED25519, ed25519.Ed25519PrivateKey.generate),
    ],
    ids=lambda v: v.value if isinstance(v, KeyType) else "",
)
def test_asymmetric_private_and_public_imports(kt: KeyType, make: Any) -> None:
    key = make()
    material = importing.material_from_import(kt, pkcs8(key), private=True, derived=False)
    assert material.has_private
    assert material.public_key_text() == KeyMaterial(kt, private=key).public_key_text()
    public_only = importing.material_from_import(kt, pem(key), private=False, derived=False)
    assert not public_only.has_private
    assert public_only.public_key_text() == material.public_key_text()
    # Completing the public-only version keeps its HMAC key and yields the same key pair.
    completed = importing.complete_version(kt, public_only, pkcs8(key))
    assert completed.has_private and completed.reveal_hmac_key() == public_only.reveal_hmac_key()
    assert completed.public_key_text() == material.public_key_text()
    for stored in (material, public_only, completed):  # the storage encoding keeps what was imported
        again = KeyMaterial.deserialize(stored.serialize())
        assert (again.has_private, again.public_key_text()) == (stored.has_private, stored.public_key_text())
    if kt is KeyType.ED25519:
        raw = key.private_bytes_raw() + key.public_key().public_bytes_raw()
        assert completed.reveal_key() == raw == material.reveal_key()


def test_completing_a_version_needs_the_matching_key() -> None:
    mine, other = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    public_only = importing.material_from_import(KeyType.ECDSA_P256, pem(mine), private=False, derived=False)
    for wrong in (other, _rsa(2048), ed25519.Ed25519PrivateKey.generate(), ec.generate_private_key(ec.SECP384R1())):
        with pytest.raises(InvalidRequest, match=f"^{importing.ERR_PAIR_MISMATCH}$"):
            importing.complete_version(KeyType.ECDSA_P256, public_only, pkcs8(wrong))


def test_private_key_refusals_in_vaults_words() -> None:
    r2048 = _rsa(2048)
    assert _import_error(KeyType.RSA_3072, pkcs8(r2048)) == (
        "invalid key size: expected 384 bytes, got 256 bytes")
    assert _import_error(KeyType.ECDSA_P256, pkcs8(r2048)) == (
        "invalid key type: expected ecdsa-p256, got *rsa.PrivateKey")
    assert _import_error(KeyType.RSA_2048, pkcs8(ed25519.Ed25519PrivateKey.generate())) == (
        "invalid key type: expected rsa-2048, got ed25519.PrivateKey")
    assert _import_error(KeyType.ECDSA_P256, pkcs8(ec.generate_private_key(ec.SECP384R1()))) == (
        "invalid curve: expected P-256, got P-384")
    assert _import_error(KeyType.ECDSA_P256, pkcs8(ec.generate_private_key(ec.SECP224R1()))) == (
        "invalid curve: expected P-256, got P-224")
    assert _import_error(KeyType.ED25519, pkcs8(x25519.X25519PrivateKey.generate())) == (
        "invalid key type: expected ed25519, got *ecdh.PrivateKey")
    assert _import_error(KeyType.ED25519, pkcs8(ed448.Ed448PrivateKey.generate())) == (
        "error parsing asymmetric key: x509: PKCS#8 wrapping contained private key with unknown algorithm: "
        "1.3.101.113")
    assert _import_error(KeyType.ECDSA_P256, pkcs8(ec.generate_private_key(ec.SECP256K1()))) == (
        "error parsing asymmetric key: x509: failed to parse EC private key embedded in PKCS#8: "
        "x509: unknown elliptic curve")
    traditional = serialization.PrivateFormat.TraditionalOpenSSL
    pkcs1 = r2048.private_bytes(serialization.Encoding.DER, traditional, serialization.NoEncryption())
    assert _import_error(KeyType.RSA_2048, pkcs1) == (
        "error parsing asymmetric key: x509: failed to parse private key "
        "(use ParsePKCS1PrivateKey instead for this key format)")
    sec1 = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.DER, traditional, serialization.NoEncryption())
    assert _import_error(KeyType.ECDSA_P256, sec1) == (
        "error parsing asymmetric key: x509: failed to parse private key "
        "(use ParseECPrivateKey instead for this key format)")
    for garbage in (os.urandom(40), b"", b"\x30\x84\xff\xff\xff\xff", pkcs8(r2048)[:-20]):
        assert _import_error(KeyType.RSA_2048, garbage).startswith("error parsing asymmetric key: ")


def test_rsa_modulus_must_be_exactly_the_type_size() -> None:
    short = rsa.generate_private_key(public_exponent=65537, key_size=2047)
    assert _import_error(KeyType.RSA_2048, pkcs8(short)) == "invalid key size: expected 2048 bits, got 2047 bits"


def test_rsa_pss_pkcs8_is_accepted_and_can_do_oaep() -> None:
    key = _rsa(2048)
    material = importing.material_from_import(KeyType.RSA_2048, rsa_pss_pkcs8(key), private=True, derived=False)
    private = material.private_key
    assert isinstance(private, rsa.RSAPrivateKey)
    assert private.private_numbers() == key.private_numbers()
    oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
    assert key.decrypt(private.public_key().encrypt(b"m", oaep), oaep) == b"m"
    assert KeyMaterial.deserialize(material.serialize()).public_key_text() == material.public_key_text()


def test_public_key_refusals_in_vaults_words() -> None:
    def public_error(kt: KeyType, text: bytes, derived: bool = False) -> str:
        return _import_error(kt, text, private=False, derived=derived)

    assert public_error(KeyType.RSA_2048, b"not pem") == "error parsing public key: not in PEM format"
    assert public_error(KeyType.RSA_2048, pem(_rsa(2048), serialization.PublicFormat.PKCS1)) == (
        "error parsing public key: x509: failed to parse public key "
        "(use ParsePKCS1PublicKey instead for this key format)")
    assert public_error(KeyType.ED25519, pem(x25519.X25519PrivateKey.generate())) == (
        "invalid key type: expected ed25519, got *ecdh.PublicKey")
    assert public_error(KeyType.ED25519, pem(ed448.Ed448PrivateKey.generate())) == (
        "error parsing public key: x509: unknown public key algorithm")
    assert public_error(KeyType.ED25519, pem(dsa.generate_private_key(2048))) == (
        "invalid key type: expected ed25519, got *dsa.PublicKey")
    assert public_error(KeyType.ECDSA_P256, pem(ec.generate_private_key(ec.SECP256K1()))) == (
        "error parsing public key: x509: unsupported elliptic curve")
    assert public_error(KeyType.ECDSA_P384, pem(ec.generate_private_key(ec.SECP256R1()))) == (
        "invalid curve: expected P-384, got P-256")
    assert public_error(KeyType.RSA_2048, b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n").startswith(
        "error parsing public key: ")
    assert public_error(KeyType.ED25519, pem(ed25519.Ed25519PrivateKey.generate()), derived=True) == (
        "unable to import only public key for derived Ed25519 key: imported key should not be an Ed25519 key "
        "pair but is instead an HKDF key")


def test_pem_text_before_the_block_is_skipped_as_go_does() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    text = b"a comment line\n" + pem(key) + b"trailing words"
    material = importing.material_from_import(KeyType.ECDSA_P256, text, private=False, derived=False)
    assert material.public_key_text().encode() == pem(key)


def _public(kt: KeyType, text: bytes) -> str:
    return importing.material_from_import(kt, text, private=False, derived=False).public_key_text()


def test_pem_parsing_tries_a_bounded_number_of_blocks() -> None:
    # Pairing BEGIN and END lines with a regular expression was quadratic: 300 KB of BEGIN lines took
    # 30 s. Now at most _PEM_ATTEMPTS BEGIN lines are looked at.
    key = ec.generate_private_key(ec.SECP256R1())
    junk = b"-----BEGIN A-----\n"
    assert _public(KeyType.ECDSA_P256, junk * (importing._PEM_ATTEMPTS - 1) + pem(key)).encode() == pem(key)
    assert _import_error(KeyType.ECDSA_P256, junk * importing._PEM_ATTEMPTS + pem(key), private=False) == (
        "error parsing public key: not in PEM format")
    assert _import_error(KeyType.ECDSA_P256, junk * 200_000, private=False) == (
        "error parsing public key: not in PEM format")
    # Same block rules as before: the END line names the BEGIN label, a label may hold dashes, CRLF works.
    body = pem(key).split(b"\n", 1)[1].rsplit(b"-----END", 1)[0]
    assert _public(KeyType.ECDSA_P256, b"-----BEGIN A-B-----\r\n" + body + b"-----END A-B-----").encode() == pem(key)
    assert _import_error(KeyType.ECDSA_P256, b"-----BEGIN A-----\n" + body + b"-----END B-----",
                         private=False) == "error parsing public key: not in PEM format"


def test_overlong_algorithm_identifiers_are_refused_as_malformed() -> None:
    # Arcs were built by shifting a Python int: quadratic in the OID's length (10 s for 300 KB).
    def spki(oid_body: bytes) -> bytes:
        def tlv(tag: int, content: bytes) -> bytes:
            n = len(content)
            length = bytes([n]) if n < 128 else bytes([0x84]) + n.to_bytes(4, "big")
            return bytes([tag]) + length + content
        der = tlv(0x30, tlv(0x30, tlv(0x06, oid_body)) + tlv(0x03, b"\x00\x01"))
        return b"-----BEGIN PUBLIC KEY-----\n" + base64.encodebytes(der) + b"-----END PUBLIC KEY-----\n"

    ok_length = b"\x2a" + b"\x01" * (importing._MAX_OID_BYTES - 1)
    assert _import_error(KeyType.RSA_2048, spki(ok_length), private=False) == (
        "error parsing public key: x509: unknown public key algorithm")
    for body in (ok_length + b"\x01", b"\x81" * 2_000_000 + b"\x01"):
        assert _import_error(KeyType.RSA_2048, spki(body), private=False) == (
            "error parsing public key: x509: malformed SubjectPublicKeyInfo")
