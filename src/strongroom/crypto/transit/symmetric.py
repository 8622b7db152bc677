"""Transit encryption and decryption, byte-compatible with Vault's ``keysutil``.

Layouts (``docs/spec/transit-ciphertext.md`` has them with test vectors); the blob is what follows
``vault:vN:`` after base64 decoding:

* AES-GCM (128/256) and ChaCha20-Poly1305: ``nonce(12) || ciphertext || tag(16)``.
* XChaCha20-Poly1305: ``nonce(24) || ciphertext || tag(16)``.
* Convergent encryption (version 3, the only one Vault still decrypts): the key is derived from the
  context with ``enc_bytes + 32`` bytes; the first part encrypts, the last 32 bytes key an HMAC-SHA256 of
  the plaintext whose first nonce-size bytes are the nonce. Same plaintext and context, same ciphertext.
* RSA: RSA-OAEP with SHA-256 (also for MGF1) and no label, the raw OAEP output.

Random nonces come from the OS CSPRNG and are never accepted from callers except Vault's legacy
convergent version 1, which this server refuses as Vault does.
"""

from __future__ import annotations

import hmac
from hashlib import sha256
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from nacl import bindings as sodium
from nacl.exceptions import CryptoError as SodiumError

from strongroom.crypto.random import random_bytes
from strongroom.crypto.transit.derive import derive
from strongroom.crypto.transit.keytypes import KeyType
from strongroom.crypto.transit.material import KeyMaterial
from strongroom.errors import CiphertextRejected, InvalidRequest

CURRENT_CONVERGENT_VERSION = 3

_OAEP = padding.OAEP(mgf=padding.MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(), label=None)


class _XChaCha:
    """XChaCha20-Poly1305 (libsodium) with the AEAD object interface of ``cryptography``."""

    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        self._key = key

    def encrypt(self, nonce: bytes, data: bytes, aad: bytes | None) -> bytes:
        out: bytes = sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(data, aad, nonce, self._key)
        return out

    def decrypt(self, nonce: bytes, data: bytes, aad: bytes | None) -> bytes:
        try:
            out: bytes = sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(data, aad, nonce, self._key)
        except SodiumError:
            raise InvalidTag() from None
        return out


def nonce_size(key_type: KeyType) -> int:
    """Nonce length of a symmetric AEAD type."""
    return 24 if key_type is KeyType.XCHACHA20_POLY1305 else 12


def _aead(key_type: KeyType, key: bytes) -> Any:
    if key_type is KeyType.XCHACHA20_POLY1305:
        return _XChaCha(key)
    if key_type is KeyType.CHACHA20_POLY1305:
        return ChaCha20Poly1305(key)
    return AESGCM(key)


def _cipher(material: KeyMaterial, derived: bool, kdf: int, context: bytes, extra: int) -> tuple[Any, bytes]:
    """Return ``(aead, hmac_key)`` for one operation: the key itself, or one derived for ``context``."""
    kt = material.key_type
    enc_bytes = kt.symmetric_key_bytes
    if not derived:
        cached = material.cache.get("aead")
        if cached is None:
            cached = material.cache["aead"] = _aead(kt, material.reveal_key())
        return cached, b""
    key = derive(material.reveal_key(), context, kdf, enc_bytes + extra)
    if len(key) < enc_bytes + extra:
        raise InvalidRequest("could not derive key, length too small")
    return _aead(kt, key[:enc_bytes]), key[enc_bytes:]


def encrypt(
    material: KeyMaterial,
    plaintext: bytes,
    *,
    derived: bool = False,
    kdf: int = 1,
    context: bytes = b"",
    convergent_version: int = 0,
    associated_data: bytes | None = None,
) -> bytes:
    """Encrypt ``plaintext`` with one key version and return the raw blob (before base64).

    ``convergent_version`` is 0 for random nonces, else the version's convergent scheme (only 3 is
    accepted).

    Raises:
        InvalidRequest: missing context on a derived key, an old convergent scheme, associated data for
            RSA, a plaintext too long for the RSA key, or a type that cannot encrypt.
    """
    kt = material.key_type
    if kt.rsa:
        if associated_data:
            raise InvalidRequest(f"associated data is not supported by key type {kt.value}")
        public = material.public_key
        assert isinstance(public, rsa.RSAPublicKey)
        try:
            return public.encrypt(plaintext, _OAEP)
        except ValueError:
            # The only failure: more than k - 66 bytes for OAEP with SHA-256 (Vault answers this with a 500).
            raise InvalidRequest(
                "failed to RSA encrypt the plaintext: message too long for RSA key size"
            ) from None
    if not kt.symmetric_aead:
        raise InvalidRequest(f"message encryption not supported for key type {kt.value}")
    if convergent_version:
        if convergent_version != CURRENT_CONVERGENT_VERSION:
            raise InvalidRequest(
                f"refusing to support decryption with old convergent encryption key: version {convergent_version}"
            )
        aead, hmac_key = _cipher(material, derived, kdf, context, 32)
        if not hmac_key:
            raise InvalidRequest("convergent encryption requires derivation to be enabled")
        nonce = hmac.digest(hmac_key, plaintext, sha256)[: nonce_size(kt)]
    else:
        aead, _ = _cipher(material, derived, kdf, context, 0)
        nonce = random_bytes(nonce_size(kt))
    sealed: bytes = aead.encrypt(nonce, plaintext, associated_data or None)
    return nonce + sealed


def decrypt(
    material: KeyMaterial,
    blob: bytes,
    *,
    derived: bool = False,
    kdf: int = 1,
    context: bytes = b"",
    associated_data: bytes | None = None,
) -> bytes:
    """Decrypt a raw blob made by :func:`encrypt` (or by Vault) with one key version.

    Raises:
        CiphertextRejected: the blob does not authenticate (wrong key, context, associated data, or
            tampering) or is too short: one message for all of these.
        InvalidRequest: missing context on a derived key, or a type that cannot decrypt.
    """
    kt = material.key_type
    if kt.rsa:
        if associated_data:
            raise InvalidRequest(f"associated data is not supported by key type {kt.value}")
        private = material.private_key
        if not isinstance(private, rsa.RSAPrivateKey):
            raise InvalidRequest("cannot decrypt ciphertext, key version does not have a private counterpart")
        try:
            return private.decrypt(blob, _OAEP)
        except ValueError:
            raise CiphertextRejected() from None
    if not kt.symmetric_aead:
        raise InvalidRequest(f"message decryption not supported for key type {kt.value}")
    # The key first, as Vault: a derived key without context is a usage error, whatever the blob.
    aead, _ = _cipher(material, derived, kdf, context, 0)
    size = nonce_size(kt)
    if len(blob) < size + 16:
        raise CiphertextRejected()
    try:
        out: bytes = aead.decrypt(blob[:size], blob[size:], associated_data or None)
    except InvalidTag:
        raise CiphertextRejected() from None
    return out
