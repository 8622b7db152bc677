"""The archive of the platform root key: its decrypted format and its two PGP modes.

See docs/operations/platform-ceremony.md, "The archive".

Decrypted, an archive is one line of JSON: ``{"format": "strongroom-platform-archive/1", "cluster_id": ...,
"root_key": <64 hex digits>}``. Encrypted, it is ASCII-armored OpenPGP, in one of two explicit modes:

* :attr:`ArchiveMode.ALL`: nested messages, one layer per key, so every key is needed (the first listed
  key removes the outermost layer);
* :attr:`ArchiveMode.ANY`: one message to every key, so each holder alone has the whole key.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

import orjson

from strongroom.crypto import pgp
from strongroom.crypto.aead import KEY_SIZE
from strongroom.crypto.secret import SecretBytes
from strongroom.errors import InvalidRequest

__all__ = ["ARCHIVE_FORMAT", "MAX_ARCHIVE_BYTES", "ArchiveMode", "ArchivedKey", "archive_message", "parse_archive"]

ARCHIVE_FORMAT = "strongroom-platform-archive/1"
"""``format`` of the decrypted archive."""
MAX_ARCHIVE_BYTES = 64 * 1024


class ArchiveMode(StrEnum):
    """Who can open the archive copy of the whole root key."""

    ALL = "all"
    """Nested encryption, one layer per key: every listed key is needed, in the listed order."""
    ANY = "any"
    """One message to every listed key: each holder ALONE has the whole key (bypasses the threshold)."""


@dataclass(frozen=True)
class ArchivedKey:
    """A decrypted archive: the platform root key and the cluster it belongs to."""

    cluster_id: str
    root_key: SecretBytes

    def __repr__(self) -> str:
        return f"ArchivedKey(cluster_id={self.cluster_id!r})"


def archive_message(
    root_key: SecretBytes, cluster_id: str, keys: Sequence[pgp.PgpPublicKey], mode: ArchiveMode
) -> bytes:
    """Return the armored archive of ``root_key`` for ``keys`` in ``mode``.

    Raises:
        ValueError: no keys. CryptoError: PGP encryption failed.
    """
    plaintext = orjson.dumps(
        {"format": ARCHIVE_FORMAT, "cluster_id": cluster_id, "root_key": root_key.reveal().hex()}
    ) + b"\n"
    if mode is ArchiveMode.ANY:
        return pgp.encrypt_armored(plaintext, list(keys))
    # Innermost layer first, so the first listed key removes the outermost layer.
    message = plaintext
    for key in reversed(keys):
        message = pgp.encrypt_armored(message, [key])
    return message


def parse_archive(data: bytes) -> ArchivedKey:
    """Parse a DECRYPTED archive (what the last ``gpg --decrypt`` printed).

    Raises:
        InvalidRequest: still encrypted, too large, or not a strongroom platform archive. The message
            never quotes the input.
    """
    if len(data) > MAX_ARCHIVE_BYTES:
        raise InvalidRequest("the archive is too large to be a decrypted platform archive")
    if data.lstrip().startswith(b"-----BEGIN PGP MESSAGE") or data[:1] in (b"\x84", b"\x85", b"\xc1"):
        raise InvalidRequest(
            "the archive is still PGP-encrypted: decrypt it with gpg first "
            "(mode all: one layer per archive key holder, in the order of the manifest)"
        )
    try:
        doc = orjson.loads(data)
        if not isinstance(doc, dict) or doc.get("format") != ARCHIVE_FORMAT:
            raise ValueError
        cluster_id, key_hex = doc["cluster_id"], doc["root_key"]
        if not isinstance(cluster_id, str) or not isinstance(key_hex, str):
            raise ValueError
        raw = bytes.fromhex(key_hex)
    except (orjson.JSONDecodeError, KeyError, ValueError):
        raise InvalidRequest(f"the archive is not a decrypted {ARCHIVE_FORMAT} document") from None
    if len(raw) != KEY_SIZE:
        raise InvalidRequest(f"the archived root key must be {KEY_SIZE} bytes")
    return ArchivedKey(cluster_id, SecretBytes(raw, kind="root key"))
