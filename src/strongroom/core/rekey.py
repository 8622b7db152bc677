"""What every rekey shares: parameters, their checks in Vault's order, the new key and shares, Vault's messages.

The ceremony itself, its state machine and the atomic commit, is
:class:`~strongroom.core.stored_rekey.StoredRekey` (progress in storage, for the platform as for tenants,
so the calls may reach any worker of any node); ``sys/rekey`` and the namespace rekey routes run it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from strongroom.core.vault import encode_shares
from strongroom.crypto import pgp
from strongroom.crypto.aead import generate_key
from strongroom.crypto.secret import SecretBytes
from strongroom.crypto.shamir import split_key, validate_seal_config
from strongroom.errors import InvalidRequest, InvalidShare

BACKUP_RECORD = "rekey-backup"
"""Name of the barrier record (area ``sys``) holding PGP-encrypted shares kept with ``backup=true``."""

MIN_KEY_BYTES = 16
MAX_KEY_BYTES = 33
"""Vault's accepted share sizes (AES-128 key .. AES-256 key plus the Shamir x-coordinate byte)."""

KEY_VERIFICATION_FAILED = "root key verification failed: Unseal failed, invalid key"


@dataclass(frozen=True)
class RekeyRequest:
    """Parameters of ``sys/rekey/init`` (validated by :func:`check_request`)."""

    secret_shares: int
    secret_threshold: int
    pgp_keys: tuple[str, ...] = ()
    backup: bool = False
    require_verification: bool = False


@dataclass(frozen=True)
class RekeyResult:
    """What the last ``sys/rekey/update`` returns. ``keys`` are hex, ``keys_base64`` base64."""

    nonce: str
    keys: list[str]
    keys_base64: list[str]
    pgp_fingerprints: list[str] | None
    backup: bool
    verification_required: bool
    verification_nonce: str


def check_key_size(share: bytes) -> None:
    """Apply Vault's share size bounds.

    Raises:
        InvalidShare: shorter than 16 or longer than 33 bytes (Vault's messages).
    """
    if len(share) < MIN_KEY_BYTES:
        raise InvalidShare(f"key is shorter than minimum {MIN_KEY_BYTES} bytes")
    if len(share) > MAX_KEY_BYTES:
        raise InvalidShare(f"key is longer than maximum {MAX_KEY_BYTES} bytes")


def check_request(request: RekeyRequest) -> tuple[str, ...]:
    """Check ``sys/rekey/init`` parameters in Vault's order, parsing PGP keys now (a bad key must not waste
    the custodians' shares); return the fingerprints. Raises ``InvalidRequest`` with Vault's messages."""
    if request.backup and not request.pgp_keys:
        raise InvalidRequest("cannot request a backup of the new keys without providing PGP keys for encryption")
    if request.pgp_keys and len(request.pgp_keys) != request.secret_shares:
        raise InvalidRequest("incorrect number of PGP keys for rekey")
    if request.secret_threshold > request.secret_shares:
        raise InvalidRequest("provided threshold greater than the total shares")
    try:
        validate_seal_config(request.secret_shares, request.secret_threshold)
    except InvalidRequest as exc:
        raise InvalidRequest(f"invalid rekey seal configuration: {exc.message}") from None
    return tuple(pgp.parse_public_key(k).fingerprint for k in request.pgp_keys)


def new_shares(
    request: RekeyRequest, fingerprints: tuple[str, ...], nonce: str
) -> tuple[SecretBytes, list[str], list[str], dict[str, Any] | None]:
    """Make the new root key and its encoded shares: ``(key, hex, base64, backup record or None)``."""
    new_key = generate_key()
    shares = split_key(new_key, request.secret_shares, request.secret_threshold)
    keys_hex, keys_b64 = encode_shares(shares, request.pgp_keys)
    backup = None
    if request.backup:
        by_fingerprint: dict[str, list[str]] = {}
        for fingerprint, message in zip(fingerprints, keys_hex, strict=True):
            by_fingerprint.setdefault(fingerprint, []).append(message)
        backup = {"nonce": nonce, "keys": by_fingerprint}
    return new_key, keys_hex, keys_b64, backup
