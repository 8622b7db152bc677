"""The context of unauthenticated system endpoints (init, unseal, seal-status, health, generate-root).

These run while the vault is sealed, so they get no transaction or keys, only the node and the vault of
the addressed namespace. Endpoints that Vault leaves unauthenticated but strongroom protects by default
(``sys/rekey/*``) call :meth:`OpenContext.require_sudo`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from strongroom.auth.policy_store import PolicyStore
from strongroom.core.node import Node
from strongroom.core.vault import Vault
from strongroom.errors import Sealed
from strongroom.storage.base import Transaction, transactional

if TYPE_CHECKING:
    from strongroom.engines.router import Router


@dataclass
class OpenContext:
    """Node, namespace vault and the (possibly empty) token of an unauthenticated system call."""

    node: Node
    vault: Vault
    request_id: str
    token: str
    router: Router

    async def require_sudo(self, path: str, operation: str = "update") -> None:
        """Require a valid token whose policies grant ``operation`` and ``sudo`` on ``path``.

        Raises:
            Sealed: the vault is sealed (the token store cannot be read).
            PermissionDenied: no valid token or not allowed.
        """
        keys = self.vault.keys
        if keys is None:
            raise Sealed()

        async def check(tx: Transaction) -> None:
            entry = await self.router.authenticate(tx, self.vault, self.token)
            acl = await PolicyStore(tx, keys).acl(entry.policies, self.node.clock.now())
            acl.check(operation, path, None, requires_sudo=True)

        await transactional(self.node.store, check)
