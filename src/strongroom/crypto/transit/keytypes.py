"""Transit key types: Vault's names, Vault's numeric codes, and what each type can do.

The numeric codes are those of Vault's ``keysutil.KeyType`` (they appear in backups), so a backup taken
by Vault or OpenBao names the same type here.
"""

from __future__ import annotations

from enum import StrEnum

from strongroom.errors import InvalidRequest


class KeyType(StrEnum):
    """A transit key type, named as in Vault's API."""

    AES128_GCM96 = "aes128-gcm96"
    AES256_GCM96 = "aes256-gcm96"
    CHACHA20_POLY1305 = "chacha20-poly1305"
    XCHACHA20_POLY1305 = "xchacha20-poly1305"
    ED25519 = "ed25519"
    ECDSA_P256 = "ecdsa-p256"
    ECDSA_P384 = "ecdsa-p384"
    ECDSA_P521 = "ecdsa-p521"
    RSA_2048 = "rsa-2048"
    RSA_3072 = "rsa-3072"
    RSA_4096 = "rsa-4096"
    HMAC = "hmac"

    @classmethod
    def parse(cls, name: str) -> KeyType:
        """Return the type named ``name``.

        Raises:
            InvalidRequest: unknown type, worded as Vault words it.
        """
        try:
            return cls(name)
        except ValueError:
            raise InvalidRequest(f"unknown key type {name[:100]}") from None

    @classmethod
    def from_code(cls, code: int) -> KeyType:
        """Return the type with Vault's numeric ``code`` (as found in backups).

        Raises:
            InvalidRequest: a code this server does not know.
        """
        for key_type, value in _CODES.items():
            if value == code:
                return key_type
        raise InvalidRequest(f"unsupported key type code {code}")

    @property
    def code(self) -> int:
        """Vault's numeric code for this type."""
        return _CODES[self]

    @property
    def symmetric_aead(self) -> bool:
        """AES-GCM or (X)ChaCha20-Poly1305: encryption with associated data and derivation."""
        return self in _AEAD

    @property
    def rsa(self) -> bool:
        """One of the RSA types."""
        return self in (KeyType.RSA_2048, KeyType.RSA_3072, KeyType.RSA_4096)

    @property
    def ecdsa(self) -> bool:
        """One of the ECDSA types."""
        return self in (KeyType.ECDSA_P256, KeyType.ECDSA_P384, KeyType.ECDSA_P521)

    @property
    def asymmetric(self) -> bool:
        """A type with a public key (RSA, ECDSA, Ed25519)."""
        return self.rsa or self.ecdsa or self is KeyType.ED25519

    @property
    def supports_encryption(self) -> bool:
        """Whether ``encrypt`` works with this type (Vault: AEADs and RSA-OAEP)."""
        return self.symmetric_aead or self.rsa

    @property
    def supports_decryption(self) -> bool:
        """Whether ``decrypt`` works with this type."""
        return self.supports_encryption

    @property
    def supports_signing(self) -> bool:
        """Whether ``sign``/``verify`` of signatures work with this type."""
        return self.asymmetric

    @property
    def supports_derivation(self) -> bool:
        """Whether keys of this type may be ``derived`` (per-context keys)."""
        return self.symmetric_aead or self is KeyType.ED25519

    @property
    def hash_signature_input(self) -> bool:
        """Whether signing hashes the input first (everything but Ed25519)."""
        return self.rsa or self.ecdsa

    @property
    def symmetric_key_bytes(self) -> int:
        """Key length of the symmetric AEAD types (0 for other types)."""
        if self is KeyType.AES128_GCM96:
            return 16
        return 32 if self.symmetric_aead else 0

    @property
    def rsa_bits(self) -> int:
        """Modulus size of the RSA types (0 for other types)."""
        return {KeyType.RSA_2048: 2048, KeyType.RSA_3072: 3072, KeyType.RSA_4096: 4096}.get(self, 0)


_AEAD = frozenset(
    {KeyType.AES128_GCM96, KeyType.AES256_GCM96, KeyType.CHACHA20_POLY1305, KeyType.XCHACHA20_POLY1305}
)

_CODES: dict[KeyType, int] = {
    KeyType.AES256_GCM96: 0,
    KeyType.ECDSA_P256: 1,
    KeyType.ED25519: 2,
    KeyType.RSA_2048: 3,
    KeyType.RSA_4096: 4,
    KeyType.CHACHA20_POLY1305: 5,
    KeyType.ECDSA_P384: 6,
    KeyType.ECDSA_P521: 7,
    KeyType.AES128_GCM96: 8,
    KeyType.RSA_3072: 9,
    KeyType.HMAC: 10,
    KeyType.XCHACHA20_POLY1305: 11,
}

HMAC_MIN_KEY_BYTES = 32
HMAC_MAX_KEY_BYTES = 512
"""Vault's bounds on ``key_size`` for hmac keys."""
