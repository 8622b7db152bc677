"""Key material: generation per type, storage round trip, redaction, damage detection."""

from __future__ import annotations

import pickle

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from strongroom.crypto.transit.keytypes import KeyType
from strongroom.crypto.transit.material import KeyMaterial
from strongroom.errors import CorruptRecord, InvalidRequest


@pytest.mark.parametrize("kt", [t for t in KeyType if t not in (KeyType.RSA_3072, KeyType.RSA_4096)])
def test_round_trip_keeps_every_secret(kt: KeyType) -> None:
    material = KeyMaterial.generate(kt)
    again = KeyMaterial.deserialize(material.serialize())
    assert again.key_type is kt
    assert again.reveal_key() == material.reveal_key()
    assert again.reveal_hmac_key() == material.reveal_hmac_key()
    assert again.public_key_text() == material.public_key_text()
    assert again.has_private


def test_generated_shapes_follow_vault() -> None:
    assert len(KeyMaterial.generate(KeyType.AES128_GCM96).reveal_key()) == 16
    hmac_key = KeyMaterial.generate(KeyType.HMAC, 64)
    assert len(hmac_key.reveal_key()) == 64 and hmac_key.reveal_key() == hmac_key.reveal_hmac_key()
    ed = KeyMaterial.generate(KeyType.ED25519)
    assert isinstance(ed.private_key, ed25519.Ed25519PrivateKey)
    assert ed.reveal_key()[32:] == ed.private_key.public_key().public_bytes_raw()
    p384 = KeyMaterial.generate(KeyType.ECDSA_P384)
    assert isinstance(p384.private_key, ec.EllipticCurvePrivateKey) and p384.private_key.curve.name == "secp384r1"
    assert p384.public_key_text().startswith("-----BEGIN PUBLIC KEY-----")
    rsa_key = KeyMaterial.generate(KeyType.RSA_3072)
    assert isinstance(rsa_key.private_key, rsa.RSAPrivateKey) and rsa_key.private_key.key_size == 3072
    with pytest.raises(InvalidRequest, match="between 32 and 512 bytes"):
        KeyMaterial.generate(KeyType.HMAC, 16)


def test_public_only_material_round_trips_without_private() -> None:
    full = KeyMaterial.generate(KeyType.ECDSA_P256)
    public_only = KeyMaterial(KeyType.ECDSA_P256, hmac_key=b"h" * 32, public=full.public_key)
    again = KeyMaterial.deserialize(public_only.serialize())
    assert not again.has_private
    assert again.public_key_text() == full.public_key_text()


def test_never_reveals_in_repr_or_pickle() -> None:
    material = KeyMaterial.generate(KeyType.AES256_GCM96)
    assert material.reveal_key().hex() not in repr(material)
    assert "redacted" in repr(material)
    with pytest.raises(TypeError):
        pickle.dumps(material)


def test_damaged_or_mismatched_material_is_refused() -> None:
    with pytest.raises(CorruptRecord):
        KeyMaterial.deserialize(b"not json")
    with pytest.raises(CorruptRecord):
        KeyMaterial.deserialize(b'{"t": "aes256-gcm96", "h": "AAAA", "k": "AAAA"}')  # 3-byte AES key
    rsa_doc = KeyMaterial.generate(KeyType.RSA_2048).serialize().replace(b'"rsa-2048"', b'"rsa-4096"')
    with pytest.raises(CorruptRecord):
        KeyMaterial.deserialize(rsa_doc)


def test_type_codes_match_vault() -> None:
    assert KeyType.AES256_GCM96.code == 0 and KeyType.XCHACHA20_POLY1305.code == 11
    assert KeyType.from_code(10) is KeyType.HMAC
    with pytest.raises(InvalidRequest):
        KeyType.from_code(10000)
    with pytest.raises(InvalidRequest, match="unknown key type nope"):
        KeyType.parse("nope")
