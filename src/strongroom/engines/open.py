"""The context of unauthenticated system endpoints (init, unseal, seal-status, health, generate-root).

These run while the vault is sealed, so they get no transaction or keys, only the node and the vault of
the addressed namespace. Endpoints that Vault leaves unauthenticated but strongroom protects by default
(``sys/rekey/*``) call :meth:`OpenContext.require_sudo`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from strongroom.auth.policy_store import PolicyStore
from strongroom.auth.tokens import TokenStore
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

    async def authorize(
        self, path: str, operation: str, params: Mapping[str, Any] | None, *, sudo: bool
    ) -> None:
        """Require a valid token whose policies allow ``operation`` on ``path`` with ``params``.

        Parameter constraints of the policy apply as on any other path, and a use of a limited-use
        token is counted in the same transaction, as for every other authenticated request.

        Raises:
            Sealed: the vault is sealed (the token store cannot be read).
            PermissionDenied: no valid token or not allowed.
        """
        if self.vault.keys is None:
            raise Sealed()

        async def check(tx: Transaction) -> None:
            keys = await self.vault.current_keys(tx)
            entry = await self.router.authenticate(tx, self.vault, self.token, keys)
            acl = await PolicyStore(tx, keys).acl(entry.policies, self.node.clock.now())
            acl.check(operation, path, params, requires_sudo=sudo)
            await TokenStore(tx, keys, self.node.clock).use(entry)

        await transactional(self.node.store, check)

    async def require_sudo(
        self, path: str, operation: str = "update", params: Mapping[str, Any] | None = None
    ) -> None:
        """:meth:`authorize` with ``sudo`` required (Vault's root-protected paths)."""
        await self.authorize(path, operation, params, sudo=True)
