"""What a handler receives besides its typed fields: the transaction, keys, mount and caller.

Handlers never reach storage except through the :class:`Context`: ``records`` is scoped to the mount's
own subspace, and the namespace services (tokens, policies, mount table) are opened on the same
transaction, so one API call is one transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from strongroom.auth.acl import ACL
from strongroom.auth.policy_store import PolicyStore
from strongroom.auth.tokens import TokenEntry, TokenStore
from strongroom.barrier.paths import PathIndex
from strongroom.barrier.records import Records
from strongroom.clock import Clock
from strongroom.core.mounts import MountEntry
from strongroom.core.namespace import NamespaceKeys
from strongroom.core.node import Node
from strongroom.storage.base import Transaction


@dataclass
class Context:
    """Everything a handler may use for one request, bound to one storage transaction."""

    node: Node
    keys: NamespaceKeys
    tx: Transaction
    mount: MountEntry
    caller: TokenEntry | None
    caller_token: str
    acl: ACL
    request_id: str
    authorized: bool = False
    """Set once the ACL allowed the request (a limited-use token then pays for it even if it fails)."""
    after_commit: list[Callable[[], None]] = field(default_factory=list)
    """Actions to run once the transaction committed (e.g. adopting a rotated keyring in memory)."""
    memo: dict[Any, Any] = field(default_factory=dict)
    """Values an engine read in this transaction and will read again (existence check, then handler)."""

    @property
    def clock(self) -> Clock:
        """The node's clock (injectable in tests)."""
        return self.node.clock

    @property
    def records(self) -> Records:
        """Barrier records of this mount's storage view."""
        return self.keys.records(self.tx, "m", self.mount.uuid)

    def paths(self, *area: str) -> PathIndex:
        """A blind-indexed path index inside this mount's view (``area`` keeps families apart)."""
        return PathIndex(self.records.sub(*area), self.keys.indexer)

    def tokens(self) -> TokenStore:
        """The namespace token store on this transaction."""
        return TokenStore(self.tx, self.keys, self.node.clock)

    def policies(self) -> PolicyStore:
        """The namespace policy store on this transaction."""
        return PolicyStore(self.tx, self.keys)
