"""Hash algorithms of the transit engine, by Vault's names, and the one place that maps a name to a function.

Vault names its hash algorithms ``sha1``, ``sha2-224`` ... ``sha2-512``, ``sha3-224`` ... ``sha3-512`` and
``none`` (``keysutil.HashTypeMap``; the numeric codes are ``keysutil.HashType``). Which names an endpoint
accepts differs: ``hash/`` takes only the SHA-2 and SHA-3 families, ``hmac/`` takes every real hash
(``sha1`` included), ``sign/`` and ``verify/`` take every name including ``none`` (RSA PKCS#1 v1.5 over a
caller-supplied digest). Endpoints therefore look a name up here and word their own refusal, as Vault does.

Every function here is a pure function of its inputs; none raises except where documented.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from cryptography.hazmat.primitives import hashes

DEFAULT = "sha2-256"
"""Vault's default for ``hash/``, ``hmac/``, ``sign/`` and ``verify/``."""


@dataclass(frozen=True, slots=True)
class HashAlgorithm:
    """One hash algorithm as Vault names it.

    ``none`` has ``size == 0`` and no function: callers must handle it before hashing (Vault allows it only
    for prehashed RSA PKCS#1 v1.5 signatures).
    """

    name: str
    """Vault's name (``sha2-256``)."""
    code: int
    """Vault's ``keysutil.HashType`` number."""
    size: int
    """Digest length in bytes (0 for ``none``)."""
    hashlib_name: str
    """The :mod:`hashlib` / :mod:`hmac` digest name (empty for ``none``)."""
    _new: Callable[..., Any] | None
    _crypto: type[hashes.HashAlgorithm] | None

    @property
    def is_none(self) -> bool:
        """Whether this is Vault's ``none`` (no hashing)."""
        return self._new is None

    def digest(self, data: bytes) -> bytes:
        """Return the digest of ``data``.

        Raises:
            ValueError: this is ``none``, which has no digest.
        """
        if self._new is None:
            raise ValueError("hash algorithm none has no digest")
        digest: bytes = self._new(data).digest()
        return digest

    def crypto_hash(self) -> hashes.HashAlgorithm:
        """A fresh ``cryptography`` hash object for signature schemes.

        Raises:
            ValueError: this is ``none``.
        """
        if self._crypto is None:
            raise ValueError("hash algorithm none has no hash object")
        return self._crypto()


def _alg(name: str, code: int, size: int, hashlib_name: str, new: Callable[..., Any] | None,
         crypto: type[hashes.HashAlgorithm] | None) -> HashAlgorithm:
    return HashAlgorithm(name, code, size, hashlib_name, new, crypto)


_ALL = (
    _alg("none", 0, 0, "", None, None),
    _alg("sha1", 1, 20, "sha1", hashlib.sha1, hashes.SHA1),
    _alg("sha2-224", 2, 28, "sha224", hashlib.sha224, hashes.SHA224),
    _alg("sha2-256", 3, 32, "sha256", hashlib.sha256, hashes.SHA256),
    _alg("sha2-384", 4, 48, "sha384", hashlib.sha384, hashes.SHA384),
    _alg("sha2-512", 5, 64, "sha512", hashlib.sha512, hashes.SHA512),
    _alg("sha3-224", 6, 28, "sha3_224", hashlib.sha3_224, hashes.SHA3_224),
    _alg("sha3-256", 7, 32, "sha3_256", hashlib.sha3_256, hashes.SHA3_256),
    _alg("sha3-384", 8, 48, "sha3_384", hashlib.sha3_384, hashes.SHA3_384),
    _alg("sha3-512", 9, 64, "sha3_512", hashlib.sha3_512, hashes.SHA3_512),
)

ALGORITHMS: Mapping[str, HashAlgorithm] = MappingProxyType({a.name: a for a in _ALL})
"""Every name Vault's ``keysutil.HashTypeMap`` knows (what ``sign/`` and ``verify/`` accept)."""

DIGEST_NAMES: frozenset[str] = frozenset(
    ("sha2-224", "sha2-256", "sha2-384", "sha2-512", "sha3-224", "sha3-256", "sha3-384", "sha3-512")
)
"""The names ``hash/`` accepts (Vault's ``path_hash.go``: SHA-2 and SHA-3 only)."""

HMAC_NAMES: frozenset[str] = frozenset(a.name for a in _ALL if not a.is_none)
"""The names ``hmac/`` accepts: every real hash of ``HashTypeMap`` (``sha1`` too, as in Vault)."""


def lookup(name: str) -> HashAlgorithm | None:
    """Return the algorithm Vault calls ``name`` (any of :data:`ALGORITHMS`), or ``None``."""
    return ALGORITHMS.get(name)


def by_code(code: int) -> HashAlgorithm | None:
    """Return the algorithm with Vault's ``HashType`` number ``code``, or ``None``."""
    for alg in _ALL:
        if alg.code == code:
            return alg
    return None


def digest(name: str, data: bytes) -> bytes:
    """Return the digest of ``data`` under the algorithm Vault calls ``name`` (the ``hash/`` endpoint).

    Raises:
        KeyError: ``name`` is not one of :data:`DIGEST_NAMES` (callers word Vault's message).
    """
    if name not in DIGEST_NAMES:
        raise KeyError(name)
    return ALGORITHMS[name].digest(data)
