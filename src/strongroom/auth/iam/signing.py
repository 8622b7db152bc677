"""The platform IAM key pair: Ed25519, generated and used through biscuit (docs/spec/tokens.md s. 2, 8).

The private key leaves an :class:`IamKey` only through :meth:`IamKey.to_bytes`, which returns
:class:`~strongroom.crypto.secret.SecretBytes` for the caller to store encrypted (the platform keeps it in a
barrier record). The key id is the biscuit *root key id* written into every token, so the IAM key can be
rotated while tokens signed by an older key stay verifiable for as long as its public key is accepted.

Serialised private key (version 1): ``0x01 || key id (uint32, big-endian) || 32-byte Ed25519 private key``.
"""

from __future__ import annotations

from typing import Any, cast

import biscuit_auth

from strongroom.crypto.secret import SecretBytes
from strongroom.errors import CorruptRecord, InvalidRequest

_FORMAT_V1 = 1
_PRIVATE_LEN = 32
_PUBLIC_LEN = 32
_MAX_KEY_ID = 2**32 - 1
ALGORITHM = "ed25519"

# biscuit-python 0.4.0's stubs predate its algorithm argument: from_bytes(data, alg) is the real signature.
_ED25519: Any = cast(Any, biscuit_auth.Algorithm).Ed25519


class IamPublicKey:
    """A public key tokens are verified with, and its root key id. Not secret."""

    __slots__ = ("_key", "_raw", "key_id")

    def __init__(self, key_id: int, raw: bytes) -> None:
        """Raises InvalidRequest: the id is out of range or ``raw`` is not a 32-byte Ed25519 key."""
        _check_key_id(key_id)
        if not isinstance(raw, bytes) or len(raw) != _PUBLIC_LEN:
            raise InvalidRequest("an IAM public key is 32 bytes")
        try:
            self._key: biscuit_auth.PublicKey = cast(Any, biscuit_auth.PublicKey).from_bytes(raw, _ED25519)
        except Exception as exc:  # the library raises its own classes and ValueError for bad points
            raise InvalidRequest("not an Ed25519 public key") from exc
        self._raw = raw
        self.key_id = key_id

    @classmethod
    def parse(cls, text: str, key_id: int = 0) -> IamPublicKey:
        """Parse ``ed25519/<64 hex>`` (biscuit's notation) or bare hex.

        Raises:
            InvalidRequest: not that form.
        """
        body = text.strip()
        if body.lower().startswith(ALGORITHM + "/"):
            body = body[len(ALGORITHM) + 1:]
        try:
            raw = bytes.fromhex(body)
        except ValueError:
            raise InvalidRequest("an IAM public key is ed25519/ followed by 64 hex digits") from None
        return cls(key_id, raw)

    def to_bytes(self) -> bytes:
        """The 32 raw key bytes."""
        return self._raw

    def to_text(self) -> str:
        """``ed25519/<hex>``, as biscuit tools print public keys."""
        return f"{ALGORITHM}/{self._raw.hex()}"

    @property
    def biscuit_key(self) -> biscuit_auth.PublicKey:
        """The library's key object (parsed once, reused for every verification)."""
        return self._key

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, IamPublicKey):
            return NotImplemented
        return self.key_id == other.key_id and self._raw == other._raw

    def __hash__(self) -> int:
        return hash((self.key_id, self._raw))

    def __repr__(self) -> str:
        return f"IamPublicKey(key_id={self.key_id}, {self.to_text()})"


class IamKey:
    """The IAM signing key pair. No secret ``repr``, no pickling; see the module docstring."""

    __slots__ = ("_pair", "_public", "key_id")

    def __init__(self, key_id: int, pair: biscuit_auth.KeyPair) -> None:
        _check_key_id(key_id)
        self._pair = pair
        self._public = IamPublicKey(key_id, bytes(pair.public_key.to_bytes()))
        self.key_id = key_id

    @classmethod
    def generate(cls, key_id: int = 1) -> IamKey:
        """A new random key pair (the library draws from the operating system's CSPRNG)."""
        return cls(key_id, biscuit_auth.KeyPair())

    @classmethod
    def from_bytes(cls, data: SecretBytes | bytes) -> IamKey:
        """Load a key serialised by :meth:`to_bytes`.

        Raises:
            CorruptRecord: not a version-1 serialised IAM key (the message names no key material).
        """
        raw = data.reveal() if isinstance(data, SecretBytes) else data
        if not isinstance(raw, bytes) or len(raw) != 5 + _PRIVATE_LEN or raw[0] != _FORMAT_V1:
            raise CorruptRecord("malformed IAM signing key")
        key_id = int.from_bytes(raw[1:5], "big")
        try:
            private = cast(Any, biscuit_auth.PrivateKey).from_bytes(raw[5:], _ED25519)
            pair = biscuit_auth.KeyPair.from_private_key(private)
        except Exception as exc:
            raise CorruptRecord("malformed IAM signing key") from exc
        return cls(key_id, pair)

    def to_bytes(self) -> SecretBytes:
        """The serialised private key, for the caller to encrypt before it is stored anywhere."""
        raw = bytes([_FORMAT_V1]) + self.key_id.to_bytes(4, "big") + bytes(self._pair.private_key.to_bytes())
        return SecretBytes(raw, kind="IAM signing key")

    @property
    def public_key(self) -> IamPublicKey:
        """The public half, to publish."""
        return self._public

    @property
    def biscuit_private_key(self) -> biscuit_auth.PrivateKey:
        """The library's private key object, for signing inside this package only."""
        return self._pair.private_key

    def __repr__(self) -> str:
        return f"IamKey(key_id={self.key_id}, public={self._public.to_text()})"

    def __reduce__(self) -> Any:
        raise TypeError("IamKey cannot be pickled")

    def __reduce_ex__(self, protocol: Any) -> Any:
        raise TypeError("IamKey cannot be pickled")


def public_key_document(current: IamPublicKey, accepted: list[IamPublicKey] | None = None) -> dict[str, Any]:
    """The ``data`` of ``GET sys/iam/public-key`` (docs/spec/tokens.md s. 5).

    ``current`` signs new tokens; ``accepted`` (default: only ``current``) are every key still verified.
    """
    keys = {str(k.key_id): k.to_text() for k in (accepted or [current])}
    keys[str(current.key_id)] = current.to_text()
    return {"algorithm": ALGORITHM, "key_id": current.key_id, "public_key": current.to_text(), "keys": keys}


def _check_key_id(key_id: int) -> None:
    if isinstance(key_id, bool) or not isinstance(key_id, int) or not 0 <= key_id <= _MAX_KEY_ID:
        raise InvalidRequest("an IAM key id is an integer from 0 to 2^32-1")
