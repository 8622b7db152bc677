"""Shamir seal configuration and the share-collection state machine.

A :class:`ShareCollector` is the explicit state machine behind ``sys/unseal``, ``sys/rekey/update``,
``sys/rekey/verify`` and ``sys/generate-root/update``: it collects distinct shares until the threshold is
reached, then combines them. States: *empty* (no nonce) -> *collecting* (nonce set, progress < t) ->
combined (the caller gets the key and the collector is reset). A wrong combination resets it too, as
Vault does. Progress may expire after a configurable time so a stale half-ceremony does not linger.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from typing import Any

from strongroom.clock import Clock
from strongroom.crypto.random import random_uuid
from strongroom.crypto.secret import SecretBytes, constant_time_equal
from strongroom.crypto.shamir import combine_key
from strongroom.errors import CorruptRecord, InvalidRequest, InvalidShare

KEY_BYTES = 32
MIN_KEY_BYTES = 16
"""Vault's bounds on a submitted key: at least 16 bytes, at most a 32-byte key plus the share's x byte."""


@dataclass(frozen=True)
class SealConfig:
    """What storage says about a namespace's seal (stored in clear: it holds no secret)."""

    type: str
    secret_shares: int
    secret_threshold: int
    pgp_fingerprints: tuple[str, ...] = ()
    nonce: str = ""

    def to_json(self) -> dict[str, Any]:
        """Return the stored JSON form."""
        return {
            "type": self.type,
            "secret_shares": self.secret_shares,
            "secret_threshold": self.secret_threshold,
            "pgp_fingerprints": list(self.pgp_fingerprints),
            "nonce": self.nonce,
        }

    @classmethod
    def from_json(cls, doc: Any) -> SealConfig:
        """Parse the stored JSON form.

        Raises:
            CorruptRecord: the record is not a seal configuration.
        """
        try:
            return cls(
                type=str(doc["type"]),
                secret_shares=int(doc["secret_shares"]),
                secret_threshold=int(doc["secret_threshold"]),
                pgp_fingerprints=tuple(doc.get("pgp_fingerprints") or ()),
                nonce=str(doc.get("nonce", "")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise CorruptRecord("malformed seal configuration") from exc


def decode_share(text: str) -> bytes:
    """Decode a share given as hex or standard base64, as Vault accepts them (hex first).

    Raises:
        InvalidRequest: neither hex nor base64.
    """
    text = text.strip()
    # As Vault: hex only when it decodes to a plausible key length (16..33 bytes), so a base64 share
    # that happens to use only hex digits is not misread.
    try:
        raw = bytes.fromhex(text)
        if MIN_KEY_BYTES <= len(raw) <= KEY_BYTES + 1:
            return raw
    except ValueError:
        pass
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequest("'key' must be a valid hex or base64 string") from None


def check_share(share: bytes, config: SealConfig) -> None:
    """Check a decoded unseal share's size against Vault's bounds and ``config`` (shared with tenants).

    Raises:
        InvalidShare: shorter than 16 or longer than 33 bytes, or not the size ``config``'s shares have.
    """
    if len(share) < MIN_KEY_BYTES:
        raise InvalidShare(f"invalid key: key is shorter than minimum {MIN_KEY_BYTES} bytes")
    if len(share) > KEY_BYTES + 1:
        raise InvalidShare(f"invalid key: key is longer than maximum {KEY_BYTES + 1} bytes")
    expected = KEY_BYTES if config.secret_threshold == 1 else KEY_BYTES + 1
    if len(share) != expected:
        raise InvalidShare(f"invalid key: expected {expected} bytes, got {len(share)}")


@dataclass
class ShareCollector:
    """Collects key shares towards a threshold. Not thread-safe; one per ceremony."""

    clock: Clock
    expiry_seconds: float | None = None
    nonce: str = ""
    _parts: list[bytes] = field(default_factory=list)
    _started: float = 0.0

    def __repr__(self) -> str:
        return f"ShareCollector(progress={len(self._parts)}, nonce={self.nonce!r})"

    @property
    def progress(self) -> int:
        """How many distinct shares are held (0 after expiry)."""
        self._expire()
        return len(self._parts)

    def _expire(self) -> None:
        if (
            self._parts
            and self.expiry_seconds is not None
            and self.clock.now() - self._started > self.expiry_seconds
        ):
            self.reset()

    def start(self) -> str:
        """Begin a ceremony if none is running; return its nonce."""
        self._expire()
        if not self.nonce:
            self.nonce = random_uuid()
            self._started = self.clock.now()
        return self.nonce

    def reset(self) -> None:
        """Forget every collected share and the nonce."""
        self._parts.clear()
        self.nonce = ""
        self._started = 0.0

    def add(self, share: bytes, config: SealConfig, nonce: str | None = None) -> SecretBytes | None:
        """Add one share; return the combined 32-byte key once ``threshold`` shares are held.

        A share identical to one already held is ignored, as in Vault. After combining (successfully or
        not) the collector is reset.

        Raises:
            InvalidRequest: ``nonce`` is given and does not match the running ceremony.
            InvalidShare: the share has the wrong length, or the shares do not combine.
        """
        self._expire()
        if nonce is not None and self.nonce and not constant_time_equal(nonce.encode(), self.nonce.encode()):
            raise InvalidRequest(
                f"incorrect nonce supplied; nonce for this rekey operation is {self.nonce}"
            )
        check_share(share, config)
        self.start()
        for existing in self._parts:
            if constant_time_equal(existing, share):
                return None
        self._parts.append(share)
        if len(self._parts) < config.secret_threshold:
            return None
        parts = list(self._parts)
        self.reset()
        return combine_key(parts, config.secret_shares, config.secret_threshold)
