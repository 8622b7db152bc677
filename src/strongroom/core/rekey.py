"""The rekey ceremony: replace a namespace's root key and its Shamir shares, optionally verified.

This module holds what every rekey shares (:class:`RekeyRequest`, :func:`check_request`, :func:`new_shares`,
share checks, Vault's messages) and :class:`RekeyCeremony`, the node-local reference state machine whose
progress lives in one process's memory. The server's routes do not use it any more: they run
:class:`~strongroom.core.stored_rekey.StoredRekey`, the same steps with the attempt in storage, for the
platform as for tenants, so the calls may reach any worker of any node. ``tests/core/test_rekey.py`` pins
this reference (two instances over one store are two independent nodes' ceremonies there).

State machine (every transition happens under one lock, so concurrent calls see whole steps)::

    IDLE ──start──► COLLECTING ──threshold of CURRENT shares──► commit ──► IDLE        (no verification)
                         │                                └──► VERIFYING               (require_verification)
                         │ wrong combination: progress reset, same nonce
    VERIFYING ──threshold of NEW shares──► commit ──► IDLE
        │ wrong combination / restart_verification: progress reset, NEW verification nonce
    any ──cancel, expiry, or the root key changed (another node rekeyed)──► IDLE
          (the current shares stay valid until a commit)

The commit is ONE storage transaction: the stored keyring is re-read, opened with the current root key
and re-sealed under the new one, together with the new seal configuration and the backup record. The
node adopts the new key in memory only after that transaction committed, so a failed commit leaves the
old shares valid everywhere.
"""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from strongroom.barrier.keyring import Keyring
from strongroom.clock import Clock
from strongroom.core.namespace import NamespaceKeys
from strongroom.core.seal import SealConfig, ShareCollector
from strongroom.core.vault import Vault, encode_shares
from strongroom.crypto import pgp
from strongroom.crypto.aead import generate_key
from strongroom.crypto.random import random_uuid
from strongroom.crypto.secret import SecretBytes, constant_time_equal
from strongroom.crypto.shamir import split_key, validate_seal_config
from strongroom.errors import (
    CorruptRecord,
    DecryptionFailed,
    InvalidRequest,
    InvalidShare,
    NotInitialized,
    Sealed,
)
from strongroom.storage.base import Transaction, transactional

BACKUP_RECORD = "rekey-backup"
"""Name of the barrier record (area ``sys``) holding PGP-encrypted shares kept with ``backup=true``."""

MIN_KEY_BYTES = 16
MAX_KEY_BYTES = 33
"""Vault's accepted share sizes (AES-128 key .. AES-256 key plus the Shamir x-coordinate byte)."""

KEY_VERIFICATION_FAILED = "root key verification failed: Unseal failed, invalid key"


class RekeyPhase(StrEnum):
    """Where a rekey ceremony stands."""

    IDLE = "idle"
    COLLECTING = "collecting"
    VERIFYING = "verifying"


@dataclass(frozen=True)
class RekeyRequest:
    """Parameters of ``sys/rekey/init`` (validated by :meth:`RekeyCeremony.start`)."""

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


@dataclass
class _Attempt:
    """A started rekey: its parameters and everything collected so far."""

    request: RekeyRequest
    fingerprints: tuple[str, ...]
    nonce: str
    started: float
    shares: ShareCollector
    # The root key this attempt replaces: if it changes underneath (a rekey committed by another node,
    # then an unseal with the new shares) the attempt is void.
    replaces: SecretBytes
    # Set when the new key exists but waits for verification (phase VERIFYING).
    new_key: SecretBytes | None = None
    verification_nonce: str = ""
    verifier: ShareCollector | None = None
    backup: dict[str, Any] | None = field(default=None, repr=False)


