"""Per-request namespace resolution and the node's caches of namespace key state.

:meth:`NamespaceTree.resolve` turns ``X-Vault-Namespace`` plus the request path into a chain of
:class:`Level` objects (root first) and the path left inside the last one, inside the request's own
transaction (``docs/spec/namespaces.md`` section 6). A level carries the namespace's keys (``None`` for a
sealed tenant) and the vault that answers for it:

* the root namespace: the node's platform :class:`~strongroom.core.vault.Vault`;
* a tenant: its :class:`~strongroom.core.tenant_seal.TenantVault` (one per tenant on this node, LRU);
* a plain namespace: a :class:`PlainVault` whose keys are derived from the parent's (the parent's keyring
  and barrier objects, its own subspace and decode caches).

Nothing here outlives storage: every request re-reads the table entries and key copies it goes through, and
the caches only save decoding and decryption when the stored bytes are unchanged.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from dataclasses import dataclass, field

from strongroom.core.encryption_budget import EncryptionBudget
from strongroom.core.mounts import MountTable, load_table
from strongroom.core.namespace import NamespaceKeys
from strongroom.core.namespaces import NamespaceEntry, NamespaceTable, check_segment, split_path
from strongroom.core.tenant_seal import TenantVault
from strongroom.core.vault import Vault
from strongroom.errors import InvalidRequest, Sealed
from strongroom.storage.base import Transaction
from strongroom.storage.subspace import namespace

NOT_SEALABLE = "namespace is not sealable"
CACHE_SIZE = 4096
"""Tenants (and plain namespaces) whose key state one node keeps; the least recently used go first."""


class _RefusingBudget(EncryptionBudget):
    """A plain namespace has no keyring of its own: ``sys/key-status`` there is OpenBao's 400."""

    def encryptions(self, keys: NamespaceKeys) -> int:
        raise InvalidRequest(NOT_SEALABLE)


class PlainVault(Vault):
    """A plain namespace as :meth:`Node.vault` returns it: its keys are its owner's, re-scoped.

    It never holds a seal of its own: rotation (``sys/rotate``) and key status are refused with OpenBao's
    ``namespace is not sealable``; encryption accounting goes to the owner.
    """

    def __init__(self, tree: NamespaceTree, owner: Vault, entry: NamespaceEntry) -> None:
        super().__init__(owner.store, owner.clock, ns_id=entry.ns_id, path=entry.path)
        self.tree = tree
        self.owner = owner
        self.entry = entry
        self.budget = _RefusingBudget(owner.store, owner.clock)

    def __repr__(self) -> str:
        return f"PlainVault(path={self.path!r})"

    async def current_keys(self, tx: Transaction) -> NamespaceKeys:
        """The owner's current keys re-scoped to this namespace.

        Raises:
            Sealed: the owner is sealed.
        """
        keys = self.tree.derived(await self.owner.current_keys(tx), self.entry, self.owner)
        self.keys = keys
        return keys

    async def write_keyring(self, tx: Transaction, keys: NamespaceKeys) -> None:
        raise InvalidRequest(NOT_SEALABLE)

    async def account_encryptions(self) -> None:
        await self.owner.account_encryptions()


@dataclass(frozen=True)
class Level:
    """One namespace of a resolved chain."""

    path: str
    entry: NamespaceEntry | None
    keys: NamespaceKeys | None
    vault: Vault
    """The vault answering for this namespace (``Node.vault(path)`` returns it)."""
    owner: Vault
    """The vault that owns the keys: the platform's or the enclosing tenant's."""

    @property
    def sealable(self) -> bool:
        """Whether this is the platform or a tenant: an authority boundary for tokens."""
        return self.entry is None or self.entry.sealable

    @property
    def tenant(self) -> bool:
        """Whether this is a tenant namespace."""
        return self.entry is not None and self.entry.sealable


