"""Authentication and fingerprints of store snapshots (docs/operations/migrate-and-snapshot.md, "Format").

* :class:`SnapshotMac`: HMAC-SHA256 over a snapshot file, keyed by
  ``HKDF-SHA256(KEK, salt = snapshot id, info = "strongroom/snapshot-hmac/v1")``: the KEK of the root
  namespace's keyring, which neither ``sys/rotate`` nor ``sys/rekey`` changes, so every snapshot of one
  cluster verifies on that cluster, and each snapshot (random 16-byte id) gets its own MAC key.
* :class:`PairDigest`: SHA-256 over ordered key/value pairs, each encoded as
  ``u64be(len(key)) || key || u64be(len(value)) || value``. The length prefixes make the encoding
  injective. ``strongroom operator migrate`` prints it for both stores and snapshot trailers carry it,
  so the same number identifies the same contents everywhere.

Neither object shows key material in its ``repr`` or can be pickled.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import NoReturn

from strongroom.crypto.kdf import hkdf_sha256
from strongroom.crypto.secret import SecretBytes
from strongroom.errors import DecryptionFailed

__all__ = ["MAC_INFO", "MAC_SIZE", "PairDigest", "SnapshotMac"]

MAC_INFO = b"strongroom/snapshot-hmac/v1"
MAC_SIZE = 32


class SnapshotMac:
    """Incremental HMAC-SHA256 of one snapshot file (see the module docstring)."""

    __slots__ = ("_mac",)

    def __init__(self, kek: SecretBytes, snapshot_id: bytes) -> None:
        """Derive the snapshot's MAC key from ``kek`` and its ``snapshot_id`` (raises ``TypeError`` if
        ``kek`` is not ``SecretBytes``)."""
        if not isinstance(kek, SecretBytes):
            raise TypeError("SnapshotMac needs the KEK as SecretBytes")
        key = hkdf_sha256(kek, MAC_INFO, salt=snapshot_id)
        self._mac = hmac.new(key.reveal(), digestmod=hashlib.sha256)

    def __repr__(self) -> str:
        return "SnapshotMac(key=<hidden>)"

    def __reduce__(self) -> NoReturn:
        raise TypeError("SnapshotMac cannot be pickled")

    def __reduce_ex__(self, protocol: object) -> NoReturn:
        raise TypeError("SnapshotMac cannot be pickled")

    def update(self, data: bytes) -> None:
        """Add the next bytes of the file."""
        self._mac.update(data)

    def tag(self) -> bytes:
        """The 32-byte tag of the bytes added so far (more may be added afterwards)."""
        return self._mac.copy().digest()

    def verify(self, tag: bytes) -> None:
        """Check ``tag`` against the bytes added so far, in constant time.

        Raises:
            DecryptionFailed: the tag does not match (wrong key, or the file was altered or truncated).
        """
        if not hmac.compare_digest(self.tag(), tag):
            raise DecryptionFailed("snapshot authentication failed")


class PairDigest:
    """SHA-256 over ordered key/value pairs (see the module docstring)."""

    __slots__ = ("_hash",)

    def __init__(self) -> None:
        self._hash = hashlib.sha256()

    def update(self, key: bytes, value: bytes) -> None:
        """Add one pair."""
        h = self._hash
        h.update(len(key).to_bytes(8, "big"))
        h.update(key)
        h.update(len(value).to_bytes(8, "big"))
        h.update(value)

    def digest(self) -> bytes:
        """The 32-byte digest of the pairs added so far."""
        return self._hash.copy().digest()

    def hexdigest(self) -> str:
        """:meth:`digest` in lowercase hex."""
        return self._hash.copy().hexdigest()
