"""The seal of a tenant namespace: its state lives in storage, so every node and worker sees it at once.

A :class:`TenantVault` is the platform's :class:`~strongroom.core.vault.Vault` (init, keyring opening,
rotation adoption, seal-status body: the same code) with the two node-memory parts moved to storage
(``docs/spec/namespaces.md`` sections 4 and 5):

* **unsealed** means the platform record ``("sys", "tenant-keys", id)`` exists: the tenant's root key,
  encrypted by the platform keyring's current term. :meth:`TenantVault.current_keys` reads it inside every
  request's transaction; no record raises :class:`~strongroom.errors.Sealed` and drops this node's copy;
* **unseal progress** is the platform record ``("sys", "tenant-unseal", id)``: ``{nonce, expires_at,
  shares}``, one transaction per submitted share, so custodians may reach different nodes.

Sealing deletes the key copy of the tenant and of every descendant tenant (found through the registry,
:mod:`strongroom.core.namespaces`) in one transaction: once it commits, no node serves the tenant.

State machine of the unseal progress record (per tenant)::

    absent ──share──► collecting(nonce, shares < t) ──share──► ...
    collecting ──t-th share opens the keyring──► absent + key copy written (UNSEALED), same transaction
    collecting ──t-th share does not──► absent (progress reset, as Vault) and a 400
    collecting ──reset, or expires_at passed──► absent
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from enum import Enum
from typing import Any

import orjson

from strongroom.barrier.keyring import Keyring
from strongroom.barrier.records import Records
from strongroom.core.initialization import InitRequest, InitResult
from strongroom.core.namespace import NamespaceKeys
from strongroom.core.namespaces import ID_BYTES, descendants, registry
from strongroom.core.seal import SealConfig, check_share, decode_share
from strongroom.core.vault import SetupHook, Vault
from strongroom.crypto.random import random_uuid
from strongroom.crypto.secret import SecretBytes, constant_time_equal
from strongroom.crypto.shamir import combine_key
from strongroom.errors import (
    CorruptRecord,
    DecryptionFailed,
    InvalidRequest,
    InvalidShare,
    NotInitialized,
    PermissionDenied,
    Sealed,
)
from strongroom.storage.base import Transaction, transactional

KEY_COPIES = "tenant-keys"
UNSEAL_PROGRESS = "tenant-unseal"
REKEY_ATTEMPTS = "tenant-rekey"
"""Where :mod:`strongroom.core.stored_rekey` keeps a tenant's rekey attempt."""
ROOT_GENERATIONS = "tenant-generate-root"
"""Where :mod:`strongroom.core.stored_generate_root` keeps a tenant's root-token generation."""
UNSEAL_FAILED = "Error unsealing: the unseal keys did not reconstruct the root key"
"""The platform's message for shares that do not open the keyring (``Vault.load_keys``)."""
DUPLICATE_SHARE = "given key has already been provided during this unseal operation"


class UnsealOutcome(Enum):
    """What one submitted share did."""

    COLLECTING = "collecting"
    UNSEALED = "unsealed"
    WRONG_KEY = "wrong-key"


@dataclass(frozen=True)
class UnsealProgress:
    """The stored unseal progress of one tenant (shares are decoded bytes; never logged)."""

    nonce: str = ""
    expires_at: float | None = None
    shares: tuple[bytes, ...] = ()

    def __repr__(self) -> str:
        return f"UnsealProgress(nonce={self.nonce!r}, progress={len(self.shares)})"

    @classmethod
    def load(cls, doc: Any, now: float) -> UnsealProgress:
        """Parse the stored record; an expired or absent one is empty progress.

        Raises:
            CorruptRecord: the record is damaged.
        """
        if doc is None:
            return cls()
        try:
            expires = doc.get("expires_at")
            progress = cls(
                str(doc["nonce"]),
                None if expires is None else float(expires),
                tuple(base64.b64decode(s, validate=True) for s in doc["shares"]),
            )
        except (KeyError, TypeError, ValueError, AttributeError, binascii.Error) as exc:
            raise CorruptRecord("malformed tenant unseal progress") from exc
        if progress.expires_at is not None and now > progress.expires_at:
            return cls()
        return progress

    def to_json(self) -> dict[str, Any]:
        """The stored form (inside a barrier record: the shares are encrypted at rest)."""
        return {
            "nonce": self.nonce,
            "expires_at": self.expires_at,
            "shares": [base64.b64encode(s).decode() for s in self.shares],
        }


