"""Who a token is in a namespace: the token chain up to the authority boundary, and scoped ACLs.

``docs/spec/namespaces.md`` section 7. A request in namespace ``N`` authenticates its token in ``N``'s
token store, then in each ancestor's store up to and including the nearest tenant (or the platform), and
never beyond: so platform tokens carry no authority inside a tenant, and a parent's token works in a plain
child with its policies applied to the path prefixed by the child's relative path (Vault's rule).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from strongroom.auth.acl import ACL
from strongroom.auth.policy_store import PolicyStore
from strongroom.auth.tokens import MAX_TOKEN_LENGTH, TokenEntry, TokenStore
from strongroom.clock import Clock
from strongroom.core.namespace_tree import Level, Resolution
from strongroom.crypto.kdf import TokenHasher
from strongroom.errors import PermissionDenied
from strongroom.storage.base import Transaction

SELF_PATHS = frozenset({"lookup-self", "renew-self", "revoke-self"})
"""Token-store paths that act on the caller's own token: served by the store that holds it."""


class ScopedACL(ACL):
    """An ancestor's ACL seen from a descendant namespace: every path is prefixed by ``prefix``.

    ``prefix`` is the descendant's path relative to the namespace the policies belong to (``team/``).
    """

    __slots__ = ("_inner", "_prefix")

    def __init__(self, inner: ACL, prefix: str) -> None:  # the inner ACL holds the compiled rules
        self._inner = inner
        self._prefix = prefix
        self.expires_at = inner.expires_at

    def __repr__(self) -> str:
        return f"ScopedACL(prefix={self._prefix!r})"

    @property
    def is_root(self) -> bool:
        return self._inner.is_root

    def capabilities(self, path: str) -> list[str]:
        return self._inner.capabilities(self._prefix + path)

    def check_any(self, operations: tuple[str, ...], path: str) -> None:
        self._inner.check_any(operations, self._prefix + path)

    def has_access_under(self, prefix: str) -> bool:
        return self._inner.has_access_under(self._prefix + prefix)

    def check(
        self,
        operation: str,
        path: str,
        params: Mapping[str, Any] | None = None,
        *,
        requires_sudo: bool = False,
        wrap_ttl: float | None = None,
    ) -> None:
        self._inner.check(
            operation, self._prefix + path, params, requires_sudo=requires_sudo, wrap_ttl=wrap_ttl
        )


async def find_token(tx: Transaction, res: Resolution, token: str, clock: Clock) -> tuple[TokenEntry, Level]:
    """Return the live entry of ``token`` and the level whose store holds it.

    Raises:
        PermissionDenied: no token, or no store up to the authority boundary knows it.
    """
    if not token or len(token) > MAX_TOKEN_LENGTH:
        raise PermissionDenied()
    hasher: TokenHasher | None = None
    token_hash = b""
    for level in res.boundary_chain():
        if level.keys is None:
            break
        if level.keys.token_hasher is not hasher:
            # A plain chain shares its owner's token-hash key: hash once, look up in each store.
            hasher = level.keys.token_hasher
            token_hash = hasher.hash(token)
        entry = await TokenStore(tx, level.keys, clock).get_by_hash(token_hash)
        if entry is not None:
            return entry, level
    raise PermissionDenied()


_FOREIGN: dict[int, tuple[TokenEntry, TokenEntry]] = {}


def as_foreign_caller(entry: TokenEntry) -> TokenEntry:
    """``entry`` as a caller from another namespace's store: no identity (hash) in the serving store.

    Memoised on the entry object (the token store hands out one decoded object per stored version).
    """
    hit = _FOREIGN.get(id(entry))
    if hit is not None and hit[0] is entry:
        return hit[1]
    foreign = dataclasses.replace(entry, token_hash=b"")
    if len(_FOREIGN) >= 4096:
        _FOREIGN.clear()
    _FOREIGN[id(entry)] = (entry, foreign)
    return foreign


async def acl_for(tx: Transaction, entry: TokenEntry, home: Level, target: Level, now: float) -> ACL:
    """The ACL of ``entry`` (from ``home``'s policies) for a request served in ``target``."""
    assert home.keys is not None
    acl = await PolicyStore(tx, home.keys).acl(entry.policies, now)
    if home.path == target.path or acl.is_root:
        return acl
    return ScopedACL(acl, target.path[len(home.path) :])
