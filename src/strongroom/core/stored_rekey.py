"""The rekey ceremony with its progress in storage: the platform's and every tenant's.

Vault's state machine, bodies and messages (parameters and checks: :mod:`strongroom.core.rekey`), the
attempt in a barrier record of the root namespace, so custodians may reach different workers and nodes.
Where it lives and how a committed key reaches the other processes depends on the subject
(:mod:`strongroom.core.stored_ceremony`)::

    {"nonce", "started", "replaces", "request": {...}, "fingerprints": [...], "shares": [b64],      COLLECTING
     "new_key": b64 | null, "verification_nonce", "verify_shares": [b64], "backup"}   VERIFYING if new_key

State machine (one transaction per call: concurrent calls serialise on the record, a conflicting one is
retried and sees the other's step whole)::

    IDLE ──start──► COLLECTING ──threshold of CURRENT shares──► commit ──► IDLE        (no verification)
                         │                                └──► VERIFYING               (require_verification)
                         │ wrong combination: progress reset (committed), same nonce, then a 400
    VERIFYING ──threshold of NEW shares──► commit ──► IDLE
        │ wrong combination / restart_verification: progress reset, NEW verification nonce
    any ──cancel, expiry (the node's unseal expiry), sealing, or the root key replaced otherwise──► IDLE

``replaces`` names (one-way, :func:`~strongroom.core.stored_ceremony.key_id`) the root key the attempt was
started against: if that key is replaced otherwise (``strongroom platform recover``), the attempt is void.

The commit is ONE transaction: the stored keyring (read in it, so a rotation committed meanwhile survives)
is re-sealed under the new root key, the seal configuration and backup record are written, the subject hands
the key over (a tenant's key copy), and the attempt is deleted; until then the old shares stay valid. While a
verification is pending the new key rests in the attempt record under the platform keyring (exposure:
docs/operations/rekey-and-root-tokens.md).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field, replace
from typing import Any

from strongroom.barrier.keyring import Keyring
from strongroom.barrier.records import Records
from strongroom.core.namespace import NamespaceKeys
from strongroom.core.rekey import (
    BACKUP_RECORD,
    KEY_VERIFICATION_FAILED,
    RekeyRequest,
    RekeyResult,
    check_key_size,
    check_request,
    new_shares,
)
from strongroom.core.seal import SealConfig, check_share
from strongroom.core.stored_ceremony import CeremonySubject, key_id
from strongroom.crypto.random import random_uuid
from strongroom.crypto.secret import SecretBytes, constant_time_equal
from strongroom.crypto.shamir import combine_key
from strongroom.errors import (
    CorruptRecord,
    DecryptionFailed,
    InvalidRequest,
    InvalidShare,
    NotInitialized,
    Sealed,
)
from strongroom.storage.base import Transaction, transactional


@dataclass(frozen=True)
class Attempt:
    """A stored rekey attempt (shares and the new key are bytes; never logged)."""

    nonce: str
    started: float
    request: RekeyRequest
    fingerprints: tuple[str, ...]
    shares: tuple[bytes, ...] = field(default=(), repr=False)
    new_key: bytes | None = field(default=None, repr=False)
    verification_nonce: str = ""
    verify_shares: tuple[bytes, ...] = field(default=(), repr=False)
    backup: dict[str, Any] | None = field(default=None, repr=False)
    replaces: str = ""
    """:func:`key_id` of the root key this attempt replaces (``""`` in records written before it existed)."""

    def to_json(self) -> dict[str, Any]:
        r = self.request
        return {
            "nonce": self.nonce, "started": self.started, "replaces": self.replaces,
            "request": {"n": r.secret_shares, "t": r.secret_threshold, "pgp": list(r.pgp_keys), "backup": r.backup,
                        "verify": r.require_verification},
            "fingerprints": list(self.fingerprints), "shares": [_b64(s) for s in self.shares],
            "new_key": _b64(self.new_key) if self.new_key is not None else None,
            "verification_nonce": self.verification_nonce, "verify_shares": [_b64(s) for s in self.verify_shares],
            "backup": self.backup,
        }  # fmt: skip

    @classmethod
    def from_json(cls, doc: Any) -> Attempt:
        """Parse the stored form.

        Raises:
            CorruptRecord: the record is not a rekey attempt.
        """
        try:
            r = doc["request"]
            request = RekeyRequest(
                int(r["n"]), int(r["t"]), tuple(r["pgp"]), bool(r["backup"]), bool(r["verify"])
            )
            return cls(
                str(doc["nonce"]), float(doc["started"]), request, tuple(doc["fingerprints"]),
                tuple(base64.b64decode(s) for s in doc["shares"]),
                base64.b64decode(doc["new_key"]) if doc.get("new_key") else None,
                str(doc.get("verification_nonce", "")),
                tuple(base64.b64decode(s) for s in doc.get("verify_shares", ())),
                doc.get("backup"), str(doc.get("replaces", "")),
            )  # fmt: skip
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise CorruptRecord("malformed rekey attempt") from exc


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _add(held: tuple[bytes, ...], share: bytes, config: SealConfig, operation: str) -> tuple[bytes, ...]:
    """``held`` plus ``share``; a share of the wrong size or given twice changes nothing (Vault's messages)."""
    check_key_size(share)
    check_share(share, config)
    duplicate = False
    for existing in held:
        duplicate |= constant_time_equal(existing, share)
    if duplicate:
        raise InvalidRequest(f"given key has already been provided during this {operation} operation")
    return (*held, share)


@dataclass(frozen=True)
class _State:
    """What every step reads first, in its transaction."""

    platform: NamespaceKeys
    current: NamespaceKeys
    records: Records
    config: SealConfig
    attempt: Attempt | None


@dataclass(frozen=True)
class _Committed:
    """A rekey committed by this call: what the subject adopts in memory afterwards."""

    current: NamespaceKeys
    keyring: Keyring
    new_key: SecretBytes = field(repr=False)


class StoredRekey:
    """The rekey ceremony of one subject (stateless: everything is in storage)."""

    def __init__(self, subject: CeremonySubject, *, expiry_seconds: float | None = None) -> None:
        self.subject = subject
        self.vault = subject.vault
        self.expiry_seconds = expiry_seconds

    def __repr__(self) -> str:
        return f"StoredRekey({self.subject!r})"

    # -- storage -----------------------------------------------------------------------------------------

    async def _state(self, tx: Transaction) -> _State:
        """The keys, the attempt records, the seal configuration and the live attempt, in ``tx``.

        An expired attempt, or one meant for another root key, is deleted (in ``tx``) and reads as absent.

        Raises:
            NotInitialized: the subject has no seal configuration.
            Sealed: the platform or the subject is sealed.
        """
        config = await self.subject.config(tx)
        if config is None:
            raise NotInitialized("server is not yet initialized")
        platform, current = await self.subject.keys(tx)
        records = self.subject.records(tx, platform, self.subject.rekey_area)
        doc = await records.get_json(self.subject.ns_id)
        attempt = Attempt.from_json(doc) if doc is not None else None
        if attempt is not None and (self._expired(attempt) or not self._replaces(attempt, current)):
            records.clear(self.subject.ns_id)
            attempt = None
        return _State(platform, current, records, config, attempt)

    def _expired(self, attempt: Attempt) -> bool:
        limit = self.expiry_seconds
        return limit is not None and self.vault.clock.now() - attempt.started > limit

    @staticmethod
    def _replaces(attempt: Attempt, current: NamespaceKeys) -> bool:
        if not attempt.replaces:
            return True
        return constant_time_equal(attempt.replaces.encode(), key_id(current.root_key).encode())

    def _put(self, records: Records, attempt: Attempt) -> None:
        records.put_json((self.subject.ns_id,), attempt.to_json())

    # -- the ceremony ------------------------------------------------------------------------------------

    async def status(self) -> dict[str, Any]:
        """Vault's ``sys/rekey/init`` GET body.

        Raises:
            NotInitialized: the subject has no seal configuration.
            Sealed: the platform or the subject is sealed on this node.
        """

        async def read(tx: Transaction) -> dict[str, Any]:
            state = await self._state(tx)
            attempt = state.attempt
            body: dict[str, Any] = {
                "nonce": "", "started": False, "t": 0, "n": 0, "progress": 0,
                "required": state.config.secret_threshold,
                "pgp_fingerprints": None, "backup": False, "verification_required": False,
            }  # fmt: skip
            if attempt is not None:
                r = attempt.request
                body.update(nonce=attempt.nonce, started=True, t=r.secret_threshold, n=r.secret_shares,
                            progress=len(attempt.shares), verification_required=r.require_verification)  # fmt: skip
                if attempt.verification_nonce:
                    body["verification_nonce"] = attempt.verification_nonce
                if attempt.fingerprints:
                    body["pgp_fingerprints"] = list(attempt.fingerprints)
                    body["backup"] = r.backup
            return body

        return await transactional(self.vault.store, read)

    async def start(self, request: RekeyRequest) -> None:
        """IDLE -> COLLECTING with a new nonce.

        Raises:
            InvalidRequest: bad parameters (Vault's messages), an unusable PGP key, or ``rekey already in
                progress``.
            NotInitialized / Sealed: the subject cannot be rekeyed now.
        """
        fingerprints = check_request(request)

        async def run(tx: Transaction) -> None:
            state = await self._state(tx)
            if state.attempt is not None:
                raise InvalidRequest("rekey already in progress")
            fresh = Attempt(random_uuid(), self.vault.clock.now(), request, fingerprints,
                            replaces=key_id(state.current.root_key))  # fmt: skip
            self._put(state.records, fresh)

        await transactional(self.vault.store, run)

    async def cancel(self) -> None:
        """Any phase -> IDLE, for every node. The current shares stay valid.

        Raises:
            NotInitialized / Sealed: as :meth:`status`.
        """

        async def run(tx: Transaction) -> None:
            state = await self._state(tx)
            state.records.clear(self.subject.ns_id)

        await transactional(self.vault.store, run)

    async def submit(self, share: bytes, nonce: str) -> RekeyResult | None:
        """Add one CURRENT share; at the threshold create the new key (COLLECTING -> IDLE or VERIFYING).

        Returns ``None`` while more shares are needed.

        Raises:
            InvalidRequest: no rekey, verification pending, wrong nonce, or a duplicate share.
            InvalidShare: malformed share, or the shares do not reconstruct the current root key (the
                progress reset is committed first; the attempt and its nonce stay).
            NotInitialized / Sealed: the subject cannot be rekeyed now.
        """

        async def run(tx: Transaction) -> tuple[RekeyResult | None, bool, _Committed | None]:
            state = await self._state(tx)
            attempt = state.attempt
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
            shares = _add(attempt.shares, share, state.config, "generation")
            if len(shares) < state.config.secret_threshold:
                self._put(state.records, replace(attempt, shares=shares))
                return None, True, None
            self._put(state.records, replace(attempt, shares=()))  # combined, right or wrong: progress resets
            if not await self._opens(tx, shares, state.config):
                return None, False, None
            new_key, keys_hex, keys_b64, backup = new_shares(
                attempt.request, attempt.fingerprints, attempt.nonce
            )
            verification_nonce = ""
            committed = None
            if attempt.request.require_verification:
                verification_nonce = random_uuid()
                self._put(state.records, replace(attempt, shares=(), new_key=new_key.reveal(),
                                                 verification_nonce=verification_nonce, backup=backup))  # fmt: skip
            else:
                committed = await self._commit(tx, state, new_key, attempt, backup)
            result = RekeyResult(
                nonce=attempt.nonce, keys=keys_hex, keys_base64=keys_b64,
                pgp_fingerprints=list(attempt.fingerprints) or None, backup=attempt.request.backup,
                verification_required=attempt.request.require_verification, verification_nonce=verification_nonce,
            )  # fmt: skip
            return result, True, committed

        result, opened, committed = await transactional(self.vault.store, run)
        if not opened:
            raise InvalidShare(KEY_VERIFICATION_FAILED)
        if committed is not None:
            self.subject.adopt(committed.current, committed.keyring, committed.new_key)
        return result

    async def _opens(self, tx: Transaction, shares: tuple[bytes, ...], config: SealConfig) -> bool:
        """Whether ``shares`` combine to a key that opens the stored keyring (proof of the current quorum)."""
        try:
            candidate = combine_key(list(shares), config.secret_shares, config.secret_threshold)
        except (InvalidShare, InvalidRequest):
            return False
        blob = await tx.get(self.vault.keyring_key)
        if blob is None:
            raise NotInitialized()
        try:
            Keyring.open(candidate, self.vault.keyring_key, blob)
        except DecryptionFailed:
            return False
        return True

    async def verification_status(self) -> dict[str, Any]:
        """Vault's ``sys/rekey/verify`` GET body.

        Raises:
            InvalidRequest: ``no rekey configuration found`` (IDLE).
            NotInitialized / Sealed: as :meth:`status`.
        """

        async def read(tx: Transaction) -> dict[str, Any]:
            attempt = (await self._state(tx)).attempt
            if attempt is None:
                raise InvalidRequest("no rekey configuration found")
            r = attempt.request
            return {
                "nonce": attempt.verification_nonce, "started": attempt.new_key is not None,
                "t": r.secret_threshold, "n": r.secret_shares, "progress": len(attempt.verify_shares),
            }  # fmt: skip

        return await transactional(self.vault.store, read)

    async def restart_verification(self) -> None:
        """VERIFYING: forget the NEW shares given so far and choose a new verification nonce (else nothing).

        Raises:
            NotInitialized / Sealed: as :meth:`status`.
        """

        async def run(tx: Transaction) -> None:
            state = await self._state(tx)
            attempt = state.attempt
            if attempt is not None and attempt.new_key is not None:
                self._put(state.records, replace(attempt, verify_shares=(), verification_nonce=random_uuid()))

        await transactional(self.vault.store, run)

    async def verify(self, share: bytes, nonce: str) -> str | None:
        """Add one NEW share; at the threshold commit the new key (VERIFYING -> IDLE).

        Returns the verification nonce once the rekey is committed, ``None`` while more shares are needed.

        Raises:
            InvalidRequest: no rekey, no verification pending, wrong nonce, duplicate share, or the new
                shares do not reconstruct the new key (progress reset and new nonce committed first).
            InvalidShare: malformed share.
            NotInitialized / Sealed: the subject cannot be rekeyed now.
        """

        async def run(tx: Transaction) -> tuple[str | None, bool, _Committed | None]:
            state = await self._state(tx)
            attempt = state.attempt
            if attempt is None:
                raise InvalidRequest("no rekey in progress")
            if attempt.new_key is None:
                raise InvalidRequest("no rekey verification in progress")
            if not constant_time_equal(nonce.encode(), attempt.verification_nonce.encode()):
                expected = attempt.verification_nonce
                raise InvalidRequest(
                    f'incorrect nonce supplied; nonce for this verify operation is "{expected}"'
                )
            r = attempt.request
            new_config = SealConfig("shamir", r.secret_shares, r.secret_threshold)
            shares = _add(attempt.verify_shares, share, new_config, "verify")
            if len(shares) < r.secret_threshold:
                self._put(state.records, replace(attempt, verify_shares=shares))
                return None, True, None
            try:
                combined: SecretBytes | None = combine_key(list(shares), r.secret_shares, r.secret_threshold)
            except (InvalidShare, InvalidRequest):
                combined = None
            if combined is None or not constant_time_equal(combined.reveal(), attempt.new_key):
                # As Vault: start the verification over, with a new nonce (committed before the error).
                self._put(state.records, replace(attempt, verify_shares=(), verification_nonce=random_uuid()))
                return None, False, None
            committed = await self._commit(tx, state, combined, attempt, attempt.backup)
            return attempt.verification_nonce, True, committed

        done, matched, committed = await transactional(self.vault.store, run)
        if not matched:
            raise InvalidRequest("rekey verification failed; incorrect key shares supplied")
        if committed is not None:
            self.subject.adopt(committed.current, committed.keyring, committed.new_key)
        return done

    async def _commit(
        self, tx: Transaction, state: _State, new_key: SecretBytes, attempt: Attempt,
        backup: dict[str, Any] | None,
    ) -> _Committed:  # fmt: skip
        """In ``tx``: re-seal the stored keyring under ``new_key``, write the new configuration and backup,
        hand the key over and end the attempt (see the module docstring)."""
        vault, current = self.vault, state.current
        blob = await tx.get(vault.keyring_key)
        if blob is None:
            raise NotInitialized()
        try:
            # The keyring storage holds, not one in memory: a rotation committed since must survive.
            keyring = Keyring.open(current.root_key, vault.keyring_key, blob)
        except DecryptionFailed:
            raise Sealed() from None
        r = attempt.request
        tx.set(vault.keyring_key, keyring.seal(new_key, vault.keyring_key))
        config = SealConfig("shamir", r.secret_shares, r.secret_threshold, attempt.fingerprints)
        await vault.update_config(tx, config)
        # ``current`` was checked against the stored keyring in this transaction: its active term is the
        # one storage holds (a re-wrap may have dropped older ones, core/rewrap.py).
        own = current.records(tx, "sys")
        if backup is not None:
            own.put_json((BACKUP_RECORD,), backup)
        else:
            own.clear(BACKUP_RECORD)  # a backup of superseded shares would only mislead
        self.subject.hand_over(tx, state.platform, new_key)
        state.records.clear(self.subject.ns_id)
        return _Committed(current, keyring, new_key)
