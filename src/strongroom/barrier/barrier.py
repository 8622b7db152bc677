"""Barrier encryption of records.

Every value a namespace stores (except its seal configuration and its root-key-encrypted keyring) is a
barrier record::

    term (4 bytes, big endian) || version (1 byte, 0x01) || nonce (12) || AES-256-GCM ciphertext || tag (16)

The associated data is ``header || physical key``: a record cannot be moved to another key, and its term
and version cannot be changed, without failing authentication.

AES-256-GCM with random 96-bit nonces is safe for about 2^32 encryptions per key; the barrier counts its
encryptions per term so that the node can rotate before that bound (see ``encryptions``).
"""

from __future__ import annotations

import struct

from strongroom.barrier.keyring import Keyring
from strongroom.crypto.aead import AesGcm
from strongroom.errors import CorruptRecord, DecryptionFailed

RECORD_VERSION = 1
_HEADER = struct.Struct(">IB")

# Rotate well before the 2^32 random-nonce bound for AES-GCM (NIST SP 800-38D), as Vault does.
ROTATION_THRESHOLD = int(0.9 * 2**32)


class Barrier:
    """Encrypts and decrypts records with a namespace keyring.

    Thread-safe for reading; a new :class:`Barrier` is built when the keyring changes.
    """

    __slots__ = ("_active", "_active_header", "_ciphers", "encryptions", "keyring")

    def __init__(self, keyring: Keyring) -> None:
        self.keyring = keyring
        self._ciphers = {t.number: AesGcm(t.key) for t in keyring.terms}
        self._active = keyring.active.number
        self._active_header = _HEADER.pack(self._active, RECORD_VERSION)
        self.encryptions = 0

    def __repr__(self) -> str:
        return f"Barrier(active_term={self._active})"

    def encrypt(self, physical_key: bytes, plaintext: bytes) -> bytes:
        """Encrypt ``plaintext`` for storage at ``physical_key`` under the active term."""
        header = self._active_header
        self.encryptions += 1
        return header + self._ciphers[self._active].encrypt(plaintext, header + physical_key)

    def decrypt(self, physical_key: bytes, record: bytes) -> bytes:
        """Decrypt the record stored at ``physical_key``.

        Raises:
            CorruptRecord: the record is malformed, names an unknown term, or fails authentication
                (storage was altered or a record was moved).
        """
        if len(record) < _HEADER.size:
            raise CorruptRecord("stored record is truncated")
        term, version = _HEADER.unpack_from(record)
        if version != RECORD_VERSION:
            raise CorruptRecord("stored record has an unknown version")
        cipher = self._ciphers.get(term)
        if cipher is None:
            raise CorruptRecord("stored record names an unknown keyring term")
        try:
            return cipher.decrypt(record[_HEADER.size :], record[: _HEADER.size] + physical_key)
        except DecryptionFailed:
            raise CorruptRecord("stored record failed authentication") from None

    @staticmethod
    def term_of(record: bytes) -> int:
        """Return the keyring term a record was written under (for re-encryption jobs)."""
        return int(_HEADER.unpack_from(record)[0])
