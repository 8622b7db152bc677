"""Authenticated encryption with associated data, with nonces that callers never see.

Every AEAD here produces ``nonce || ciphertext || tag`` and generates the nonce itself from the OS CSPRNG:
there is no public way to pass a nonce, because a repeated nonce under one key breaks both confidentiality
and authenticity of GCM and ChaCha20-Poly1305. Every way decryption can fail (blob too short, wrong key,
tampered bytes, wrong associated data) raises the one :class:`~strongroom.errors.DecryptionFailed` with a
fixed message, so an attacker who can submit ciphertexts learns nothing about which check failed.

``AesGcm`` (AES-256-GCM, 12-byte random nonce) is the fast record cipher. Random 96-bit nonces collide with
probability ~2^-32 after 2^32 messages, so one key must encrypt at most :data:`AES_GCM_MESSAGE_LIMIT`
messages; counting and rotation are the keyring's job (DESIGN.md section 3). ``XChaCha20Poly1305`` uses
192-bit random nonces and is safe at any volume; it wraps keyrings under root keys.

The ``_seal_with_nonce``/``_open`` methods exist for known-answer tests against published vectors and as the
single implementation behind ``encrypt``/``decrypt``; nothing outside this module and its tests may call them.
"""

from __future__ import annotations

from typing import Final, NoReturn, Protocol, runtime_checkable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from nacl import bindings as _sodium
from nacl.exceptions import CryptoError as _SodiumCryptoError

from strongroom.crypto.random import random_bytes
from strongroom.crypto.secret import SecretBytes
from strongroom.errors import DecryptionFailed

__all__ = [
    "AES_GCM_MESSAGE_LIMIT",
    "KEY_SIZE",
    "Aead",
    "AesGcm",
    "XChaCha20Poly1305",
    "generate_key",
]

KEY_SIZE: Final = 32
TAG_SIZE: Final = 16
# NIST SP 800-38D section 8.3: with random 96-bit IVs, at most 2^32 invocations per key.
AES_GCM_MESSAGE_LIMIT: Final = 2**32


@runtime_checkable
class Aead(Protocol):
    """What every cipher here offers. Implementations choose their nonces; callers cannot."""

    def encrypt(self, plaintext: bytes, associated_data: bytes = b"") -> bytes:
        """Return ``nonce || ciphertext || tag``; ``associated_data`` is authenticated, not stored."""
        ...

    def decrypt(self, blob: bytes, associated_data: bytes = b"") -> bytes:
        """Return the plaintext; raise ``DecryptionFailed`` for any blob that does not authenticate."""
        ...


def generate_key() -> SecretBytes:
    """Return a fresh 32-byte key for either cipher."""
    return SecretBytes(random_bytes(KEY_SIZE), kind="aead key")


def _check_key(key: SecretBytes) -> bytes:
    if not isinstance(key, SecretBytes):
        raise TypeError("AEAD keys must be given as SecretBytes")
    raw = key.reveal()
    if len(raw) != KEY_SIZE:
        raise ValueError(f"AEAD keys must be {KEY_SIZE} bytes")
    return raw


class _NoPickle:
    """Mixin: cipher objects hold a key, so they refuse pickling like ``SecretBytes`` does."""

    __slots__ = ()

    def __reduce__(self) -> NoReturn:
        raise TypeError(f"{type(self).__name__} cannot be pickled")

    def __reduce_ex__(self, protocol: object) -> NoReturn:
        raise TypeError(f"{type(self).__name__} cannot be pickled")


class AesGcm(_NoPickle):
    """AES-256-GCM through ``cryptography`` (OpenSSL). Output: 12-byte nonce || ciphertext || 16-byte tag.

    Raises ``ValueError`` if the key is not 32 bytes, ``TypeError`` if it is not ``SecretBytes``.
    """

    __slots__ = ("_cipher",)

    NONCE_SIZE: Final = 12
    OVERHEAD: Final = NONCE_SIZE + TAG_SIZE

    def __init__(self, key: SecretBytes) -> None:
        self._cipher = AESGCM(_check_key(key))

    def __repr__(self) -> str:
        return "AesGcm(key=<hidden>)"

    def encrypt(self, plaintext: bytes, associated_data: bytes = b"") -> bytes:
        """Encrypt under a fresh random nonce. See :data:`AES_GCM_MESSAGE_LIMIT` for the per-key bound."""
        return self._seal_with_nonce(random_bytes(self.NONCE_SIZE), plaintext, associated_data)

    def decrypt(self, blob: bytes, associated_data: bytes = b"") -> bytes:
        """Decrypt ``nonce || ciphertext || tag``. Raises ``DecryptionFailed`` on any failure."""
        return self._open(blob, associated_data)

    def _seal_with_nonce(self, nonce: bytes, plaintext: bytes, associated_data: bytes) -> bytes:
        if len(nonce) != self.NONCE_SIZE:
            raise ValueError("AES-GCM nonces are 12 bytes")
        return nonce + self._cipher.encrypt(nonce, plaintext, associated_data)

    def _open(self, blob: bytes, associated_data: bytes) -> bytes:
        if len(blob) < self.OVERHEAD:
            raise DecryptionFailed()
        nonce, sealed = blob[: self.NONCE_SIZE], blob[self.NONCE_SIZE :]
        try:
            return self._cipher.decrypt(nonce, sealed, associated_data)
        except InvalidTag:
            # "from None": the dependency's exception adds nothing a client may learn.
            raise DecryptionFailed() from None


class XChaCha20Poly1305(_NoPickle):
    """XChaCha20-Poly1305 (IETF construction) through libsodium.

    Output: 24-byte nonce || ciphertext || 16-byte tag. The 192-bit random nonce makes collisions negligible
    at any message count, which is why root keys use it. Raises ``ValueError`` if the key is not 32 bytes,
    ``TypeError`` if it is not ``SecretBytes``.
    """

    __slots__ = ("_key",)

    NONCE_SIZE: Final = 24
    OVERHEAD: Final = NONCE_SIZE + TAG_SIZE

    def __init__(self, key: SecretBytes) -> None:
        # libsodium takes the raw key on every call; keep it private and out of the repr.
        self._key = _check_key(key)

    def __repr__(self) -> str:
        return "XChaCha20Poly1305(key=<hidden>)"

    def encrypt(self, plaintext: bytes, associated_data: bytes = b"") -> bytes:
        """Encrypt under a fresh random 24-byte nonce."""
        return self._seal_with_nonce(random_bytes(self.NONCE_SIZE), plaintext, associated_data)

    def decrypt(self, blob: bytes, associated_data: bytes = b"") -> bytes:
        """Decrypt ``nonce || ciphertext || tag``. Raises ``DecryptionFailed`` on any failure."""
        return self._open(blob, associated_data)

    def _seal_with_nonce(self, nonce: bytes, plaintext: bytes, associated_data: bytes) -> bytes:
        if len(nonce) != self.NONCE_SIZE:
            raise ValueError("XChaCha20-Poly1305 nonces are 24 bytes")
        sealed: bytes = _sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(
            plaintext, associated_data, nonce, self._key
        )
        return nonce + sealed

    def _open(self, blob: bytes, associated_data: bytes) -> bytes:
        if len(blob) < self.OVERHEAD:
            raise DecryptionFailed()
        nonce, sealed = blob[: self.NONCE_SIZE], blob[self.NONCE_SIZE :]
        try:
            plaintext: bytes = _sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(
                sealed, associated_data, nonce, self._key
            )
        except _SodiumCryptoError:
            raise DecryptionFailed() from None
        return plaintext
