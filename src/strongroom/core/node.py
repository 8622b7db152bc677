"""A node: one server's view of the store plus the seal state of the namespaces it serves.

Nodes are stateless apart from key material in memory: everything durable is in the store. Without
tenants (a later issue) a node serves the root namespace only.
"""

from __future__ import annotations

from dataclasses import dataclass

from strongroom import __version__
from strongroom.clock import Clock, SystemClock
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
        self.version = f"{VAULT_API_VERSION}+strongroom.{__version__}"
        self.started = self.clock.now()

    def __repr__(self) -> str:
        return f"Node(store={self.store.kind!r}, sealed={self.root.sealed})"

    def vault(self, namespace: str) -> Vault:
        """Return the vault serving ``namespace`` (``""`` is the root).

        Raises:
            UnsupportedPath: the namespace does not exist (namespaces arrive with tenants).
        """
        if namespace.strip("/") == "":
            return self.root
        raise UnsupportedPath(f"namespace {namespace!r} not found")

    async def close(self) -> None:
        """Seal and release the store."""
        self.root.seal()
        await self.store.close()
