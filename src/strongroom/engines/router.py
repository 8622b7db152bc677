"""The request pipeline below HTTP: seal check, authentication, mount routing, ACL, one transaction.

Order of checks for an authenticated path, as in Vault: the node must be unsealed (``Vault is sealed``,
503); the token must be valid (403 ``permission denied``); the mount is found by longest prefix and the
route by specificity; a write with an existence check becomes ``create`` or ``update``; the ACL must
allow the operation (with ``sudo`` on root-protected paths). Everything, including a limited-use token's
use count, happens in one storage transaction that :func:`~strongroom.storage.base.transactional`
retries on conflict.

Unauthenticated system paths (``sys/init``, ``sys/unseal``, ``sys/seal-status``, ``sys/health`` ...) run
first, before the seal check, with an :class:`OpenContext`.

Namespaces (``docs/spec/namespaces.md``): ``X-Vault-Namespace`` and the path prefix are resolved inside the
request's transaction (:class:`~strongroom.core.namespace_tree.NamespaceTree`). In the root namespace a
request to an existing mount reads nothing more than before. A request into a tenant reads the tenant's key
copy in the same transaction, so a tenant sealed by any node is never served; an unknown namespace answers
like a sealed tenant. The token is looked up up to the nearest tenant or the platform, never across it.

Biscuit tokens (``sb.`` prefix, recognised before any store lookup; ``docs/spec/tokens.md``) select their
tenant when the request names no namespace, are authenticated inside the transaction by
:func:`~strongroom.engines.sys.iam_auth.authenticate` and authorized by a
:class:`~strongroom.engines.sys.iam_auth.BiscuitACL` instead of policies; a tenant's open ceremony routes
decide about them in :func:`~strongroom.engines.sys.namespaces_seal.tenant_ceremony_allowed`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from strongroom.auth.acl import ACL
from strongroom.auth.iam import is_biscuit_token
from strongroom.auth.tokens import TokenEntry, TokenStore
from strongroom.core.mounts import MountEntry, load_table
from strongroom.core.namespace import NamespaceKeys
from strongroom.core.namespace_tree import Level, Resolution
from strongroom.core.namespaces import header_path
from strongroom.core.node import Node
from strongroom.core.tenant_seal import void_vault
from strongroom.core.vault import Vault
from strongroom.engines.context import Context
from strongroom.engines.framework import Backend, Match, Operation, Request, Response
from strongroom.engines.namespace_auth import SELF_PATHS, acl_for, as_foreign_caller, find_token
from strongroom.engines.open import OpenContext
from strongroom.engines.registry import backend_for, open_backend, tenant_open_backend
from strongroom.engines.sys import iam_auth
from strongroom.errors import (
    InvalidRequest,
    NamespaceLocked,
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


NODE_PATHS = frozenset({"health", "leader", "step-down"})
"""System paths of the node itself: answered for the platform whatever the namespace, as in Vault."""
UNLOCK_PATH = "sys/namespaces/api-lock/unlock"
"""The one path a locked namespace still serves (OpenBao)."""
_Served = tuple[Response | None, list[Callable[[], None]], Vault]


class Router:
    """Dispatches :class:`Incoming` requests for one node."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self._open: Backend[OpenContext] = open_backend()
        self._tenant_open: Backend[OpenContext] = tenant_open_backend()

    async def handle(self, incoming: Incoming) -> Response | None:
        """Run one request to completion and return the handler's response.

        Raises:
            StrongroomError: any subclass; the API layer maps it to a status code.
        """
        if is_biscuit_token(incoming.token) and not _node_path(incoming.path):
            if self.node.root.keys is None:
                raise Sealed()
            tenant = await iam_auth.token_tenant(self.node, incoming.token)
            namespace, path = iam_auth.select_tenant(incoming.namespace, incoming.path, tenant)
            incoming = dataclasses.replace(incoming, namespace=namespace, path=path)
        header = ""
        if incoming.namespace:
            header = header_path(incoming.namespace)
            if not header:  # "root", "/": the root namespace, named "" from here on
                incoming = dataclasses.replace(incoming, namespace="")
        if incoming.operation is Operation.LIST and not incoming.path.endswith("/"):
            # Vault lists directories: the ACL and the engine see the path with its trailing slash.
            incoming = dataclasses.replace(incoming, path=incoming.path + "/")
        if incoming.path.endswith("/") and incoming.operation in (Operation.UPDATE, Operation.PATCH):
            raise InvalidRequest("cannot write to a path ending in '/'")
        if incoming.path.startswith("sys/") and (not header or incoming.path[4:] in NODE_PATHS):
            match = _open_match(self._open, incoming.path)
            if match is not None:
                return await self._run_open(self._open, match, self.node.root, incoming.path, incoming, "")
        if self.node.root.keys is None:
            raise Sealed()

        charge: list[tuple[TokenEntry, Level]] = []

        async def run(tx: Transaction) -> _Served | Resolution:
            charge.clear()
            return await self._serve(tx, header, incoming, charge)

        try:
            outcome = await transactional(self.node.store, run)
        except StrongroomError:
            if charge:
                # As in Vault, a limited-use token pays for every request its policy allowed, also when
                # the request then failed: the failed transaction's count was rolled back, so count again.
                await self._charge_use(*charge[0])
            raise
        if isinstance(outcome, Resolution):
            return await self._open_in(outcome, incoming)
        response, after_commit, owner = outcome
        for action in after_commit:
            action()
        await owner.account_encryptions()
        return response

    async def _run_open(
        self,
        backend: Backend[OpenContext],
        match: Match[OpenContext, Any],
        vault: Vault,
        path: str,
        incoming: Incoming,
        namespace: str,
    ) -> Response | None:
        """Run the unauthenticated system route ``match`` of ``path`` (which starts with ``sys/``)."""
        request = Request(incoming.operation, path[4:], incoming.data, "sys/", namespace, incoming.token)
        handler = backend.handler_for(match, incoming.operation)
        ctx = OpenContext(self.node, vault, incoming.request_id, incoming.token, self)
        return await handler(ctx, request, match.parse(incoming.data))

    async def _open_in(self, res: Resolution, incoming: Incoming) -> Response | None:
        """An unauthenticated system route inside a namespace (resolved, outside the transaction)."""
        vault = void_vault(self.node.root) if res.unknown else res.target.owner
        backend = self._tenant_open if vault is not self.node.root else self._open
        match = _open_match(backend, res.rest)
        if match is None:
            raise Sealed()
        return await self._run_open(backend, match, vault, res.rest, incoming, res.target.path)

    def _is_open(self, res: Resolution) -> bool:
        backend = self._open if res.target.owner is self.node.root and not res.unknown else self._tenant_open
        return _open_match(backend, res.rest) is not None

    async def _serve(
        self, tx: Transaction, header: str, incoming: Incoming, charge: list[tuple[TokenEntry, Level]]
    ) -> _Served | Resolution:
        """Resolve the namespace and serve the request in ``tx``; a :class:`Resolution` means "run the
        unauthenticated system route it names, outside this transaction"."""
        tree = self.node.namespaces
        if header:
            res = await tree.resolve(tx, header, incoming.path)
        else:
            root_keys = await self.node.root.current_keys(tx)
            res = Resolution([tree.root_level(root_keys)], incoming.path)
            root_table = res.tables[0] = await load_table(tx, root_keys)
            if root_table.match(incoming.path) is None:
                # No mount of the root namespace: the path may lead into a child namespace (a mount always
                # wins, so requests to existing mounts never read the namespace table).
                res = await tree.descend(tx, res)
        target = res.target
        if len(res.levels) > 1 or res.unknown:
            if res.locked_by and res.rest != UNLOCK_PATH and not res.rest.startswith(UNLOCK_PATH + "/"):
                raise NamespaceLocked(res.locked_by)
            if self._is_open(res):
                return res
            if res.unknown and is_biscuit_token(incoming.token):
                raise PermissionDenied()  # a valid token of a tenant that no longer exists
            if res.unknown or target.keys is None:
                raise Sealed()
            incoming = Incoming(
                incoming.operation, res.rest, incoming.data, target.path, incoming.token, incoming.request_id
            )
        keys = target.keys
        assert keys is not None
        if not incoming.token:
            response, after_commit = await self._anonymous(tx, res, incoming)
            return response, after_commit, target.owner
        if is_biscuit_token(incoming.token):
            return await self._serve_biscuit(tx, res, incoming)
        entry, home = await find_token(tx, res, incoming.token, self.node.clock)
        table = res.tables.get(len(res.levels) - 1) or await load_table(tx, keys)
        mount = table.match(incoming.path)
        if (
            home is not target
            and mount is not None
            and mount.type == "token"
            and _relative(mount, incoming.path) in SELF_PATHS
        ):
            # lookup-self, renew-self, revoke-self act on the caller's own token, in the store holding it.
            target, keys = home, home.keys
            assert keys is not None
            table = await load_table(tx, keys)
            mount = table.match(incoming.path)
        acl = await acl_for(tx, entry, home, target, self.node.clock.now())
        if mount is None:
            acl.check(_acl_operation(incoming.operation), incoming.path, incoming.data)
            raise UnsupportedPath(f'no handler for route "{incoming.path}". route entry not found.')
        # A token of an ancestor namespace has no identity in this namespace's store: what it creates here
        # is an orphan (docs/spec/namespaces.md section 7).
        caller = entry if home is target else as_foreign_caller(entry)
        ctx = Context(self.node, keys, tx, mount, caller, incoming.token, acl, incoming.request_id)
        try:
            response = await self.dispatch(ctx, mount, incoming, _relative(mount, incoming.path), acl)
        except StrongroomError:
            if ctx.authorized and entry.num_uses > 0:
                charge.append((entry, home))
            raise
        assert home.keys is not None
        await TokenStore(tx, home.keys, self.node.clock).use(entry)
        return response, ctx.after_commit, target.owner

    async def _serve_biscuit(self, tx: Transaction, res: Resolution, incoming: Incoming) -> _Served:
        """Serve a request made with a biscuit in the tenant ``res.target`` (unsealed) in ``tx``."""
        target = res.target
        keys = target.keys
        assert keys is not None
        caller = await iam_auth.authenticate(tx, self.node, res, incoming.token)
        table = res.tables.get(len(res.levels) - 1) or await load_table(tx, keys)
        mount = table.match(incoming.path)
        acl = iam_auth.BiscuitACL(caller, table, self.node.clock.now())
        relative = _relative(mount, incoming.path) if mount is not None else ""
        public = iam_auth.is_public(mount, relative)
        iam_auth.precheck(acl, public, _acl_candidates(incoming.operation), incoming.path)
        if mount is None:
            raise UnsupportedPath(f'no handler for route "{incoming.path}". route entry not found.')
        ctx = Context(self.node, keys, tx, mount, caller.entry, incoming.token, acl, incoming.request_id)
        iam_auth.remember(ctx, caller)
        response = await self.dispatch(ctx, mount, incoming, relative, acl)
        return response, ctx.after_commit, target.owner

    async def authenticate(
        self, tx: Transaction, vault: Vault, token: str, keys: NamespaceKeys | None = None
    ) -> TokenEntry:
        """Return the live token entry for ``token`` in ``vault``'s own store (``keys``: already checked).

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

    async def _charge_use(self, entry: TokenEntry, home: Level) -> None:
        """Count one use of ``entry`` in a transaction of its own."""

        async def run(tx: Transaction) -> None:
            keys = await home.vault.current_keys(tx)
            await TokenStore(tx, keys, self.node.clock).use(entry)

        await transactional(self.node.store, run)

    async def _anonymous(
        self, tx: Transaction, res: Resolution, incoming: Incoming
    ) -> tuple[Response | None, list[Callable[[], None]]]:
        """A request without a token: only routes declared ``unauthenticated`` run, with a deny-all ACL.

        Every other outcome, including an unknown path, is the same 403, so an anonymous caller learns
        nothing about which mounts or routes exist.
        """
        keys = res.target.keys
        assert keys is not None
        table = res.tables.get(len(res.levels) - 1)
        if table is None:
            table = await load_table(tx, keys)
        mount = table.match(incoming.path)
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
        request = Request(
            incoming.operation, relative, incoming.data, mount.path, incoming.namespace, incoming.token
        )
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


def _node_path(path: str) -> bool:
    """Whether ``path`` is a system path of the node itself (answered alike whatever the token)."""
    return path.startswith("sys/") and path[4:] in NODE_PATHS


def _open_match(backend: Backend[OpenContext], path: str) -> Match[OpenContext, Any] | None:
    """The unauthenticated system route serving ``path``, if any."""
    if not path.startswith("sys/"):
        return None
    try:
        return backend.match(path[4:])
    except UnsupportedPath:
        return None


def _relative(mount: MountEntry, path: str) -> str:
    """``path`` relative to ``mount`` (``""`` for the mount point itself)."""
    prefix = mount.path if mount.kind == "secret" else "auth/" + mount.path
    return path[len(prefix) :] if len(path) >= len(prefix) else ""


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
