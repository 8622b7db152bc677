"""The seal lifecycle of one namespace's vault: initialise, unseal, seal, rotate.

:class:`Vault` owns the in-memory key state of a namespace (``keys`` is ``None`` while sealed) and the
unseal ceremony's progress. What it writes to storage:

* ``("ns", id, "seal")`` in clear: the seal configuration (type, shares, threshold, cluster name and id);
* ``("ns", id, "keyring")``: the keyring encrypted by the root key.

Initialisation is one storage transaction, including whatever the ``setup`` hook writes (default mounts,
policies and the root token), so a crash leaves the vault either uninitialised or fully initialised.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import orjson

from strongroom.barrier.keyring import Keyring
from strongroom.clock import Clock
from strongroom.core.encryption_budget import EncryptionBudget

# InitRequest, InitResult, encode_shares and new_cluster_info are re-exported: callers import them here.
from strongroom.core.initialization import InitRequest as InitRequest
from strongroom.core.initialization import InitResult as InitResult
from strongroom.core.initialization import encode_shares as encode_shares
from strongroom.core.initialization import new_cluster_info as new_cluster_info
from strongroom.core.initialization import prepare_init
from strongroom.core.namespace import ROOT_NAMESPACE_ID, NamespaceKeys
from strongroom.core.seal import SealConfig, ShareCollector, decode_share
from strongroom.crypto.secret import SecretBytes
from strongroom.errors import (
    AlreadyInitialized,
    CorruptRecord,
    DecryptionFailed,
    InvalidRequest,
    InvalidShare,
    NotInitialized,
    Sealed,
)
from strongroom.storage.base import Store, Transaction, transactional
from strongroom.storage.subspace import check_layout, namespace

SetupHook = Callable[[Transaction, NamespaceKeys], Awaitable[str]]
"""Writes a new vault's initial records in the init transaction and returns the root token."""


class UnsealCoordinator(Protocol):
    """Where a worker process's vault runs the node's unseal ceremony instead of its own collector.

    Under ``strongroom server --workers N`` the node's unseal progress and, while unsealed, its root key
    live in the supervisor (:mod:`strongroom.core.worker_link` implements this over the supervisor link).
    Keys reach every worker's vault through :meth:`Vault.install`; a vault with no coordinator (one
    process) keeps using its own :class:`ShareCollector`.
    """

    async def submit(self, share: bytes, config: SealConfig, keyring_key: bytes, keyring: bytes) -> None:
        """Add one share; when it completes the ceremony, return after every worker installed the keys.

        Raises:
            InvalidShare: bad share, or the combined key does not open ``keyring``.
            InvalidRequest: bad share parameters.
        """
        ...

    async def reset(self) -> None:
        """Forget the node's collected shares."""
        ...

    async def progress(self) -> tuple[int, str]:
        """Return the node's ``(progress, nonce)``."""
        ...

    async def seal(self) -> None:
        """Seal every worker of the node; return once none of them holds the keys."""
        ...

    async def seal_unless_unsealed(self) -> bool:
        """``sys/seal`` through a worker whose vault holds no keys: take the node's key if it opens the stored
        keyring (``False``: authorize and seal as usual), else seal every worker unless the node changed
        meanwhile (``True``: sealed).

        Raises:
            Sealed: the node kept changing while it looked (retry).
        """
        ...

    def root_key_changed(self, root_key: SecretBytes) -> None:
        """This worker adopted a new root key (a rekey committed here): hand it to the node."""
        ...


