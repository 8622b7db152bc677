"""AES key wrap with padding (KWP: RFC 5649, NIST SP 800-38F), as transit BYOK uses it.

:func:`wrap` and :func:`unwrap` are the RFC algorithm for any KEK of 16, 24 or 32 bytes and any key of at
least one byte. :func:`unwrap_bounded` adds the limits of the implementation Vault and OpenBao use for
``keys/:name/import`` (Tink's ``kwp/subtle``): a wrapped key of 24 to 8200 bytes, a multiple of 8, so a
wrapped key that Vault refuses is refused here with Vault's own words.

An integrity failure (wrong KEK, any modified byte, bad padding or a wrong length indicator) is one error
with one message; the unwrapped plaintext never reaches an error message.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.keywrap import (
    InvalidUnwrap,
    aes_key_unwrap_with_padding,
    aes_key_wrap_with_padding,
)

from strongroom.errors import InvalidRequest

MIN_WRAP_BYTES = 16
"""Smallest key Tink's KWP wraps (Vault's CLI wraps through Tink)."""
MAX_WRAP_BYTES = 8192
"""Largest key Tink's KWP wraps or unwraps."""

ERR_INTEGRITY = "kwp: unwrap failed integrity check"
_KEK_SIZES = (16, 24, 32)


def _wrapped_size(key_bytes: int) -> int:
    """Length of the KWP output for a key of ``key_bytes`` (padded to 8, plus the 8-byte integrity block)."""
    return key_bytes + (7 - (key_bytes + 7) % 8) + 8


def _check_kek(kek: bytes) -> None:
    if len(kek) not in _KEK_SIZES:
        raise InvalidRequest(f"kwp: invalid AES key size; want 16, 24 or 32, got {len(kek)}")


def wrap(kek: bytes, key: bytes) -> bytes:
    """Wrap ``key`` under ``kek`` with RFC 5649 (deterministic: no randomness is involved).

    Raises:
        InvalidRequest: ``kek`` is not an AES key size, or ``key`` is empty.
    """
    _check_kek(kek)
    if not key:
        raise InvalidRequest("kwp: key size to wrap too small")
    return aes_key_wrap_with_padding(kek, key)


def unwrap(kek: bytes, wrapped: bytes) -> bytes:
    """Unwrap an RFC 5649 ``wrapped`` key under ``kek`` and return the key.

    Raises:
        InvalidRequest: ``kek`` is not an AES key size; or ``kwp: unwrap failed integrity check`` for any
            wrapped value that does not authenticate (including impossible lengths).
    """
    _check_kek(kek)
    try:
        return aes_key_unwrap_with_padding(kek, wrapped)
    except (InvalidUnwrap, ValueError):
        raise InvalidRequest(ERR_INTEGRITY) from None


def unwrap_bounded(kek: bytes, wrapped: bytes) -> bytes:
    """:func:`unwrap` within Tink's limits, with Tink's messages (what Vault's import answers).

    Raises:
        InvalidRequest: ``kwp: wrapped key size too small`` (below 24 bytes), ``... too large`` (above
            8200), ``... must be a multiple of 8 bytes``, or the integrity failure of :func:`unwrap`.
    """
    if len(wrapped) < _wrapped_size(MIN_WRAP_BYTES):
        raise InvalidRequest("kwp: wrapped key size too small")
    if len(wrapped) > _wrapped_size(MAX_WRAP_BYTES):
        raise InvalidRequest("kwp: wrapped key size too large")
    if len(wrapped) % 8:
        raise InvalidRequest("kwp: wrapped key size must be a multiple of 8 bytes")
    return unwrap(kek, wrapped)
