"""What a ceremony kept in storage acts on: the platform's seal or one tenant's (the *subject*).

Rekey (:mod:`strongroom.core.stored_rekey`) and generate-root (:mod:`strongroom.core.stored_generate_root`)
keep their attempt in a barrier record of the root namespace, encrypted under the platform keyring's
current term, with a nonce and an expiry, so custodians may reach any worker of any node. The state
machines are the same for every subject; a :class:`CeremonySubject` says what differs:

* **platform**: attempt records ``("platform-rekey", b"root")`` and ``("platform-generate-root", b"root")``;
  a committed rekey reaches this process's vault at once and, through it, the supervisor, which installs the
  key in the node's other workers; other nodes find that the keyring no longer opens with their key and seal
  themselves (the root key never travels between nodes);
* **tenant**: attempt records ``("tenant-rekey", id)`` and ``("tenant-generate-root", id)``; a committed
  rekey reaches every node through the tenant's key copy, replaced in the commit transaction.

Both need the platform unsealed on the node that takes the call (the records are encrypted under its
keyring), which a platform ceremony needs anyway: Vault's rekey and generate-root answer only while
unsealed. Nothing here unseals anything.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod

import orjson

from strongroom.barrier.keyring import Keyring
from strongroom.barrier.records import Records
from strongroom.core.namespace import NamespaceKeys
from strongroom.core.seal import SealConfig
from strongroom.core.tenant_seal import KEY_COPIES, REKEY_ATTEMPTS, ROOT_GENERATIONS, TenantVault
from strongroom.core.vault import Vault
from strongroom.crypto.kdf import hmac_sha256
from strongroom.crypto.secret import SecretBytes
from strongroom.storage.base import Transaction, transactional

PLATFORM_REKEY = "platform-rekey"
"""Area (in the root namespace's ``sys`` records) of the platform's rekey attempt."""
PLATFORM_ROOT_GENERATION = "platform-generate-root"
"""Area of the platform's root-token generation."""

_KEY_ID_LABEL = b"strongroom ceremony: root key replaced by this attempt"


def key_id(root_key: SecretBytes) -> str:
    """A one-way name of ``root_key`` (hex HMAC of a fixed label under it), stored inside a rekey attempt so
    that an attempt meant to replace another key is void (e.g. after an offline ``platform recover``)."""
    return hmac_sha256(root_key, _KEY_ID_LABEL).hex()


class CeremonySubject(ABC):
    """The namespace whose seal a stored ceremony acts on (see the module docstring)."""

    rekey_area: str
    generation_area: str

    def __init__(self, vault: Vault) -> None:
        self.vault = vault

    def __repr__(self) -> str:
        return f"{type(self).__name__}(path={self.vault.path!r})"

    @property
    def ns_id(self) -> bytes:
        """The subject's namespace id: the key of its attempt records."""
        return self.vault.ns_id

    @abstractmethod
    async def keys(self, tx: Transaction) -> tuple[NamespaceKeys, NamespaceKeys]:
        """``(platform keys, subject keys)``, both current as of ``tx``.

        Raises:
            Sealed: the platform or the subject is sealed on this node.
            CorruptRecord: a key copy or keyring is damaged.
        """

    @abstractmethod
    async def config(self, tx: Transaction) -> SealConfig | None:
        """The subject's stored seal configuration, read in ``tx`` (``None``: uninitialised)."""

    def records(self, tx: Transaction, platform: NamespaceKeys, area: str) -> Records:
        """The attempt records of ``area`` (keyed by namespace id), under the platform keyring."""
        return platform.records(tx, "sys", area)

    async def end_ceremonies(self) -> None:
        """Delete the subject's rekey and generate-root attempts, for every node (``sys/seal`` does this
        first: as in Vault, sealing ends the ceremonies in progress).

        Raises:
            Sealed: the platform is sealed on this node (nothing to read the records with).
        """

        async def run(tx: Transaction) -> None:
            platform = await self.platform_keys(tx)
            for area in (self.rekey_area, self.generation_area):
                self.records(tx, platform, area).clear(self.ns_id)

        await transactional(self.vault.store, run)

    @abstractmethod
    async def platform_keys(self, tx: Transaction) -> NamespaceKeys:
        """The platform's current keys, read in ``tx`` (whether or not the subject is unsealed).

        Raises:
            Sealed: the platform is sealed on this node.
        """

    @abstractmethod
    def hand_over(self, tx: Transaction, platform: NamespaceKeys, new_key: SecretBytes) -> None:
        """In a rekey's commit transaction: whatever makes the new root key reach the other nodes."""

    @abstractmethod
    def adopt(self, current: NamespaceKeys, keyring: Keyring, new_key: SecretBytes) -> None:
        """After a rekey committed: this process's in-memory part (``keyring`` is the re-sealed one)."""


class PlatformSubject(CeremonySubject):
    """The root namespace: its keys are the node's; the seal configuration is read from storage each time
    (another worker or node may have rekeyed since this process cached it)."""

    rekey_area = PLATFORM_REKEY
    generation_area = PLATFORM_ROOT_GENERATION

    async def keys(self, tx: Transaction) -> tuple[NamespaceKeys, NamespaceKeys]:
        keys = await self.vault.current_keys(tx)
        return keys, keys

    async def config(self, tx: Transaction) -> SealConfig | None:
        raw = await tx.get(self.vault.space.key("seal"))
        return SealConfig.from_json(orjson.loads(raw)) if raw else None

    async def platform_keys(self, tx: Transaction) -> NamespaceKeys:
        return await self.vault.current_keys(tx)

    def hand_over(self, tx: Transaction, platform: NamespaceKeys, new_key: SecretBytes) -> None:
        # Nothing to write: the root key is never stored. This process adopts it after the commit (adopt);
        # with --workers, Vault.install hands it to the supervisor, which installs it in the other workers.
        return None

    def adopt(self, current: NamespaceKeys, keyring: Keyring, new_key: SecretBytes) -> None:
        if keyring.active.number == current.keyring.active.number:
            # Same keyring: keep the barrier (its encryption counter) and the record cache.
            adopted = dataclasses.replace(current, root_key=new_key)
        else:
            adopted = NamespaceKeys.build(current.ns_id, current.path, new_key, keyring)
        self.vault.install(adopted)
        self.vault.forget_config()


class TenantSubject(CeremonySubject):
    """A tenant vault: keys from its key copy; a rekey replaces the copy, so every node adopts the new key at
    its next request in the tenant."""

    rekey_area = REKEY_ATTEMPTS
    generation_area = ROOT_GENERATIONS

    def __init__(self, vault: TenantVault) -> None:
        super().__init__(vault)
        self.tenant = vault

    async def keys(self, tx: Transaction) -> tuple[NamespaceKeys, NamespaceKeys]:
        platform = await self.tenant.platform.current_keys(tx)
        return platform, await self.tenant.keys_in(tx, platform)

    async def config(self, tx: Transaction) -> SealConfig | None:
        return await self.tenant.config_in(tx)

    async def platform_keys(self, tx: Transaction) -> NamespaceKeys:
        return await self.tenant.platform.current_keys(tx)

    def hand_over(self, tx: Transaction, platform: NamespaceKeys, new_key: SecretBytes) -> None:
        platform.records(tx, "sys", KEY_COPIES).put((self.ns_id,), new_key.reveal())

    def adopt(self, current: NamespaceKeys, keyring: Keyring, new_key: SecretBytes) -> None:
        # The next request reads the new key copy and rebuilds the keys (TenantVault.keys_in).
        return None


def subject_of(vault: Vault) -> CeremonySubject:
    """The subject for ``vault``: a tenant's, or the platform's for any other (root) vault."""
    if isinstance(vault, TenantVault):
        return TenantSubject(vault)
    return PlatformSubject(vault)