def check_key_size(share: bytes) -> None:
    """Apply Vault's share size bounds.

    Raises:
        InvalidShare: shorter than 16 or longer than 33 bytes (Vault's messages).
    """
    if len(share) < MIN_KEY_BYTES:
        raise InvalidShare(f"key is shorter than minimum {MIN_KEY_BYTES} bytes")
    if len(share) > MAX_KEY_BYTES:
        raise InvalidShare(f"key is longer than maximum {MAX_KEY_BYTES} bytes")


def add_share(
    collector: ShareCollector, share: bytes, config: SealConfig, operation: str
) -> SecretBytes | None:
    """Add ``share`` to ``collector``; return the combined key at the threshold.

    Unlike unseal, Vault refuses a share given twice in rekey and generate-root ceremonies.

    Raises:
        InvalidRequest: the share was already given in this ``operation`` (Vault's message).
        InvalidShare: wrong size, or the shares do not combine (the collector is then reset).
    """
    check_key_size(share)
    before = collector.progress
    combined = collector.add(share, config)
    if combined is None and collector.progress == before:
        # ShareCollector ignores duplicates silently (right for unseal); here Vault reports them.
        raise InvalidRequest(f"given key has already been provided during this {operation} operation")
    return combined


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


class RekeyCeremony:
    """The rekey state machine of one namespace vault on this node."""

    def __init__(self, vault: Vault, clock: Clock, *, expiry_seconds: float | None = None) -> None:
        self.vault = vault
        self.clock = clock
        self.expiry_seconds = expiry_seconds
        self._attempt: _Attempt | None = None
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"RekeyCeremony(path={self.vault.path!r}, phase={self.phase.value})"

    @property
    def phase(self) -> RekeyPhase:
        """The current state (an expired attempt counts as IDLE)."""
        self._expire()
        if self._attempt is None:
            return RekeyPhase.IDLE
        return RekeyPhase.VERIFYING if self._attempt.new_key is not None else RekeyPhase.COLLECTING

    def _expire(self) -> None:
        attempt, limit, keys = self._attempt, self.expiry_seconds, self.vault.keys
        if attempt is None:
            return
        if (limit is not None and self.clock.now() - attempt.started > limit) or (keys is not None and keys.root_key != attempt.replaces):
            self._attempt = None

    async def _ready(self) -> tuple[SealConfig, NamespaceKeys]:
        config = await self.vault.seal_config()
        if config is None:
            raise NotInitialized("server is not yet initialized")
        keys = self.vault.keys
        if keys is None:
            raise Sealed()
        return config, keys

    async def status(self) -> dict[str, Any]:
        """Return Vault's rekey status body (``sys/rekey/init`` GET).

        Raises:
            NotInitialized: the vault has no seal configuration.
            Sealed: the vault is sealed on this node.
        """
        config, _ = await self._ready()
        body: dict[str, Any] = {
            "nonce": "", "started": False, "t": 0, "n": 0, "progress": 0, "required": config.secret_threshold,
            "pgp_fingerprints": None, "backup": False, "verification_required": False,
        }
        self._expire()
        attempt = self._attempt
        if attempt is not None:
            body.update(
                nonce=attempt.nonce,
                started=True,
                t=attempt.request.secret_threshold,
                n=attempt.request.secret_shares,
                progress=attempt.shares.progress,
                verification_required=attempt.request.require_verification,
            )
            if attempt.verification_nonce:
                body["verification_nonce"] = attempt.verification_nonce
            if attempt.fingerprints:
                body["pgp_fingerprints"] = list(attempt.fingerprints)
                body["backup"] = attempt.request.backup
        return body

    async def start(self, request: RekeyRequest) -> None:
        """IDLE -> COLLECTING with a new nonce.

        Raises:
            InvalidRequest: bad parameters (Vault's messages), an unusable PGP key, or ``rekey already in
                progress``.
            NotInitialized / Sealed: the vault cannot be rekeyed now.
        """
        fingerprints = check_request(request)
        async with self._lock:
            _, keys = await self._ready()
            if self.phase is not RekeyPhase.IDLE:
                raise InvalidRequest("rekey already in progress")
            self._attempt = _Attempt(
                request, fingerprints, random_uuid(), self.clock.now(), ShareCollector(self.clock),
                keys.root_key,
            )

    def cancel(self) -> None:
        """Any phase -> IDLE. The current shares stay valid."""
        self._attempt = None

    async def submit(self, share: bytes, nonce: str) -> RekeyResult | None:
        """Add one CURRENT share; at the threshold create the new key (COLLECTING -> IDLE or VERIFYING).

        Returns ``None`` while more shares are needed.

        Raises:
            InvalidRequest: no rekey, verification pending, wrong nonce, or a duplicate share.
            InvalidShare: malformed share, or the shares do not reconstruct the current root key (progress
                is reset; the attempt and its nonce stay).
            Sealed / NotInitialized: the vault cannot be rekeyed now.
        """
        async with self._lock:
            config, _ = await self._ready()
            attempt = self._attempt if self.phase is not RekeyPhase.IDLE else None
            if attempt is None:
                raise InvalidRequest("no barrier rekey in progress")
            if attempt.new_key is not None:
                raise InvalidRequest(
                    "rekey operation already finished; verification must be performed; "
                    f'nonce for the verification operation is "{attempt.verification_nonce}"'
                )
            if not constant_time_equal(nonce.encode(), attempt.nonce.encode()):
                raise InvalidRequest(
                    f'incorrect nonce supplied; nonce for this rekey operation is "{attempt.nonce}"'
                )
            combined = add_share(attempt.shares, share, config, "generation")
            if combined is None:
                return None
            await self._check_current_key(combined)
            return await self._new_key(attempt)

    async def _check_current_key(self, candidate: SecretBytes) -> None:
        """Prove ``candidate`` is the root key by opening the stored keyring with it."""

        async def read(tx: Transaction) -> bytes | None:
            return await tx.get(self.vault.keyring_key)

        blob = await transactional(self.vault.store, read)
        if blob is None:
            raise NotInitialized()
        try:
            Keyring.open(candidate, self.vault.keyring_key, blob)
        except DecryptionFailed:
            raise InvalidShare(KEY_VERIFICATION_FAILED) from None

    async def _new_key(self, attempt: _Attempt) -> RekeyResult:
        request = attempt.request
        new_key, keys_hex, keys_b64, backup = new_shares(request, attempt.fingerprints, attempt.nonce)
        verification_nonce = ""
        if request.require_verification:
            verification_nonce = random_uuid()
            attempt.new_key = new_key
            attempt.verification_nonce = verification_nonce
            attempt.verifier = ShareCollector(self.clock)
            attempt.backup = backup
        else:
            await self._commit(new_key, attempt, backup)
        return RekeyResult(
            nonce=attempt.nonce,
            keys=keys_hex,
            keys_base64=keys_b64,
            pgp_fingerprints=list(attempt.fingerprints) or None,
            backup=request.backup,
            verification_required=request.require_verification,
            verification_nonce=verification_nonce,
        )

    async def verification_status(self) -> dict[str, Any]:
        """Return Vault's ``sys/rekey/verify`` GET body.

        Raises:
            InvalidRequest: ``no rekey configuration found`` (IDLE).
            Sealed / NotInitialized: as :meth:`status`.
        """
        await self._ready()
        attempt = self._attempt if self.phase is not RekeyPhase.IDLE else None
        if attempt is None:
            raise InvalidRequest("no rekey configuration found")
        return {
            "nonce": attempt.verification_nonce,
            "started": attempt.new_key is not None,
            "t": attempt.request.secret_threshold,
            "n": attempt.request.secret_shares,
            "progress": attempt.verifier.progress if attempt.verifier else 0,
        }

    def restart_verification(self) -> None:
        """VERIFYING: forget the NEW shares given so far and choose a new verification nonce."""
        attempt = self._attempt if self.phase is RekeyPhase.VERIFYING else None
        if attempt is not None and attempt.verifier is not None:
            attempt.verifier.reset()
            attempt.verification_nonce = random_uuid()

    async def verify(self, share: bytes, nonce: str) -> str | None:
        """Add one NEW share; at the threshold commit the new key (VERIFYING -> IDLE).

        Returns the verification nonce once the rekey is committed, ``None`` while more shares are needed.

        Raises:
            InvalidRequest: no rekey, no verification pending, wrong nonce, duplicate share, or the new
                shares do not reconstruct the new key (then progress resets and the nonce changes).
            InvalidShare: malformed share.
            Sealed / NotInitialized: the vault cannot be rekeyed now.
        """
        async with self._lock:
            await self._ready()
            attempt = self._attempt if self.phase is not RekeyPhase.IDLE else None
            if attempt is None:
                raise InvalidRequest("no rekey in progress")
            if attempt.new_key is None or attempt.verifier is None:
                raise InvalidRequest("no rekey verification in progress")
            if not constant_time_equal(nonce.encode(), attempt.verification_nonce.encode()):
                expected = attempt.verification_nonce
                raise InvalidRequest(
                    f'incorrect nonce supplied; nonce for this verify operation is "{expected}"'
                )
            request = attempt.request
            new_config = SealConfig("shamir", request.secret_shares, request.secret_threshold)
            last = attempt.verifier.progress + 1 >= new_config.secret_threshold
            try:
                combined = add_share(attempt.verifier, share, new_config, "verify")
            except InvalidShare:
                if last and attempt.verifier.progress == 0:
                    # The shares failed to combine (the collector reset itself): as Vault, start over
                    # with a new nonce. A share refused for its size changes nothing.
                    attempt.verification_nonce = random_uuid()
                raise
            if combined is None:
                return None
            if combined != attempt.new_key:
                attempt.verification_nonce = random_uuid()
                raise InvalidRequest("rekey verification failed; incorrect key shares supplied")
            await self._commit(attempt.new_key, attempt, attempt.backup)
            return attempt.verification_nonce

    async def _commit(self, new_key: SecretBytes, attempt: _Attempt, backup: dict[str, Any] | None) -> None:
        """Re-seal the keyring under ``new_key`` with the new seal configuration, then adopt it."""
        vault = self.vault
        _, current = await self._ready()
        request = attempt.request
        config = SealConfig("shamir", request.secret_shares, request.secret_threshold, attempt.fingerprints)

        async def write(tx: Transaction) -> Keyring:
            blob = await tx.get(vault.keyring_key)
            if blob is None:
                raise NotInitialized()
            try:
                # The stored keyring, not the in-memory one: a rotation committed since this node loaded
                # its keys must survive the rekey (and reading it makes a concurrent rotation conflict).
                keyring = Keyring.open(current.root_key, vault.keyring_key, blob)
            except DecryptionFailed:
                raise CorruptRecord("the stored keyring is not sealed by this node's root key") from None
            tx.set(vault.keyring_key, keyring.seal(new_key, vault.keyring_key))
            await vault.update_config(tx, config)
            # Under the stored keyring, not the one in memory: a re-wrap may have dropped its terms.
            records = NamespaceKeys.build(current.ns_id, current.path, current.root_key, keyring).records(tx, "sys")
            if backup is not None:
                records.put_json((BACKUP_RECORD,), backup)
            else:
                # A backup of superseded shares would only mislead whoever finds it.
                records.clear(BACKUP_RECORD)
            return keyring

        keyring = await transactional(vault.store, write)
        if keyring.active.number == current.keyring.active.number:
            # Same keyring: keep the barrier (its encryption counter) and the record cache.
            adopted = dataclasses.replace(current, root_key=new_key)
        else:
            adopted = NamespaceKeys.build(current.ns_id, current.path, new_key, keyring)
        vault.install(adopted)
        vault.forget_config()
        self._attempt = None

