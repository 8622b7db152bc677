"""Shamir secret sharing over GF(2^8), byte-compatible with Vault/OpenBao ``sdk/helper/shamir``.

Format (docs/spec/shamir-shares.md): each secret byte is the constant term of its own random polynomial of
degree ``threshold - 1`` over GF(2^8) with the AES reduction polynomial x^8 + x^4 + x^3 + x + 1 (0x11b).
A share is the polynomial values for every byte followed by the share's x-coordinate as its TRAILING byte,
so a 32-byte key gives 33-byte shares. x-coordinates are distinct, random, in 1..255 (x = 0 would be the
secret itself). Shares we produce unseal OpenBao and OpenBao's shares combine here; the tests prove both.

Side channels: CPython promises nothing about constant time, but this module avoids the two obvious leaks.
There are no table lookups indexed by secret bytes (Vault's early log/exp tables had them; Vault now uses
branch-free arithmetic too), and no branches on secret values: all bytes of a secret are processed at once
as lanes of one big integer, and the only branches are on x-coordinates and Lagrange weights, which are
public (every share carries its x in clear).

Validation and its messages are Vault's, in Vault's order, so that API errors match.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Final

from strongroom.crypto.secret import SecretBytes
from strongroom.errors import InvalidRequest, InvalidShare

__all__ = [
    "INIT_ERROR_PREFIX",
    "KEY_SIZE",
    "SHARE_OVERHEAD",
    "combine",
    "combine_key",
    "split",
    "split_key",
    "validate_seal_config",
]

SHARE_OVERHEAD: Final = 1
KEY_SIZE: Final = 32
# OpenBao wraps SealConfig.Validate errors with this at sys/init (observed against bao 2.7.2).
INIT_ERROR_PREFIX: Final = "invalid seal configuration: "

_REDUCTION: Final = 0x1B  # x^8 = x^4 + x^3 + x + 1 in the AES field


# --- field arithmetic on public scalars (x-coordinates and Lagrange weights) -------------------------------


def _mul(a: int, b: int) -> int:
    """Multiply two field elements (shift-and-add with reduction by 0x11b)."""
    result = 0
    for _ in range(8):
        if b & 1:
            result ^= a
        b >>= 1
        carry = a & 0x80
        a = (a << 1) & 0xFF
        if carry:
            a ^= _REDUCTION
    return result


def _inverse(a: int) -> int:
    """Return a^-1 = a^254 (the multiplicative group has order 255). Only called with a != 0."""
    result, base, exponent = 1, a, 254
    while exponent:
        if exponent & 1:
            result = _mul(result, base)
        base = _mul(base, base)
        exponent >>= 1
    return result


# --- the same arithmetic on every byte of a secret at once ------------------------------------------------
# A byte string of length n is held as an n-byte big integer: byte i is "lane" i. Multiplying every lane by
# the same public constant needs only shifts, masks and XOR, so no step depends on a secret byte's value.


class _Lanes:
    """Masks for n-byte lane vectors."""

    __slots__ = ("high", "low", "n")

    def __init__(self, n: int) -> None:
        self.n = n
        self.low = int.from_bytes(b"\x01" * n, "big")
        self.high = int.from_bytes(b"\xfe" * n, "big")

    def times_x(self, v: int) -> int:
        """Multiply every lane by the field element x (0x02); the carry of each lane is reduced in-lane."""
        return ((v << 1) & self.high) ^ (((v >> 7) & self.low) * _REDUCTION)

    def scale(self, v: int, c: int) -> int:
        """Multiply every lane of ``v`` by the public constant ``c`` (Horner over the bits of ``c``)."""
        result = 0
        for bit in range(7, -1, -1):
            result = self.times_x(result)
            if (c >> bit) & 1:
                result ^= v
        return result


# --- Split / Combine ---------------------------------------------------------------------------------------


def _check_split_parameters(secret: bytes, parts: int, threshold: int) -> None:
    # Same checks, same order, same words as Vault's shamir.Split.
    if parts < threshold:
        raise InvalidRequest("parts cannot be less than threshold")
    if parts > 255:
        raise InvalidRequest("parts cannot exceed 255")
    if threshold < 2:
        raise InvalidRequest("threshold must be at least 2")
    if threshold > 255:  # unreachable after the two checks above; kept for parity with Vault
        raise InvalidRequest("threshold cannot exceed 255")
    if len(secret) == 0:
        raise InvalidRequest("cannot split an empty secret")


def split(secret: bytes, parts: int, threshold: int) -> list[bytes]:
    """Split ``secret`` into ``parts`` shares, any ``threshold`` of which reconstruct it.

    Each share is ``len(secret) + 1`` bytes: one y-value per secret byte, then the x-coordinate. The
    coefficients are uniform over the whole field, zero included: forcing a non-zero leading coefficient
    would itself leak information about the secret. Raises ``InvalidRequest`` with Vault's messages for
    bad parameters (``parts`` < ``threshold``, ``parts`` > 255, ``threshold`` outside 2..255, empty secret).
    """
    _check_split_parameters(secret, parts, threshold)
    # Uniform distinct x in 1..255. (Vault shuffles with j drawn from 0..i-1, Sattolo's variant; the x
    # values are public either way, and a uniform sample is what the scheme calls for.)
    x_coordinates = secrets.SystemRandom().sample(range(1, 256), parts)
    coefficients = [secrets.token_bytes(len(secret)) for _ in range(threshold - 1)]
    return _split_with(secret, x_coordinates, coefficients)


def _split_with(secret: bytes, x_coordinates: Sequence[int], coefficients: Sequence[bytes]) -> list[bytes]:
    """Split with given x-coordinates and coefficients; for known-answer tests and for :func:`split`.

    ``coefficients[d]`` holds, for every secret byte, the coefficient of x^(d+1) of that byte's polynomial.
    """
    n = len(secret)
    if any(len(row) != n for row in coefficients):
        raise ValueError("every coefficient row must be as long as the secret")
    if len(set(x_coordinates)) != len(x_coordinates) or not all(0 < x < 256 for x in x_coordinates):
        raise ValueError("x-coordinates must be distinct and in 1..255")
    lanes = _Lanes(n)
    rows = [int.from_bytes(secret, "big")] + [int.from_bytes(row, "big") for row in coefficients]
    shares = []
    for x in x_coordinates:
        # Horner's rule from the highest coefficient down, for all bytes at once.
        value = 0
        for row in reversed(rows):
            value = lanes.scale(value, x) ^ row
        shares.append(value.to_bytes(n, "big") + bytes([x]))
    return shares


def combine(parts: Sequence[bytes]) -> bytes:
    """Reconstruct the secret from ``threshold`` or more shares produced by :func:`split` (or by Vault).

    Given fewer shares than the threshold, or shares of different secrets, this returns wrong bytes
    without noticing: Shamir shares carry no integrity check. Callers must verify the result (the barrier
    does, by decrypting the keyring). Raises ``InvalidShare`` with Vault's messages: fewer than two parts,
    a part shorter than two bytes, parts of different lengths, or two parts with the same x-coordinate.
    """
    if len(parts) < 2:
        raise InvalidShare("less than two parts cannot be used to reconstruct the secret")
    first_length = len(parts[0])
    if first_length < 2:
        raise InvalidShare("parts must be at least two bytes")
    if any(len(part) != first_length for part in parts):
        raise InvalidShare("all parts must be the same length")
    xs = [part[-1] for part in parts]
    if len(set(xs)) != len(xs):
        raise InvalidShare("duplicate part detected")

    n = first_length - 1
    lanes = _Lanes(n)
    secret = 0
    for i, part in enumerate(parts):
        # Lagrange weight of share i at x = 0: prod_{j != i} x_j / (x_i - x_j); in GF(2^8), minus is XOR.
        # One inversion per share: divide the product of numerators by the product of denominators.
        numerator, denominator = 1, 1
        for j, x_j in enumerate(xs):
            if j != i:
                numerator = _mul(numerator, x_j)
                denominator = _mul(denominator, xs[i] ^ x_j)
        weight = _mul(numerator, _inverse(denominator))
        secret ^= lanes.scale(int.from_bytes(part[:n], "big"), weight)
    return secret.to_bytes(n, "big")


# --- seal configuration and the root-key helpers ----------------------------------------------------------


def validate_seal_config(shares: int, threshold: int, *, pgp_key_count: int = 0) -> None:
    """Apply Vault's ``SealConfig.Validate`` rules for ``secret_shares``/``secret_threshold``.

    Raises ``InvalidRequest`` with Vault's message, in Vault's order: shares < 1, threshold < 1, several
    shares with threshold 1, shares > 255, threshold > 255, threshold > shares, and (when
    ``pgp_key_count`` is non-zero) a PGP key count different from ``shares``. The messages are bare; at
    sys/init OpenBao prefixes them with :data:`INIT_ERROR_PREFIX`, which the caller adds.
    """
    if shares < 1:
        raise InvalidRequest("shares must be at least one")
    if threshold < 1:
        raise InvalidRequest("threshold must be at least one")
    if shares > 1 and threshold == 1:
        raise InvalidRequest("threshold must be greater than one for multiple shares")
    if shares > 255:
        raise InvalidRequest("shares must be less than 256")
    if threshold > 255:
        raise InvalidRequest("threshold must be less than 256")
    if threshold > shares:
        raise InvalidRequest("threshold cannot be larger than shares")
    if pgp_key_count and pgp_key_count != shares:
        raise InvalidRequest("count mismatch between number of provided PGP keys and number of shares")


def split_key(key: SecretBytes, shares: int, threshold: int) -> list[bytes]:
    """Split a 32-byte root key into the unseal keys Vault's sys/init would return.

    With ``shares == 1`` (and so ``threshold == 1``) the single "share" is the raw 32-byte key, as in
    Vault; otherwise :func:`split` gives 33-byte shares. Raises ``InvalidRequest`` for a bad configuration
    (see :func:`validate_seal_config`) and ``ValueError`` if the key is not 32 bytes.
    """
    validate_seal_config(shares, threshold)
    raw = key.reveal()
    if len(raw) != KEY_SIZE:
        raise ValueError(f"root keys are {KEY_SIZE} bytes")
    if shares == 1:
        return [raw]
    return split(raw, shares, threshold)


def combine_key(parts: Sequence[bytes], shares: int, threshold: int) -> SecretBytes:
    """Rebuild a root key from unseal keys made by :func:`split_key` (or by Vault) for this configuration.

    With threshold 1 the one part must be the 32-byte key itself. Otherwise at least ``threshold`` parts of
    33 bytes are needed. A wrong combination of valid-looking parts yields a wrong key, not an error: the
    caller proves the key by decrypting with it. Raises ``InvalidShare`` for missing, mis-sized, duplicate
    or malformed parts and ``InvalidRequest`` for a bad configuration.
    """
    validate_seal_config(shares, threshold)
    if len(parts) < threshold:
        raise InvalidShare(f"{threshold} key shares are required, {len(parts)} given")
    if threshold == 1:
        if len(parts) != 1 or len(parts[0]) != KEY_SIZE:
            raise InvalidShare(f"with a single key share the share is the {KEY_SIZE}-byte key")
        return SecretBytes(parts[0], kind="root key")
    if any(len(part) != KEY_SIZE + SHARE_OVERHEAD for part in parts):
        raise InvalidShare(f"key shares must be {KEY_SIZE + SHARE_OVERHEAD} bytes")
    return SecretBytes(combine(parts), kind="root key")