class TenantVault(Vault):
    """The seal of one tenant namespace as this node sees it (see the module docstring).

    ``keys`` is this node's latest view (set by :meth:`current_keys`, which every request in the tenant
    calls inside its transaction); ``sealed`` therefore reflects storage as of the request's resolution.
    """

    def __init__(
        self, platform: Vault, ns_id: bytes, path: str, *, unseal_expiry: float | None = None
    ) -> None:
        super().__init__(platform.store, platform.clock, ns_id=ns_id, path=path, unseal_expiry=unseal_expiry)
        self.platform = platform
        self.unseal_expiry = unseal_expiry
        # The key copy's ciphertext the in-memory keys came from: an unchanged record needs no decryption.
        self._copy: bytes | None = None

    def __repr__(self) -> str:
        return f"TenantVault(path={self.path!r}, sealed={self.sealed})"

    # -- key state -------------------------------------------------------------------------------------

    async def seal_config(self) -> SealConfig | None:
        """The stored seal configuration, read afresh each time: another node may have initialised or
        rekeyed the tenant (the platform's vault may cache it; a tenant's is a storage fact)."""
        return await transactional(self.store, self.config_in)

    async def config_in(self, tx: Transaction) -> SealConfig | None:
        """The stored seal configuration, read in ``tx`` (``None``: uninitialised)."""
        raw = await tx.get(self.space.key("seal"))
        return SealConfig.from_json(orjson.loads(raw)) if raw else None

    def _copy_key(self, platform: NamespaceKeys) -> bytes:
        return platform.space.key("sys", KEY_COPIES, self.ns_id)

    async def current_keys(self, tx: Transaction) -> NamespaceKeys:
        """Return the tenant's keys after reading its key copy and keyring inside ``tx``.

        Raises:
            Sealed: the platform or the tenant is sealed (no key copy).
            CorruptRecord: the key copy does not decrypt, or does not open the keyring, or the keyring
                went backwards.
        """
        return await self.keys_in(tx, await self.platform.current_keys(tx))

    async def keys_in(self, tx: Transaction, platform: NamespaceKeys) -> NamespaceKeys:
        """:meth:`current_keys` with the platform's current keys already read in ``tx``."""
        physical = self._copy_key(platform)
        record = await tx.get(physical)
        if record is None:
            self.seal()
            raise Sealed()
        if record != self._copy or self.keys is None:
            root_key = SecretBytes(platform.barrier.decrypt(physical, record))
            if self.keys is None or self.keys.root_key != root_key:
                blob = await tx.get(self.keyring_key)
                if blob is None:
                    raise CorruptRecord("a tenant key copy exists but the tenant has no keyring")
                try:
                    keyring = Keyring.open(root_key, self.keyring_key, blob)
                except DecryptionFailed:
                    raise CorruptRecord("the tenant key copy does not open the tenant keyring") from None
                self.keys = NamespaceKeys.build(self.ns_id, self.path, root_key, keyring)
                self._keyring_blob = blob
            # Same root key under a new ciphertext: the platform re-wrapped the copy; the keys stay.
            self._copy = record
        return await super().current_keys(tx)

    async def refresh(self) -> None:
        """Bring ``keys`` up to date with storage in a transaction of its own (``sealed`` is then exact)."""

        async def read(tx: Transaction) -> None:
            try:
                await self.current_keys(tx)
            except Sealed:
                if self.platform.keys is None:
                    raise

        await transactional(self.store, read)

    def seal(self) -> None:
        """Forget this node's copy of the tenant's keys (storage is untouched; see :meth:`seal_node`)."""
        self._copy = None
        super().seal()

    async def seal_node(self) -> None:
        """Seal the tenant everywhere: delete its key copy and its descendants' in one transaction."""

        async def run(tx: Transaction) -> None:
            await seal_tenants(tx, await self.platform.current_keys(tx), self.ns_id)

        await transactional(self.store, run)
        self.seal()

    def install(self, keys: NamespaceKeys) -> None:
        """Adopt keys after a committed rotation (the key copy is unchanged by a rotation)."""
        self.keys = keys
        self._keyring_blob = None

    # -- unseal ceremony (progress in storage) ---------------------------------------------------------

    def _progress_records(self, platform: NamespaceKeys, tx: Transaction) -> Records:
        return platform.records(tx, "sys", UNSEAL_PROGRESS)

    async def progress(self) -> UnsealProgress:
        """Return the stored unseal progress (empty when expired or absent)."""

        async def read(tx: Transaction) -> UnsealProgress:
            platform = await self.platform.current_keys(tx)
            doc = await self._progress_records(platform, tx).get_json(self.ns_id)
            return UnsealProgress.load(doc, self.clock.now())

        return await transactional(self.store, read)

    async def reset_unseal(self) -> None:
        """Forget the collected shares, for every node."""

        async def run(tx: Transaction) -> None:
            platform = await self.platform.current_keys(tx)
            self._progress_records(platform, tx).clear(self.ns_id)

        await transactional(self.store, run)

    async def submit_unseal(self, key: str | None, reset: bool = False) -> None:
        """Process one unseal call for the tenant (``sys/unseal`` inside it, or its parent's
        ``sys/namespaces/NAME/unseal``).

        Raises:
            NotInitialized: the tenant has no seal configuration yet.
            InvalidRequest: neither key nor reset, undecodable key, a share already given, or reset while
                unsealed.
            InvalidShare: a share of the wrong size, or the threshold was reached with shares that do not
                open the tenant's keyring (the progress is then reset).
            Sealed: the platform is sealed on this node.
        """
        config = await self.seal_config()
        if config is None:
            raise NotInitialized()
        if reset:
            await self.refresh()
            if not self.sealed:
                raise InvalidRequest("vault is unsealed")
            await self.reset_unseal()
            return
        if not key:
            raise InvalidRequest("'key' must be specified in request body as JSON, or 'reset' set to true")
        share = decode_share(key)
        check_share(share, config)

        async def run(tx: Transaction) -> UnsealOutcome:
            return await self.add_share(tx, share, config)

        outcome = await transactional(self.store, run)
        if outcome is UnsealOutcome.WRONG_KEY:
            raise InvalidShare(UNSEAL_FAILED)
        await self.refresh()

    async def add_share(self, tx: Transaction, share: bytes, config: SealConfig) -> UnsealOutcome:
        """In ``tx``: add one checked share (see the module docstring's state machine).

        ``WRONG_KEY`` is returned, not raised, so that the caller commits the progress reset before
        failing the request.

        Raises:
            InvalidRequest: the share was already given (nothing is written).
            NotInitialized: the tenant has no keyring.
            Sealed: the platform is sealed on this node.
        """
        platform = await self.platform.current_keys(tx)
        if await tx.get(self._copy_key(platform)) is not None:
            return UnsealOutcome.UNSEALED  # already unsealed: the key is ignored, as Vault does
        records = self._progress_records(platform, tx)
        now = self.clock.now()
        progress = UnsealProgress.load(await records.get_json(self.ns_id), now)
        duplicate = False
        for held in progress.shares:
            # Every stored share is compared, whatever the result, in constant time each.
            duplicate |= constant_time_equal(held, share)
        if duplicate:
            raise InvalidRequest(DUPLICATE_SHARE)
        shares = (*progress.shares, share)
        if len(shares) < config.secret_threshold:
            expires = progress.expires_at
            if not progress.nonce and self.unseal_expiry is not None:
                expires = now + self.unseal_expiry
            updated = UnsealProgress(progress.nonce or random_uuid(), expires, shares)
            records.put_json((self.ns_id,), updated.to_json())
            return UnsealOutcome.COLLECTING
        records.clear(self.ns_id)  # combined, right or wrong: the progress resets (as Vault)
        try:
            root_key = combine_key(list(shares), config.secret_shares, config.secret_threshold)
        except (InvalidShare, InvalidRequest, ValueError):
            return UnsealOutcome.WRONG_KEY
        blob = await tx.get(self.keyring_key)
        if blob is None:
            raise NotInitialized()
        try:
            Keyring.open(root_key, self.keyring_key, blob)
        except DecryptionFailed:
            return UnsealOutcome.WRONG_KEY
        platform.records(tx, "sys", KEY_COPIES).put((self.ns_id,), root_key.reveal())
        return UnsealOutcome.UNSEALED

    async def status(self) -> dict[str, Any]:
        """The fields of Vault's seal-status body for the tenant, from storage (``keys`` refreshed too)."""
        await self.refresh()
        body = await transactional(self.store, self.status_in)
        info = await self.cluster_info() if not body["sealed"] else {"cluster_name": "", "cluster_id": ""}
        return {**body, **info}

    async def status_in(self, tx: Transaction) -> dict[str, Any]:
        """In ``tx``: ``type, initialized, sealed, t, n, progress, nonce`` of the tenant.

        Raises:
            Sealed: the platform is sealed on this node.
        """
        platform = await self.platform.current_keys(tx)
        config = await self.config_in(tx)
        sealed = await tx.get(self._copy_key(platform)) is None
        progress = UnsealProgress()
        if sealed:
            doc = await self._progress_records(platform, tx).get_json(self.ns_id)
            progress = UnsealProgress.load(doc, self.clock.now())
        return {
            "type": config.type if config else "shamir",
            "initialized": config is not None,
            "sealed": sealed,
            "t": config.secret_threshold if config else 0,
            "n": config.secret_shares if config else 0,
            "progress": len(progress.shares),
            "nonce": progress.nonce,
        }


