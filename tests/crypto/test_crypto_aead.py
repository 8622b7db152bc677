"""AEAD ciphers: published vectors, internal nonces, the one decryption error, key hygiene."""

from __future__ import annotations

import copy
import json
import pickle
from typing import Any

import pytest

from strongroom.crypto.aead import Aead, AesGcm, XChaCha20Poly1305, generate_key
from strongroom.crypto.secret import SecretBytes
from strongroom.errors import DecryptionFailed
from tests.crypto.crypto_tools import VECTORS

VECTOR_FILE: dict[str, Any] = json.loads((VECTORS / "aead.json").read_text())
CIPHERS: dict[str, type[AesGcm] | type[XChaCha20Poly1305]] = {
    "aes_256_gcm": AesGcm,
    "xchacha20_poly1305": XChaCha20Poly1305,
}
VECTOR_CASES = [
    pytest.param(CIPHERS[family], case, id=f"{family}-{case['name']}")
    for family in CIPHERS
    for case in VECTOR_FILE[family]["cases"]
]
KEY = SecretBytes(bytes(range(32)))


@pytest.fixture(params=list(CIPHERS.values()), ids=list(CIPHERS))
def cipher_class(request: pytest.FixtureRequest) -> type[AesGcm] | type[XChaCha20Poly1305]:
    cls: type[AesGcm] | type[XChaCha20Poly1305] = request.param
    return cls


@pytest.mark.parametrize(("cls", "case"), VECTOR_CASES)
def test_published_vectors(cls: type[AesGcm] | type[XChaCha20Poly1305], case: dict[str, str]) -> None:
    cipher = cls(SecretBytes(bytes.fromhex(case["key"])))
    nonce, aad = bytes.fromhex(case["nonce"]), bytes.fromhex(case["aad"])
    plaintext = bytes.fromhex(case["plaintext"])
    expected = nonce + bytes.fromhex(case["ciphertext"]) + bytes.fromhex(case["tag"])
    assert cipher._seal_with_nonce(nonce, plaintext, aad) == expected
    assert cipher._open(expected, aad) == plaintext
    assert cipher.decrypt(expected, aad) == plaintext


def test_round_trip_layout_and_fresh_nonces(cipher_class: type[AesGcm] | type[XChaCha20Poly1305]) -> None:
    cipher = cipher_class(KEY)
    assert isinstance(cipher, Aead)
    blobs = [cipher.encrypt(b"attack at dawn", b"records/1") for _ in range(50)]
    assert all(len(b) == cipher.NONCE_SIZE + len(b"attack at dawn") + 16 for b in blobs)
    assert len({b[: cipher.NONCE_SIZE] for b in blobs}) == 50
    assert all(cipher.decrypt(b, b"records/1") == b"attack at dawn" for b in blobs)
    assert cipher.decrypt(cipher.encrypt(b""), b"") == b""
    assert cipher.decrypt(cipher.encrypt(b"no aad")) == b"no aad"


def test_encrypt_accepts_no_nonce(cipher_class: type[AesGcm] | type[XChaCha20Poly1305]) -> None:
    cipher = cipher_class(KEY)
    with pytest.raises(TypeError):
        cipher.encrypt(b"x", b"", b"\x00" * 24)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        cipher.encrypt(b"x", nonce=b"\x00" * 24)  # type: ignore[call-arg]


def _failures(cipher: AesGcm | XChaCha20Poly1305, blob: bytes) -> dict[str, tuple[bytes, bytes]]:
    """Every way to get a blob wrong, as (blob, aad) pairs; the right AAD is b"aad"."""
    nonce_size = cipher.NONCE_SIZE
    return {
        "empty": (b"", b"aad"),
        "shorter than overhead": (blob[: cipher.OVERHEAD - 1], b"aad"),
        "nonce flipped": (bytes([blob[0] ^ 1]) + blob[1:], b"aad"),
        "ciphertext flipped": (
            blob[:nonce_size] + bytes([blob[nonce_size] ^ 0x80]) + blob[nonce_size + 1 :],
            b"aad",
        ),
        "tag flipped": (blob[:-1] + bytes([blob[-1] ^ 1]), b"aad"),
        "truncated": (blob[:-1], b"aad"),
        "extended": (blob + b"\x00", b"aad"),
        "wrong aad": (blob, b"aae"),
        "missing aad": (blob, b""),
    }


def test_every_failure_is_the_same_error(cipher_class: type[AesGcm] | type[XChaCha20Poly1305]) -> None:
    cipher = cipher_class(KEY)
    blob = cipher.encrypt(b"sixteen byte msg", b"aad")
    messages = set()
    for name, (bad_blob, aad) in _failures(cipher, blob).items():
        with pytest.raises(DecryptionFailed) as info:
            cipher.decrypt(bad_blob, aad)
        assert type(info.value) is DecryptionFailed, name
        # No chained dependency exception travels with it (a traceback must not tell which check failed).
        assert info.value.__cause__ is None, name
        assert info.value.__context__ is None or info.value.__suppress_context__, name
        messages.add(str(info.value))
    other_key = cipher_class(generate_key())
    with pytest.raises(DecryptionFailed) as wrong_key:
        other_key.decrypt(blob, b"aad")
    messages.add(str(wrong_key.value))
    assert messages == {"decryption failed"}


def test_ciphers_do_not_accept_each_others_blobs() -> None:
    gcm, xchacha = AesGcm(KEY), XChaCha20Poly1305(KEY)
    with pytest.raises(DecryptionFailed):
        xchacha.decrypt(gcm.encrypt(b"a" * 64))
    with pytest.raises(DecryptionFailed):
        gcm.decrypt(xchacha.encrypt(b"a" * 64))


@pytest.mark.parametrize("length", [0, 16, 31, 33, 64])
def test_key_must_be_32_bytes(cipher_class: type[AesGcm] | type[XChaCha20Poly1305], length: int) -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        cipher_class(SecretBytes(b"k" * length))


def test_key_must_be_secret_bytes(cipher_class: type[AesGcm] | type[XChaCha20Poly1305]) -> None:
    with pytest.raises(TypeError):
        cipher_class(bytes(32))  # type: ignore[arg-type]


def test_ciphers_hide_and_keep_their_keys(cipher_class: type[AesGcm] | type[XChaCha20Poly1305]) -> None:
    cipher = cipher_class(SecretBytes(b"\xab" * 32))
    assert "abab" not in repr(cipher).lower()
    assert "\\xab" not in repr(cipher)
    with pytest.raises(TypeError):
        pickle.dumps(cipher)
    with pytest.raises(TypeError):
        copy.deepcopy(cipher)


def test_wrong_nonce_length_is_rejected(cipher_class: type[AesGcm] | type[XChaCha20Poly1305]) -> None:
    cipher = cipher_class(KEY)
    with pytest.raises(ValueError, match="nonces are"):
        cipher._seal_with_nonce(b"\x00" * (cipher.NONCE_SIZE - 1), b"x", b"")


def test_generate_key() -> None:
    first, second = generate_key(), generate_key()
    assert isinstance(first, SecretBytes)
    assert len(first.reveal()) == 32
    assert first != second
