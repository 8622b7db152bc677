"""The request pipeline below HTTP: seal check, authentication, mount routing, ACL, one transaction.

Order of checks for an authenticated path, as in Vault: the node must be unsealed (``Vault is sealed``,
503); the token must be valid (403 ``permission denied``); the mount is found by longest prefix and the
route by specificity; a write with an existence check becomes ``create`` or ``update``; the ACL must
allow the operation (with ``sudo`` on root-protected paths). Everything, including a limited-use token's
use count, happens in one storage transaction that :func:`~strongroom.storage.base.transactional`
retries on conflict.

Unauthenticated system paths (``sys/init``, ``sys/unseal``, ``sys/seal-status``, ``sys/health`` ...) run
first, before the seal check, with an :class:`OpenContext`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from strongroom.auth.acl import ACL
from strongroom.auth.policy_store import PolicyStore
from strongroom.auth.tokens import TokenEntry, TokenStore
from strongroom.core.mounts import MountEntry, load_table
from strongroom.core.namespace import NamespaceKeys
from strongroom.core.node import Node
from strongroom.core.vault import Vault
from strongroom.engines.context import Context
from strongroom.engines.framework import Backend, Operation, Request, Response
from strongroom.engines.open import OpenContext
from strongroom.engines.registry import backend_for, open_backend
from strongroom.errors import (
    InvalidRequest,
    NotFound,
    PermissionDenied,
    Sealed,
    StrongroomError,
    UnsupportedPath,
)
from strongroom.storage.base import Transaction, transactional


@dataclass(frozen=True)
class Incoming:
    """A request as the API hands it over: HTTP already decoded, nothing interpreted yet."""

    operation: Operation
    path: str
    data: dict[str, Any]
    namespace: str = ""
    token: str = ""
    request_id: str = ""


class Router:
    """Dispatches :class:`Incoming` requests for one node."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self._open: Backend[OpenContext] = open_backend()

    async def handle(self, incoming: Incoming) -> Response | None:
        """Run one request to completion and return the handler's response.

        Raises:
            StrongroomError: any subclass; the API layer maps it to a status code.
        """
        vault = self.node.vault(incoming.namespace)
        if incoming.operation is Operation.LIST and not incoming.path.endswith("/"):
            # Vault lists directories: the ACL and the engine see the path with its trailing slash.
            incoming = dataclasses.replace(incoming, path=incoming.path + "/")
        if incoming.path.endswith("/") and incoming.operation in (Operation.UPDATE, Operation.PATCH):
            raise InvalidRequest("cannot write to a path ending in '/'")
        if incoming.path.startswith("sys/"):
            try:
                match = self._open.match(incoming.path[4:])
            except UnsupportedPath:
                pass
            else:
                request = Request(incoming.operation, incoming.path[4:], incoming.data, "sys/",
                                  incoming.namespace, incoming.token)
                handler = self._open.handler_for(match, incoming.operation)
                ctx = OpenContext(self.node, vault, incoming.request_id, incoming.token, self)
                return await handler(ctx, request, match.parse(incoming.data))
        keys = vault.keys
        if keys is None:
            raise Sealed()

        charge: list[TokenEntry] = []

        async def run(tx: Transaction) -> tuple[Response | None, list[Callable[[], None]]]:
            charge.clear()
            return await self._authorized(tx, vault, incoming, charge)

        try:
            response, after_commit = await transactional(self.node.store, run)
        except StrongroomError:
            if charge:
                # As in Vault, a limited-use token pays for every request its policy allowed, also when
                # the request then failed: the failed transaction's count was rolled back, so count again.
                await self._charge_use(vault, charge[0])
            raise
        for action in after_commit:
            action()
        await vault.account_encryptions()
        return response

    async def authenticate(
        self, tx: Transaction, vault: Vault, token: str, keys: NamespaceKeys | None = None
    ) -> TokenEntry:
        """Return the live token entry for ``token`` (``keys``: already checked keys of ``vault``).

        Raises:
            Sealed: the namespace is sealed.
            PermissionDenied: no token, or not a live token.
        """
        if keys is None:
            keys = await vault.current_keys(tx)
        if not token:
            raise PermissionDenied()
        entry = await TokenStore(tx, keys, self.node.clock).lookup(token)
        if entry is None:
            raise PermissionDenied()
        return entry

    async def _charge_use(self, vault: Vault, entry: TokenEntry) -> None:
        """Count one use of ``entry`` in a transaction of its own."""

        async def run(tx: Transaction) -> None:
            keys = await vault.current_keys(tx)
            await TokenStore(tx, keys, self.node.clock).use(entry)

        await transactional(self.node.store, run)

    async def _authorized(
        self, tx: Transaction, vault: Vault, incoming: Incoming, charge: list[TokenEntry]
    ) -> tuple[Response | None, list[Callable[[], None]]]:
        keys = await vault.current_keys(tx)
        if not incoming.token:
            return await self._anonymous(tx, keys, incoming)
        entry = await self.authenticate(tx, vault, incoming.token, keys)
        acl = await PolicyStore(tx, keys).acl(entry.policies, self.node.clock.now())
        table = await load_table(tx, keys)
        mount = table.match(incoming.path)
        if mount is None:
            acl.check(_acl_operation(incoming.operation), incoming.path, incoming.data)
            raise UnsupportedPath(f"no handler for route \"{incoming.path}\". route entry not found.")
        ctx = Context(self.node, keys, tx, mount, entry, incoming.token, acl, incoming.request_id)
        try:
            response = await self.dispatch(ctx, mount, incoming, _relative(mount, incoming.path), acl)
        except StrongroomError:
            if ctx.authorized and entry.num_uses > 0:
                charge.append(entry)
            raise
        await TokenStore(tx, keys, self.node.clock).use(entry)
        return response, ctx.after_commit

    async def _anonymous(
        self, tx: Transaction, keys: NamespaceKeys, incoming: Incoming
    ) -> tuple[Response | None, list[Callable[[], None]]]:
        """A request without a token: only routes declared ``unauthenticated`` run, with a deny-all ACL.

        Every other outcome, including an unknown path, is the same 403, so an anonymous caller learns
        nothing about which mounts or routes exist.
        """
        mount = (await load_table(tx, keys)).match(incoming.path)
        if mount is None:
            raise PermissionDenied()
        relative = _relative(mount, incoming.path)
        try:
            match = backend_for(mount).match(relative, listing=incoming.operation is Operation.LIST)
        except UnsupportedPath:
            raise PermissionDenied() from None
        if not match.route.unauthenticated:
            raise PermissionDenied()
        acl = ACL([])
        ctx = Context(self.node, keys, tx, mount, None, "", acl, incoming.request_id)
        return await self.dispatch(ctx, mount, incoming, relative, acl), ctx.after_commit

    async def dispatch(
        self, ctx: Context, mount: MountEntry, incoming: Incoming, relative: str, acl: ACL
    ) -> Response | None:
        """Route inside ``mount``, check the ACL and run the handler."""
        backend = backend_for(mount)
        match = backend.match(relative, listing=incoming.operation is Operation.LIST)
        if not match.route.self_authorizing and not (match.route.unauthenticated and ctx.caller is None):
            # Refuse callers with no possible grant before parsing, so a 400 never tells an
            # unauthorised caller anything about a path.
            acl.check_any(_acl_candidates(incoming.operation), incoming.path)
        fields = match.parse(incoming.data)
        request = Request(incoming.operation, relative, incoming.data,
                          mount.path, incoming.namespace, incoming.token)
        operation = incoming.operation
        existence = match.route.existence
        if operation is Operation.UPDATE and existence is not None:
            exists = await existence(ctx, request, fields)
            operation = Operation.UPDATE if exists else Operation.CREATE
            request = request.with_operation(operation)
        handler = backend.handler_for(match, operation)
        if not match.route.self_authorizing and not (match.route.unauthenticated and ctx.caller is None):
            acl.check(_acl_operation(operation), incoming.path, incoming.data, requires_sudo=match.route.sudo)
        ctx.authorized = True
        response = await handler(ctx, request, fields)
        if response is None and operation in (Operation.READ, Operation.LIST):
            raise NotFound()
        if (
            operation is Operation.LIST
            and response is not None
            and response.data is not None
            and not response.data.get("keys")
        ):
            raise NotFound()
        return response


def _relative(mount: MountEntry, path: str) -> str:
    """``path`` relative to ``mount`` (``""`` for the mount point itself)."""
    prefix = mount.path if mount.kind == "secret" else "auth/" + mount.path
    return path[len(prefix):] if len(path) >= len(prefix) else ""


def _acl_operation(operation: Operation) -> str:
    return str(operation.value)


def _acl_candidates(operation: Operation) -> tuple[str, ...]:
    """The capabilities that could allow ``operation`` once create-vs-update is decided."""
    if operation is Operation.UPDATE:
        return ("create", "update")
    return (str(operation.value),)


def authenticated_caller(entry: TokenEntry | None) -> TokenEntry:
    """Return ``entry`` or raise :class:`PermissionDenied` (for handlers that need a caller)."""
    if entry is None:
        raise PermissionDenied()
    return entry