VOID_ID = bytes(ID_BYTES)
"""Namespace id of :class:`VoidVault`; random ids are never all zero in practice and it is never written."""


class VoidVault(Vault):
    """What an unknown namespace answers with: sealed and uninitialised, and it cannot be initialised.

    An unauthenticated caller then sees the same as for an uninitialised tenant (DESIGN.md section 5).
    """

    async def initialize(self, request: InitRequest, setup: SetupHook) -> InitResult:
        raise PermissionDenied()

    async def seal_config(self) -> SealConfig | None:
        return None


def void_vault(platform: Vault) -> VoidVault:
    """A :class:`VoidVault` on ``platform``'s store."""
    return VoidVault(platform.store, platform.clock, ns_id=VOID_ID)


async def seal_tenants(tx: Transaction, platform: NamespaceKeys, ns_id: bytes) -> None:
    """In ``tx``: seal tenant ``ns_id`` and every tenant below it (delete key copies, unseal progress, rekey
    attempts and root-token generations)."""
    tree = await registry(tx, platform)
    for target in (ns_id, *descendants(tree, ns_id)):
        if target == ns_id or tree.get(target, (b"", False))[1]:
            platform.records(tx, "sys", KEY_COPIES).clear(target)
            platform.records(tx, "sys", UNSEAL_PROGRESS).clear(target)
            # Sealing drops the ceremonies in progress, as sealing the platform does.
            platform.records(tx, "sys", REKEY_ATTEMPTS).clear(target)
            platform.records(tx, "sys", ROOT_GENERATIONS).clear(target)
