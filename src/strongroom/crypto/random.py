"""Randomness for keys, nonces, identifiers and tokens.

Everything here reads the operating system's CSPRNG (``os.urandom`` directly for bytes: it is what
:mod:`secrets` calls, without two layers of Python calls on every nonce); nothing uses :mod:`random`'s
Mersenne Twister. Code that needs to be deterministic in tests should receive one of these functions as a
parameter (DESIGN.md section 9.10) rather than patch this module.
"""

from __future__ import annotations

import os
import secrets
import uuid

__all__ = ["BASE62_ALPHABET", "random_base62", "random_bytes", "random_uuid"]

BASE62_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def random_bytes(n: int) -> bytes:
    """Return ``n`` bytes from the OS CSPRNG. Raises ``ValueError`` if ``n`` is negative."""
    if n < 0:
        raise ValueError("n must not be negative")
    return os.urandom(n)


def random_base62(n: int) -> str:
    """Return ``n`` characters drawn uniformly and independently from ``[0-9A-Za-z]``.

    Each character carries log2(62) ~= 5.95 bits. ``secrets.choice`` uses rejection sampling, so there is
    no modulo bias (a plain ``byte % 62`` would favour the first 8 characters). Raises ``ValueError`` if
    ``n`` is negative.
    """
    if n < 0:
        raise ValueError("n must not be negative")
    return "".join(secrets.choice(BASE62_ALPHABET) for _ in range(n))


def random_uuid() -> str:
    """Return a random UUID in the 8-4-4-4-12 lowercase hex form Vault uses for mount and entity ids.

    Vault's ``go-uuid`` formats 16 random bytes without setting version bits; we set them (RFC 4122
    version 4), which keeps 122 random bits and is still exactly the shape Vault clients expect.
    """
    return str(uuid.UUID(bytes=secrets.token_bytes(16), version=4))