@dataclass
class Resolution:
    """The namespaces a request went through and the path left inside the last one."""

    levels: list[Level]
    rest: str
    unknown: bool = False
    """The header named no namespace this request can see (absent, or below a sealed tenant)."""
    locked_by: str = ""
    """Path of the first API-locked namespace of the chain, ``""`` if none."""
    tables: dict[int, MountTable] = field(default_factory=dict)
    """Mount tables already read during resolution, by level index."""

    @property
    def target(self) -> Level:
        """The namespace that serves the request."""
        return self.levels[-1]

    def boundary_chain(self) -> list[Level]:
        """The target and its ancestors up to and including the nearest tenant or the platform."""
        chain: list[Level] = []
        for level in reversed(self.levels):
            chain.append(level)
            if level.sealable:
                break
        return chain


class NamespaceTree:
    """The node's view of the namespace tree: resolution plus bounded caches of key state."""

    def __init__(self, root: Vault, *, unseal_expiry: float | None = None) -> None:
        self.root = root
        self.unseal_expiry = unseal_expiry
        self._tenants: OrderedDict[bytes, TenantVault] = OrderedDict()
        self._plain: OrderedDict[bytes, tuple[NamespaceKeys, NamespaceKeys, PlainVault]] = OrderedDict()
        self._by_path: OrderedDict[str, Vault] = OrderedDict()
        self._root_level: Level | None = None

    def __repr__(self) -> str:
        return f"NamespaceTree(tenants={len(self._tenants)}, plain={len(self._plain)})"

    # -- caches ------------------------------------------------------------------------------------------

    def root_level(self, keys: NamespaceKeys | None) -> Level:
        """The level of the root namespace with ``keys`` (one object per keys object: every request asks)."""
        level = self._root_level
        if level is None or level.keys is not keys:
            level = self._root_level = Level("", None, keys, self.root, self.root)
        return level

    def tenant(self, entry: NamespaceEntry) -> TenantVault:
        """This node's vault of tenant ``entry`` (created on first use)."""
        vault = self._tenants.get(entry.ns_id)
        if vault is None:
            vault = TenantVault(self.root, entry.ns_id, entry.path, unseal_expiry=self.unseal_expiry)
            self._tenants[entry.ns_id] = vault
            if len(self._tenants) > CACHE_SIZE:
                _, evicted = self._tenants.popitem(last=False)
                evicted.seal()  # forget its keys: the next request rebuilds them from storage
        else:
            self._tenants.move_to_end(entry.ns_id)
        return vault

    def derived(self, parent: NamespaceKeys, entry: NamespaceEntry, owner: Vault) -> NamespaceKeys:
        """Keys of plain namespace ``entry`` re-scoped from ``parent``'s (any namespace sharing the keyring).

        Every namespace of a plain chain shares its owner's keyring and barrier objects, so the cached keys
        stay valid exactly as long as that barrier: a rotation builds a new one and the keys are re-derived.
        """
        hit = self._plain.get(entry.ns_id)
        if hit is not None and hit[1].barrier is parent.barrier:
            self._plain.move_to_end(entry.ns_id)
            return hit[1]
        keys = dataclasses.replace(
            parent, ns_id=entry.ns_id, path=entry.path, space=namespace(entry.ns_id),
            cache={}, areas={}, engine_cache={},
        )  # fmt: skip
        vault = hit[2] if hit is not None else PlainVault(self, owner, entry)
        vault.keys = keys
        self._plain[entry.ns_id] = (parent, keys, vault)
        if len(self._plain) > CACHE_SIZE:
            self._plain.popitem(last=False)
        return keys

    def plain_vault(self, entry: NamespaceEntry) -> PlainVault:
        """The façade of plain namespace ``entry`` (after :meth:`derived` built its keys)."""
        return self._plain[entry.ns_id][2]

    def vault(self, path: str) -> Vault | None:
        """The vault of the namespace at canonical ``path`` as this node last resolved it."""
        return self._by_path.get(path)

    def forget(self, ns_id: bytes) -> None:
        """Drop this node's state of a deleted namespace."""
        tenant = self._tenants.pop(ns_id, None)
        if tenant is not None:
            tenant.seal()
        self._plain.pop(ns_id, None)
        for path in [p for p, v in self._by_path.items() if v.ns_id == ns_id]:
            del self._by_path[path]

    def forget_all(self) -> None:
        """Drop every namespace's key state held by this node (when it shuts down)."""
        self._root_level = None
        for tenant in self._tenants.values():
            tenant.seal()
        self._tenants.clear()
        self._plain.clear()
        self._by_path.clear()

    def _remember(self, level: Level) -> None:
        self._by_path[level.path] = level.vault
        self._by_path.move_to_end(level.path)
        if len(self._by_path) > CACHE_SIZE:
            self._by_path.popitem(last=False)

    # -- resolution --------------------------------------------------------------------------------------

    async def enter(
        self, tx: Transaction, parent: Level, entry: NamespaceEntry, platform: NamespaceKeys
    ) -> Level:
        """The level of child ``entry`` of ``parent`` (whose keys are known), reading its key state;
        ``platform`` is the platform's current keys, read in ``tx``."""
        if entry.sealable:
            tenant = self.tenant(entry)
            try:
                keys: NamespaceKeys | None = await tenant.keys_in(tx, platform)
            except Sealed:
                keys = None
            level = Level(entry.path, entry, keys, tenant, tenant)
        else:
            assert parent.keys is not None  # a child entry was read with them
            keys = self.derived(parent.keys, entry, parent.owner)
            level = Level(entry.path, entry, keys, self.plain_vault(entry), parent.owner)
        self._remember(level)
        return level

    async def resolve(self, tx: Transaction, header: str, path: str, *, follow: bool = True) -> Resolution:
        """Resolve canonical ``header`` (``""``: root) and ``path`` inside ``tx``.

        With ``follow=False`` the path is not followed into child namespaces.

        Raises:
            Sealed: the platform is sealed on this node.
            CorruptRecord: a table entry or key copy is damaged.
        """
        platform = await self.root.current_keys(tx)
        levels = [self.root_level(platform)]
        res = Resolution(levels, path)
        try:
            segments = split_path(header)
        except InvalidRequest:
            res.unknown = True
            return res
        for segment in segments:
            current = levels[-1]
            if current.keys is None:
                res.unknown = True  # below a sealed tenant nothing can be read: like an unknown name
                return res
            entry = await NamespaceTable(tx, current.keys).get(segment)
            if entry is None:
                res.unknown = True
                return res
            levels.append(await self.enter(tx, current, entry, platform))
            self._note_lock(res, entry)
        return await self.descend(tx, res) if follow else res

    async def descend(self, tx: Transaction, res: Resolution) -> Resolution:
        """Follow ``res.rest`` into child namespaces: a mount of the current namespace wins over a child."""
        while True:
            current = res.target
            if current.keys is None:
                return res
            index = len(res.levels) - 1
            table = res.tables.get(index)
            if table is None:
                table = res.tables[index] = await load_table(tx, current.keys)
            if table.match(res.rest) is not None:
                return res
            segment, slash, rest = res.rest.partition("/")
            if not slash:
                return res
            try:
                check_segment(segment)
            except InvalidRequest:
                return res
            entry = await NamespaceTable(tx, current.keys).get(segment)
            if entry is None:
                return res
            platform = res.levels[0].keys
            assert platform is not None  # the root level is read first, sealed platform raises
            res.levels.append(await self.enter(tx, current, entry, platform))
            res.rest = rest
            self._note_lock(res, entry)

    @staticmethod
    def _note_lock(res: Resolution, entry: NamespaceEntry) -> None:
        if entry.locked and not res.locked_by:
            res.locked_by = entry.path

    async def level(self, tx: Transaction, path: str) -> Level:
        """The level of the namespace at canonical ``path`` (for handlers that act on it).

        Raises:
            Sealed: a tenant on the way is sealed, or the namespace does not exist (as resolution).
        """
        res = await self.resolve(tx, path, "", follow=False)
        if res.unknown:
            raise Sealed()
        return res.target