class Vault:
    """The seal state of one namespace on this node."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        *,
        ns_id: bytes = ROOT_NAMESPACE_ID,
        path: str = "",
        unseal_expiry: float | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.ns_id = ns_id
        self.path = path
        self.space = namespace(ns_id)
        self._keyring_key = self.space.key("keyring")
        self.keys: NamespaceKeys | None = None
        self.unseal_progress = ShareCollector(clock, unseal_expiry)
        self._config: SealConfig | None = None
        # The keyring record the in-memory keys were decrypted from; compared on every request so a
        # rotation or rekey committed by another node (or process) is picked up at once.
        self._keyring_blob: bytes | None = None
        self.budget = EncryptionBudget(store, clock)
        self._cluster: dict[str, str] | None = None
        self.on_seal: list[Callable[[], None]] = []
        """Called by :meth:`seal`: ceremonies holding key material register their reset here."""
        self.coordinator: UnsealCoordinator | None = None
        """Set in worker processes: the node's unseal ceremony and seal run through it (see the Protocol)."""

    def __repr__(self) -> str:
        return f"Vault(path={self.path!r}, sealed={self.sealed})"

    @property
    def sealed(self) -> bool:
        """Whether this node holds no keys for the namespace."""
        return self.keys is None

    @property
    def keyring_key(self) -> bytes:
        """Physical key of the keyring record (its associated data); read on every request."""
        return self._keyring_key

    async def seal_config(self) -> SealConfig | None:
        """Return the stored seal configuration, or ``None`` if uninitialised."""
        if self._config is not None:
            return self._config

        async def read(tx: Transaction) -> bytes | None:
            return await tx.get(self.space.key("seal"))

        raw = await transactional(self.store, read)
        if raw is None:
            return None
        self._config = SealConfig.from_json(orjson.loads(raw))
        return self._config

    async def initialize(self, request: InitRequest, setup: SetupHook) -> InitResult:
        """Create the root key, its shares, the keyring and the initial records; stay sealed.

        Raises:
            AlreadyInitialized: the namespace already has a seal configuration.
            InvalidRequest: bad share parameters or PGP keys.
        """
        prepared = prepare_init(request)

        async def init(tx: Transaction) -> str:
            keys = await self.write_new_seal(tx, prepared.root_key, prepared.config, prepared.cluster)
            return await setup(tx, keys)

        root_token = await transactional(self.store, init)
        self._config = prepared.config
        return prepared.result(root_token)

    async def write_new_seal(
        self, tx: Transaction, root_key: SecretBytes, config: SealConfig, cluster: dict[str, str]
    ) -> NamespaceKeys:
        """In ``tx``: write the seal configuration and a new keyring sealed by ``root_key``; return its keys.

        The shared first step of ``sys/init`` and the offline platform ceremony (core/platform.py). The
        vault stays sealed: nothing is installed in memory.

        Raises:
            AlreadyInitialized: the namespace already has a seal configuration.
            StorageError: the layout version record refuses this store.
        """
        await check_layout(tx)
        if await tx.get(self.space.key("seal")) is not None:
            raise AlreadyInitialized()
        keyring = Keyring.generate(self.clock.now())
        tx.set(self.space.key("seal"), orjson.dumps({**config.to_json(), **cluster}))
        tx.set(self.keyring_key, keyring.seal(root_key, self.keyring_key))
        return NamespaceKeys.build(self.ns_id, self.path, root_key, keyring)

    async def cluster_info(self) -> dict[str, str]:
        """Return ``cluster_name`` and ``cluster_id`` (empty strings before init).

        They are fixed at initialisation and never change, so after the first read they are served from
        memory: ``sys/health`` and ``sys/seal-status`` are polled often by load balancers.
        """
        if self._cluster is not None:
            return dict(self._cluster)

        async def read(tx: Transaction) -> bytes | None:
            return await tx.get(self.space.key("seal"))

        raw = await transactional(self.store, read)
        doc = orjson.loads(raw) if raw else {}
        info = {"cluster_name": doc.get("cluster_name", ""), "cluster_id": doc.get("cluster_id", "")}
        if raw:
            self._cluster = info
        return dict(info)

    async def _read_keyring(self) -> bytes | None:
        async def read(tx: Transaction) -> bytes | None:
            return await tx.get(self.keyring_key)

        return await transactional(self.store, read)

    async def load_keys(self, root_key: SecretBytes) -> NamespaceKeys:
        """Decrypt the keyring with ``root_key`` and return the namespace keys (does not unseal).

        Raises:
            InvalidShare: the key does not open the keyring.
        """
        blob = await self._read_keyring()
        if blob is None:
            raise NotInitialized()
        try:
            keyring = Keyring.open(root_key, self.keyring_key, blob)
        except DecryptionFailed:
            raise InvalidShare(
                "Error unsealing: the unseal keys did not reconstruct the root key"
            ) from None
        return NamespaceKeys.build(self.ns_id, self.path, root_key, keyring)

    async def submit_unseal(self, key: str | None, reset: bool = False) -> None:
        """Process one ``sys/unseal`` call: add a share, or reset the progress.

        Raises:
            NotInitialized: the vault has no seal configuration yet.
            InvalidRequest: neither key nor reset given, undecodable key, or reset while unsealed.
            InvalidShare: bad share, or the threshold was reached with shares that do not combine.
        """
        config = await self.seal_config()
        if config is None:
            raise NotInitialized()
        if reset:
            if not self.sealed:
                raise InvalidRequest("vault is unsealed")
            await self.reset_unseal()
            return
        if not key:
            raise InvalidRequest(
                "'key' must be specified in request body as JSON, or 'reset' set to true"
            )
        if not self.sealed:
            return
        share = decode_share(key)
        if self.coordinator is not None:
            blob = await self._read_keyring()
            if blob is None:
                raise NotInitialized()
            await self.coordinator.submit(share, config, self.keyring_key, blob)
            return
        root_key = self.unseal_progress.add(share, config)
        if root_key is not None:
            self.keys = await self.load_keys(root_key)

    async def current_keys(self, tx: Transaction) -> NamespaceKeys:
        """Return this node's keys, checked against the stored keyring inside ``tx``.

        One point read per request: if the keyring record changed (a rotation by another node), the new
        keyring is decrypted with the root key held in memory and adopted. If it no longer opens with that
        key (a rekey elsewhere) the node seals itself: it fails closed instead of serving with stale keys.

        Raises:
            Sealed: the vault is sealed here, or had to seal because its root key is obsolete.
            CorruptRecord: the keyring's generation went backwards (storage rolled back).
        """
        keys = self.keys
        if keys is None:
            raise Sealed()
        blob = await tx.get(self.keyring_key)
        if blob is not None and blob == self._keyring_blob:
            return keys
        if blob is None:
            self.seal()
            raise Sealed()
        try:
            keyring = Keyring.open(keys.root_key, self.keyring_key, blob)
        except DecryptionFailed:
            self.seal()
            raise Sealed() from None
        if keyring.generation < keys.keyring.generation:
            raise CorruptRecord("the stored keyring is older than the one in memory: storage was rolled back")
        if keyring.generation == keys.keyring.generation and keyring.terms != keys.keyring.terms:
            # Two different keyrings with one generation: this node's keys no longer match storage.
            # Serving on would write records nobody else can read; fail closed.
            self.seal()
            raise Sealed()
        if keyring.generation != keys.keyring.generation:
            previous = keys
            keys = NamespaceKeys.build(self.ns_id, self.path, keys.root_key, keyring)
            if keyring.active.number == previous.keyring.active.number:
                # Same active term (a re-wrap dropped the older ones): keep counting its encryptions.
                keys.barrier.encryptions = previous.barrier.encryptions
            self.keys = keys
        self._keyring_blob = blob
        return keys

    async def account_encryptions(self) -> None:
        """Reserve the next block of barrier encryptions when half of this node's block is used.

        Runs after a request committed, outside its transaction; rotates the keyring when the term has
        reached AES-GCM's safe bound (see :mod:`strongroom.core.encryption_budget`).
        """
        keys = self.keys
        if keys is None or self.budget.reserving or not self.budget.needs_block(keys):
            return
        self.budget.reserving = True
        try:
            rotated = await self.budget.reserve(keys)
        finally:
            self.budget.reserving = False
        if rotated is not None and self.keys is keys:
            self.install(rotated)

    def seal(self) -> None:
        """Forget the keys and any unseal progress on this node."""
        self.keys = None
        self._keyring_blob = None
        # Another node may rekey while this one is sealed, or a snapshot of another cluster may be restored:
        # read the seal configuration and the cluster identity afresh.
        self._config = None
        self._cluster = None
        for forget in self.on_seal:
            forget()
        self.unseal_progress.reset()

    async def reset_unseal(self) -> None:
        """Forget the unseal ceremony's shares (the node's, held by the coordinator, in a worker)."""
        if self.coordinator is not None:
            await self.coordinator.reset()
        else:
            self.unseal_progress.reset()

    async def seal_node(self) -> None:
        """``sys/seal``: seal this namespace on the whole node, i.e. in every worker process.

        Returns once no worker holds the keys (the coordinator kills a worker that does not confirm).
        """
        if self.coordinator is not None:
            await self.coordinator.seal()
        self.seal()

    async def seal_unless_node_unsealed(self) -> bool:
        """``sys/seal`` on this vault while it holds no keys: return whether the node is sealed now.

        In one process this vault is the node's seal state: ``True``, nothing to do. A worker's vault may hold
        no keys while its node does (it saw another worker's rekey a moment before the new key reached it):
        then it takes them from the coordinator and returns ``False``, and the caller authorizes and calls
        :meth:`seal_node`; if the node holds no usable key either, every worker is sealed (``True``).

        Raises:
            Sealed: the node's seal state kept changing while the coordinator looked (retry).
            LinkError: the supervisor is gone.
        """
        if self.coordinator is None:
            return True
        return await self.coordinator.seal_unless_unsealed()

    async def status(self) -> dict[str, Any]:
        """Return the fields of Vault's seal-status body that depend on this namespace."""
        config = await self.seal_config()
        info = await self.cluster_info() if not self.sealed else {"cluster_name": "", "cluster_id": ""}
        progress, nonce = self.unseal_progress.progress, self.unseal_progress.nonce
        if self.coordinator is not None and self.sealed:
            # The ceremony is the node's, held by the supervisor: any worker reports the same progress.
            progress, nonce = await self.coordinator.progress()
        return {
            "type": config.type if config else "shamir",
            "initialized": config is not None,
            "sealed": self.sealed,
            "t": config.secret_threshold if config else 0,
            "n": config.secret_shares if config else 0,
            "progress": progress,
            "nonce": nonce,
            **info,
        }

    async def write_keyring(self, tx: Transaction, keys: NamespaceKeys) -> None:
        """Store ``keys.keyring`` sealed by ``keys.root_key`` in ``tx``."""
        tx.set(self.keyring_key, keys.keyring.seal(keys.root_key, self.keyring_key))

    def install(self, keys: NamespaceKeys) -> None:
        """Adopt new key state after a committed rotate or rekey (or, in a worker, from the supervisor)."""
        previous = self.keys
        self.keys = keys
        self._keyring_blob = None
        if self.coordinator is not None and previous is not None and previous.root_key != keys.root_key:
            # A rekey committed in this worker: the other workers (and restarts) need the new root key.
            self.coordinator.root_key_changed(keys.root_key)

    async def update_config(self, tx: Transaction, config: SealConfig) -> None:
        """Replace the stored seal configuration (shares/threshold) in ``tx``, keeping cluster info."""
        raw = await tx.get(self.space.key("seal"))
        doc = orjson.loads(raw) if raw else {}
        doc.update(config.to_json())
        tx.set(self.space.key("seal"), orjson.dumps(doc))

    def forget_config(self) -> None:
        """Drop the cached seal configuration (after a rekey committed)."""
        self._config = None
