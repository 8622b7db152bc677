"""The rekey ceremony of a tenant, with its progress in storage (``docs/spec/namespaces.md`` section 5).

The same state machine, parameters, bodies and messages as the platform's
:class:`~strongroom.core.rekey.RekeyCeremony`, but the attempt is the platform barrier record
``("sys", "tenant-rekey", id)`` instead of node memory, so custodians may reach different nodes::

    {"nonce", "started", "request": {...}, "fingerprints": [...], "shares": [b64],      COLLECTING
     "new_key": b64 | null, "verification_nonce", "verify_shares": [b64], "backup"}    VERIFYING if new_key

Each call is one transaction. The commit re-seals the stored keyring under the new root key, writes the new
seal configuration, replaces the tenant's key copy (so every node adopts the new key at its next request)
and the backup record, and deletes the attempt, all in one transaction. While verification is pending the
new key rests in the attempt record, encrypted under the platform keyring like the key copy itself.
A wrong combination resets the progress and is then reported (the reset commits first), as Vault does.
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
from strongroom.core.tenant_seal import KEY_COPIES, REKEY_ATTEMPTS, TenantVault
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

RECORD = REKEY_ATTEMPTS


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

    def to_json(self) -> dict[str, Any]:
        r = self.request
        return {
            "nonce": self.nonce, "started": self.started,
            "request": {"n": r.secret_shares, "t": r.secret_threshold, "pgp": list(r.pgp_keys), "backup": r.backup,
                        "verify": r.require_verification},
            "fingerprints": list(self.fingerprints), "shares": [_b64(s) for s in self.shares],
            "new_key": _b64(self.new_key) if self.new_key is not None else None,
            "verification_nonce": self.verification_nonce, "verify_shares": [_b64(s) for s in self.verify_shares],
            "backup": self.backup,
        }  # fmt: skip

    @classmethod
    def from_json(cls, doc: Any) -> Attempt:
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
                doc.get("backup"),
            )  # fmt: skip
        except (KeyError, TypeError, ValueError) as exc:
            raise CorruptRecord("malformed tenant rekey attempt") from exc


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


class TenantRekey:
    """The rekey ceremony of one tenant (stateless: everything is in storage)."""

    def __init__(self, vault: TenantVault, *, expiry_seconds: float | None = None) -> None:
        self.vault = vault
        self.expiry_seconds = expiry_seconds

    def __repr__(self) -> str:
        return f"TenantRekey(path={self.vault.path!r})"

    # -- storage -----------------------------------------------------------------------------------------

    async def _state(self, tx: Transaction) -> tuple[NamespaceKeys, Records, SealConfig, Attempt | None]:
        """The platform keys, the attempt records, the seal configuration and the live attempt, in ``tx``.

        Raises:
            NotInitialized: the tenant has no seal configuration.
            Sealed: the platform or the tenant is sealed.
        """
        platform = await self.vault.platform.current_keys(tx)
        config = await self.vault.config_in(tx)
        if config is None:
            raise NotInitialized("server is not yet initialized")
        await self.vault.keys_in(tx, platform)
        records = platform.records(tx, "sys", RECORD)
        doc = await records.get_json(self.vault.ns_id)
        attempt = Attempt.from_json(doc) if doc is not None else None
        now = self.vault.clock.now()
        if (
            attempt is not None
            and self.expiry_seconds is not None
            and now - attempt.started > self.expiry_seconds
        ):
            records.clear(self.vault.ns_id)
            attempt = None
        return platform, records, config, attempt

    def _put(self, records: Records, attempt: Attempt) -> None:
        records.put_json((self.vault.ns_id,), attempt.to_json())

    # -- the ceremony ------------------------------------------------------------------------------------

    async def status(self) -> dict[str, Any]:
        """Vault's ``sys/rekey/init`` GET body (see :meth:`RekeyCeremony.status`)."""

        async def read(tx: Transaction) -> dict[str, Any]:
            _, _, config, attempt = await self._state(tx)
            body: dict[str, Any] = {
                "nonce": "", "started": False, "t": 0, "n": 0, "progress": 0, "required": config.secret_threshold,
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
        """IDLE -> COLLECTING. Raises as :meth:`RekeyCeremony.start`."""
        fingerprints = check_request(request)

        async def run(tx: Transaction) -> None:
            _, records, _, attempt = await self._state(tx)
            if attempt is not None:
                raise InvalidRequest("rekey already in progress")
            self._put(records, Attempt(random_uuid(), self.vault.clock.now(), request, fingerprints))

        await transactional(self.vault.store, run)

    async def cancel(self) -> None:
        """Any phase -> IDLE, for every node. The current shares stay valid."""

        async def run(tx: Transaction) -> None:
            _, records, _, _ = await self._state(tx)
            records.clear(self.vault.ns_id)

        await transactional(self.vault.store, run)

    async def submit(self, share: bytes, nonce: str) -> RekeyResult | None:
        """Add one CURRENT share; at the threshold create the new key. Raises as :meth:`RekeyCeremony.submit`."""

        async def run(tx: Transaction) -> RekeyResult | bool | None:
            platform, records, config, attempt = await self._state(tx)
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
            shares = _add(attempt.shares, share, config, "generation")
            if len(shares) < config.secret_threshold:
                self._put(records, replace(attempt, shares=shares))
                return None
            self._put(records, replace(attempt, shares=()))  # combined, right or wrong: progress resets
            if not await self._opens(tx, shares, config):
                return False
            new_key, keys_hex, keys_b64, backup = new_shares(
                attempt.request, attempt.fingerprints, attempt.nonce
            )
            verification_nonce = ""
            if attempt.request.require_verification:
                verification_nonce = random_uuid()
                self._put(records, replace(attempt, shares=(), new_key=new_key.reveal(),
                                           verification_nonce=verification_nonce, backup=backup))  # fmt: skip
            else:
                await self._commit(tx, platform, records, new_key, attempt, backup)
            return RekeyResult(
                nonce=attempt.nonce, keys=keys_hex, keys_base64=keys_b64,
                pgp_fingerprints=list(attempt.fingerprints) or None, backup=attempt.request.backup,
                verification_required=attempt.request.require_verification, verification_nonce=verification_nonce,
            )  # fmt: skip

        result = await transactional(self.vault.store, run)
        if result is False:
            raise InvalidShare(KEY_VERIFICATION_FAILED)
        return result if isinstance(result, RekeyResult) else None

    async def _opens(self, tx: Transaction, shares: tuple[bytes, ...], config: SealConfig) -> bool:
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
        """Vault's ``sys/rekey/verify`` GET body. Raises ``no rekey configuration found`` when idle."""

        async def read(tx: Transaction) -> dict[str, Any]:
            _, _, _, attempt = await self._state(tx)
            if attempt is None:
                raise InvalidRequest("no rekey configuration found")
            r = attempt.request
            return {
                "nonce": attempt.verification_nonce, "started": attempt.new_key is not None,
                "t": r.secret_threshold, "n": r.secret_shares, "progress": len(attempt.verify_shares),
            }  # fmt: skip

        return await transactional(self.vault.store, read)

    async def restart_verification(self) -> None:
        """VERIFYING: forget the NEW shares given so far and choose a new verification nonce."""

        async def run(tx: Transaction) -> None:
            _, records, _, attempt = await self._state(tx)
            if attempt is not None and attempt.new_key is not None:
                self._put(records, replace(attempt, verify_shares=(), verification_nonce=random_uuid()))

        await transactional(self.vault.store, run)

    async def verify(self, share: bytes, nonce: str) -> str | None:
        """Add one NEW share; at the threshold commit. Raises as :meth:`RekeyCeremony.verify`."""

        async def run(tx: Transaction) -> str | bool | None:
            platform, records, _, attempt = await self._state(tx)
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
                self._put(records, replace(attempt, verify_shares=shares))
                return None
            try:
                combined = combine_key(list(shares), r.secret_shares, r.secret_threshold)
            except (InvalidShare, InvalidRequest):
                combined = None
            if combined is None or combined.reveal() != attempt.new_key:
                # As Vault: start the verification over, with a new nonce (committed before the error).
                self._put(records, replace(attempt, verify_shares=(), verification_nonce=random_uuid()))
                return False
            await self._commit(tx, platform, records, combined, attempt, attempt.backup)
            return attempt.verification_nonce

        result = await transactional(self.vault.store, run)
        if result is False:
            raise InvalidRequest("rekey verification failed; incorrect key shares supplied")
        return result if isinstance(result, str) else None

    async def _commit(
        self, tx: Transaction, platform: NamespaceKeys, records: Records, new_key: SecretBytes,
        attempt: Attempt, backup: dict[str, Any] | None,
    ) -> None:  # fmt: skip
        """In ``tx``: re-seal the stored keyring under ``new_key`` and hand the new key to every node."""
        vault = self.vault
        current = await vault.keys_in(tx, platform)
        blob = await tx.get(vault.keyring_key)
        if blob is None:
            raise NotInitialized()
        try:
            keyring = Keyring.open(current.root_key, vault.keyring_key, blob)
        except DecryptionFailed:
            raise Sealed() from None
        r = attempt.request
        tx.set(vault.keyring_key, keyring.seal(new_key, vault.keyring_key))
        await vault.update_config(
            tx, SealConfig("shamir", r.secret_shares, r.secret_threshold, attempt.fingerprints)
        )
        platform.records(tx, "sys", KEY_COPIES).put((vault.ns_id,), new_key.reveal())
        tenant_sys = current.records(tx, "sys")
        if backup is not None:
            tenant_sys.put_json((BACKUP_RECORD,), backup)
        else:
            tenant_sys.clear(BACKUP_RECORD)  # a backup of superseded shares would only mislead
        records.clear(vault.ns_id)
