"""Per-context key derivation for ``derived`` transit keys, as Vault does it.

Two KDFs exist in Vault's key policies: the legacy ``hmac_sha256_counter`` (code 0, NIST SP 800-108
counter mode with HMAC-SHA256, always 256 bits out) for keys created before Vault 0.6.2, and
``hkdf_sha256`` (code 1, RFC 5869 with no salt and the context as ``info``) for every newer key. Only keys
restored from old backups use the legacy one; new keys always get HKDF.

For Ed25519 the HKDF output seeds a new key pair (Go's ``ed25519.GenerateKey`` reads a 32-byte seed from
the HKDF stream), and the input key is the full 64-byte Go private key.
"""

from __future__ import annotations

import hmac
import struct
from hashlib import sha256

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from strongroom.errors import InvalidRequest

KDF_HMAC_SHA256_COUNTER = 0
KDF_HKDF_SHA256 = 1

KDF_NAMES = {KDF_HMAC_SHA256_COUNTER: "hmac-sha256-counter", KDF_HKDF_SHA256: "hkdf_sha256"}
"""How ``keys/:name`` reads show the KDF (Vault's own spellings)."""

MISSING_CONTEXT = (
    "missing 'context' for key derivation; the key was created using a derived key, which means "
    "additional, per-request information must be included in order to perform operations with the key"
)


def derive(key: bytes, context: bytes, kdf: int, length: int) -> bytes:
    """Return ``length`` bytes derived from ``key`` for ``context`` with Vault's ``kdf``.

    The legacy counter-mode KDF always yields 32 bytes, as in Vault (callers asking for more get a
    shorter key and must refuse it, as Vault does).

    Raises:
        InvalidRequest: an empty context, or an unknown KDF code.
    """
    if not context:
        raise InvalidRequest(MISSING_CONTEXT)
    if kdf == KDF_HKDF_SHA256:
        return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=context).derive(key)
    if kdf == KDF_HMAC_SHA256_COUNTER:
        # One HMAC-SHA256 round: counter 0 (4 bytes BE) || context || output bits (4 bytes BE).
        return hmac.digest(key, struct.pack(">I", 0) + context + struct.pack(">I", 256), sha256)
    raise InvalidRequest("unsupported key derivation mode")


def derive_ed25519(key: bytes, context: bytes, kdf: int) -> ed25519.Ed25519PrivateKey:
    """Return the Ed25519 key Vault derives from a 64-byte key for ``context``.

    Go's ``ed25519.GenerateKey`` reads its 32-byte seed from the HKDF stream, so the seed is the first
    32 derived bytes.

    Raises:
        InvalidRequest: an empty context.
    """
    return ed25519.Ed25519PrivateKey.from_private_bytes(derive(key, context, kdf, 32))
