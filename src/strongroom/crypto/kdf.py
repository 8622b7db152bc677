"""Key derivation and keyed hashing: HKDF-SHA256, HMAC-SHA256, blind indexes and token hashes.

Keys go in as :class:`~strongroom.crypto.secret.SecretBytes`; derived keys come out as ``SecretBytes``.
MAC outputs (indexes, token hashes) are plain ``bytes``: they are meant to be stored and compared, and
they reveal nothing about the key. Give each use its own key (derive one per purpose with
:func:`hkdf_sha256` and a distinct ``info``) so that an index can never be confused with a token hash.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Final, NoReturn

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from strongroom.crypto.secret import SecretBytes
from strongroom.errors import InvalidRequest

__all__ = ["BLIND_INDEX_SIZE", "BlindIndexer", "TokenHasher", "hkdf_sha256", "hmac_sha256", "sha256"]

BLIND_INDEX_SIZE: Final = 16
_HKDF_MAX_LENGTH: Final = 255 * 32  # RFC 5869: L <= 255 * HashLen


def hkdf_sha256(key: SecretBytes, info: bytes, length: int = 32, salt: bytes = b"") -> SecretBytes:
    """Derive ``length`` bytes from ``key`` with HKDF-SHA256 (RFC 5869, extract then expand).

    An empty ``salt`` means RFC 5869's default (HashLen zero bytes; HMAC pads a short key with zeros, so
    both spellings give the same output). Raises ``ValueError`` if ``length`` is outside 1..8160.
    """
    if not 0 < length <= _HKDF_MAX_LENGTH:
        raise ValueError(f"HKDF-SHA256 output length must be in 1..{_HKDF_MAX_LENGTH}")
    derived = HKDF(algorithm=hashes.SHA256(), length=length, salt=salt or None, info=info).derive(
        key.reveal()
    )
    return SecretBytes(derived, kind="derived key")


def hmac_sha256(key: SecretBytes, data: bytes) -> bytes:
    """Return the 32-byte HMAC-SHA256 (RFC 2104) of ``data`` under ``key``."""
    # hmac.digest is OpenSSL's one-shot HMAC: about half the cost of building an hmac object per call.
    return hmac.digest(key.reveal(), data, "sha256")


def sha256(data: bytes) -> bytes:
    """Return the 32-byte SHA-256 of ``data`` (unkeyed: for fingerprints of public data, never of secrets)."""
    return hashlib.sha256(data).digest()


class _KeyedHash:
    """Holds a MAC key; no key in the repr, no pickling."""

    __slots__ = ("_key",)

    def __init__(self, key: SecretBytes) -> None:
        if not isinstance(key, SecretBytes):
            raise TypeError(f"{type(self).__name__} needs its key as SecretBytes")
        self._key = key

    def __repr__(self) -> str:
        return f"{type(self).__name__}(key=<hidden>)"

    def __reduce__(self) -> NoReturn:
        raise TypeError(f"{type(self).__name__} cannot be pickled")

    def __reduce_ex__(self, protocol: object) -> NoReturn:
        raise TypeError(f"{type(self).__name__} cannot be pickled")


class BlindIndexer(_KeyedHash):
    """Deterministic, keyed lookup keys for names stored under a parent, e.g. a KV path component.

    ``index(parent, name)`` = first 16 bytes of HMAC-SHA256(key, len(parent) as 8-byte big-endian ||
    parent || UTF-8(name)). The length prefix makes the encoding injective: without it ("ab", "c") and
    ("a", "bc") would hash the same bytes. 128 bits keep accidental collisions out of reach (birthday bound
    2^64) while halving index size. Whoever sees indexes learns equality of (parent, name) pairs, nothing
    more, as long as the key stays secret.
    """

    __slots__ = ("_chains", "_memo")

    _MEMO_MAX = 65536

    def __init__(self, key: SecretBytes) -> None:
        super().__init__(key)
        # Hot paths compute the same indexes again and again (every request names its secret's path).
        # The memo holds only derived indexes, which are no more sensitive than the key already in memory.
        self._memo: dict[tuple[bytes, str], bytes] = {}
        self._chains: dict[tuple[str, ...], tuple[bytes, ...]] = {}

    def index(self, parent: bytes, name: str) -> bytes:
        """Return the 16-byte index. Raises ``InvalidRequest`` if ``name`` cannot be encoded as UTF-8."""
        memo_key = (parent, name)
        hit = self._memo.get(memo_key)
        if hit is not None:
            return hit
        result = self._compute(parent, name)
        if len(self._memo) >= self._MEMO_MAX:
            self._memo.clear()
        self._memo[memo_key] = result
        return result

    def chain(self, names: tuple[str, ...]) -> tuple[bytes, ...]:
        """Return the indexes of a path of names, each the parent of the next, from the root ``b""``.

        Memoised whole (every request resolves its path, a write up to three times).
        """
        hit = self._chains.get(names)
        if hit is not None:
            return hit
        ids = []
        parent = b""
        for name in names:
            parent = self.index(parent, name)
            ids.append(parent)
        result = tuple(ids)
        if len(self._chains) >= self._MEMO_MAX:
            self._chains.clear()
        self._chains[names] = result
        return result

    def _compute(self, parent: bytes, name: str) -> bytes:
        try:
            encoded_name = name.encode("utf-8")
        except UnicodeEncodeError:
            # Lone surrogates survive JSON decoding into str but have no UTF-8 form.
            raise InvalidRequest("name is not valid Unicode text") from None
        message = len(parent).to_bytes(8, "big") + parent + encoded_name
        return hmac_sha256(self._key, message)[:BLIND_INDEX_SIZE]


class TokenHasher(_KeyedHash):
    """Keyed hashes of bearer tokens, so the token store never holds a usable token.

    A keyed hash rather than a plain SHA-256: tokens from a stolen store cannot be confirmed by guessing
    without the key. Lookups go through the hash, so no comparison of secret tokens happens in Python.
    """

    __slots__ = ()

    def hash(self, token: str) -> bytes:
        """Return HMAC-SHA256(key, UTF-8(token)), 32 bytes. Raises ``InvalidRequest`` for unencodable text."""
        try:
            encoded = token.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidRequest("token is not valid Unicode text") from None
        return hmac_sha256(self._key, encoded)
