"""A node: one server's view of the store plus the seal state of the namespaces it serves.

Nodes are stateless apart from key material in memory: everything durable is in the store. The root
namespace (the platform) is ``root``; every other namespace is resolved per request by ``namespaces``
(:class:`~strongroom.core.namespace_tree.NamespaceTree`), whose tenants keep their seal in storage.
"""

from __future__ import annotations

from dataclasses import dataclass

from strongroom import __version__
from strongroom.clock import Clock, SystemClock
from strongroom.core.namespace_tree import NamespaceTree
from strongroom.core.namespaces import header_path
from strongroom.core.vault import Vault
from strongroom.errors import UnsupportedPath
from strongroom.storage.base import Store

VAULT_API_VERSION = "1.17.0"
"""The Vault release whose HTTP API strongroom follows; reported as ``version`` (with our own)."""


@dataclass(frozen=True)
class NodeSettings:
    """Operator settings that change behaviour (from flags or the config file)."""

    max_request_bytes: int = 32 * 1024 * 1024
    unseal_expiry_seconds: float | None = None
    unauthenticated_rekey: bool = False
    dev: bool = False


class Node:
    """One strongroom server's state: the store, the clock, and per-namespace seal state."""

    def __init__(self, store: Store, *, clock: Clock | None = None, settings: NodeSettings | None = None) -> None:
        self.store = store
        self.clock: Clock = clock or SystemClock()
        self.settings = settings or NodeSettings()
        self.root = Vault(store, self.clock, unseal_expiry=self.settings.unseal_expiry_seconds)
        self.namespaces = NamespaceTree(self.root, unseal_expiry=self.settings.unseal_expiry_seconds)
        self.version = f"{VAULT_API_VERSION}+strongroom.{__version__}"
        self.started = self.clock.now()

    def __repr__(self) -> str:
        return f"Node(store={self.store.kind!r}, sealed={self.root.sealed})"

    def vault(self, namespace: str) -> Vault:
        """Return the vault serving ``namespace`` (``""`` and ``root`` are the root namespace).

        Any other namespace must have been resolved on this node (every request in it is): handlers get
        the vault of the namespace their request was resolved to. Tenants get a
        :class:`~strongroom.core.tenant_seal.TenantVault`, plain namespaces a
        :class:`~strongroom.core.namespace_tree.PlainVault`.

        Raises:
            UnsupportedPath: this node has not resolved that namespace.
        """
        path = header_path(namespace)
        if not path:
            return self.root
        vault = self.namespaces.vault(path)
        if vault is None:
            raise UnsupportedPath(f"namespace {namespace!r} not found")
        return vault

    async def close(self) -> None:
        """Seal (forgetting every tenant's keys too) and release the store."""
        self.namespaces.forget_all()
        self.root.seal()
        await self.store.close()
