"""Transit symmetric encryption: layouts, derivation, convergence and the one rejection error.

Independent checks use ``cryptography``/libsodium directly on the documented layout (nonce || ct || tag),
so a change of layout in ``symmetric.py`` fails here.
"""

from __future__ import annotations

import hmac
from hashlib import sha256

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from nacl import bindings as sodium

from strongroom.crypto.transit import symmetric
from strongroom.crypto.transit.derive import KDF_HKDF_SHA256, KDF_HMAC_SHA256_COUNTER, derive, derive_ed25519
from strongroom.crypto.transit.keytypes import KeyType
from strongroom.crypto.transit.material import KeyMaterial
from strongroom.errors import CiphertextRejected, InvalidRequest

AEADS = [KeyType.AES128_GCM96, KeyType.AES256_GCM96, KeyType.CHACHA20_POLY1305, KeyType.XCHACHA20_POLY1305]


def _independent_open(kt: KeyType, key: bytes, blob: bytes, aad: bytes | None) -> bytes:
    if kt is KeyType.XCHACHA20_POLY1305:
        out: bytes = sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(blob[24:], aad, blob[:24], key)
        return out
    cipher = ChaCha20Poly1305(key) if kt is KeyType.CHACHA20_POLY1305 else AESGCM(key)
    return cipher.decrypt(blob[:12], blob[12:], aad)


@pytest.mark.parametrize("kt", AEADS)
def test_layout_is_nonce_then_ciphertext_and_tag(kt: KeyType) -> None:
    material = KeyMaterial.generate(kt)
    assert len(material.reveal_key()) == kt.symmetric_key_bytes
    blob = symmetric.encrypt(material, b"attack at dawn", associated_data=b"aad")
    assert len(blob) == symmetric.nonce_size(kt) + len(b"attack at dawn") + 16
    assert _independent_open(kt, material.reveal_key(), blob, b"aad") == b"attack at dawn"
    assert symmetric.decrypt(material, blob, associated_data=b"aad") == b"attack at dawn"


@pytest.mark.parametrize("kt", AEADS)
def test_random_nonces_differ(kt: KeyType) -> None:
    material = KeyMaterial.generate(kt)
    blobs = {symmetric.encrypt(material, b"same")[: symmetric.nonce_size(kt)] for _ in range(50)}
    assert len(blobs) == 50


@pytest.mark.parametrize("kt", AEADS)
def test_every_authentication_failure_is_the_same_error(kt: KeyType) -> None:
    material = KeyMaterial.generate(kt)
    other = KeyMaterial.generate(kt)
    blob = symmetric.encrypt(material, b"secret", associated_data=b"a")
    tampered = blob[:-1] + bytes([blob[-1] ^ 1])
    cases = [
        (other, blob, b"a"),  # wrong key
        (material, tampered, b"a"),  # tampered tag
        (material, blob, b"b"),  # wrong associated data
        (material, blob, None),  # associated data missing
        (material, blob[:5], b"a"),  # truncated
    ]
    messages = set()
    for mat, data, aad in cases:
        with pytest.raises(CiphertextRejected) as info:
            symmetric.decrypt(mat, data, associated_data=aad)
        messages.add(info.value.message)
    assert messages == {"cipher: message authentication failed"}


@pytest.mark.parametrize("kt", AEADS)
def test_derived_key_is_hkdf_of_context(kt: KeyType) -> None:
    material = KeyMaterial.generate(kt)
    blob = symmetric.encrypt(material, b"payload", derived=True, context=b"user-1")
    size = kt.symmetric_key_bytes
    expected_key = HKDF(algorithm=hashes.SHA256(), length=size, salt=None, info=b"user-1").derive(
        material.reveal_key()
    )
    assert _independent_open(kt, expected_key, blob, None) == b"payload"
    with pytest.raises(CiphertextRejected):
        symmetric.decrypt(material, blob, derived=True, context=b"user-2")
    with pytest.raises(InvalidRequest, match="missing 'context' for key derivation"):
        symmetric.decrypt(material, blob, derived=True, context=b"")


@pytest.mark.parametrize("kt", AEADS)
def test_convergent_v3_nonce_is_hmac_of_plaintext(kt: KeyType) -> None:
    material = KeyMaterial.generate(kt)
    a = symmetric.encrypt(material, b"same", derived=True, context=b"ctx", convergent_version=3)
    b = symmetric.encrypt(material, b"same", derived=True, context=b"ctx", convergent_version=3)
    c = symmetric.encrypt(material, b"other", derived=True, context=b"ctx", convergent_version=3)
    assert a == b and a != c
    size = kt.symmetric_key_bytes
    okm = HKDF(algorithm=hashes.SHA256(), length=size + 32, salt=None, info=b"ctx").derive(material.reveal_key())
    nonce = hmac.digest(okm[size:], b"same", sha256)[: symmetric.nonce_size(kt)]
    assert a.startswith(nonce)
    assert _independent_open(kt, okm[:size], a, None) == b"same"
    assert symmetric.decrypt(material, a, derived=True, context=b"ctx") == b"same"


def test_old_convergent_versions_are_refused() -> None:
    material = KeyMaterial.generate(KeyType.AES256_GCM96)
    with pytest.raises(InvalidRequest, match="old convergent encryption key: version 2"):
        symmetric.encrypt(material, b"x", derived=True, context=b"c", convergent_version=2)


def test_legacy_counter_kdf_matches_sp800_108_single_round() -> None:
    key = bytes(range(32))
    expected = hmac.digest(key, b"\x00\x00\x00\x00" + b"ctx" + b"\x00\x00\x01\x00", sha256)
    assert derive(key, b"ctx", KDF_HMAC_SHA256_COUNTER, 32) == expected
    assert derive(key, b"ctx", KDF_HKDF_SHA256, 32) != expected


def test_derived_ed25519_seed_is_first_hkdf_bytes() -> None:
    material = KeyMaterial.generate(KeyType.ED25519)
    key = material.reveal_key()
    assert len(key) == 64
    derived = derive_ed25519(key, b"tenant", KDF_HKDF_SHA256)
    seed = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"tenant").derive(key)
    assert derived.private_bytes_raw() == seed


def test_rsa_is_oaep_sha256() -> None:
    material = KeyMaterial.generate(KeyType.RSA_2048)
    blob = symmetric.encrypt(material, b"rsa payload")
    private = material.private_key
    assert private is not None and not isinstance(private, type(None))
    oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
    assert private.decrypt(blob, oaep) == b"rsa payload"  # type: ignore[union-attr,call-arg]
    assert symmetric.decrypt(material, blob) == b"rsa payload"
    with pytest.raises(CiphertextRejected):
        symmetric.decrypt(material, blob[:-1] + bytes([blob[-1] ^ 1]))
    with pytest.raises(InvalidRequest, match="associated data is not supported"):
        symmetric.encrypt(material, b"x", associated_data=b"a")


@pytest.mark.parametrize("kt", [KeyType.ED25519, KeyType.ECDSA_P256, KeyType.HMAC])
def test_types_without_encryption_refuse(kt: KeyType) -> None:
    material = KeyMaterial.generate(kt)
    with pytest.raises(InvalidRequest, match="message encryption not supported"):
        symmetric.encrypt(material, b"x")
    with pytest.raises(InvalidRequest, match="message decryption not supported"):
        symmetric.decrypt(material, b"x" * 40)
