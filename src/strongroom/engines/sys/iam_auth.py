"""Biscuit tokens in the request pipeline: tenant selection, authentication and the per-request ACL.

The router hands a request whose ``X-Vault-Token`` starts with ``sb.`` (nothing else is looked at, so a
store token's path is untouched) to this module (``docs/spec/tokens.md``):

1. :func:`select_tenant`, before the transaction: the token (signature checked with this node's cached
   verifier) names its tenant. Without ``X-Vault-Namespace`` or a ``/v1/TENANT/...`` prefix the request
   goes to that tenant; a header naming any other namespace, the root namespace included, is 403.
2. :func:`authenticate`, inside the request's transaction: the IAM key is read again (a new key reaches
   every node at once), the token verified against it, and refused (403, no detail) unless the request's
   namespace is exactly the token's tenant, a tenant (sealable) namespace created before the token was
   issued (a deleted and re-created name does not honour the old name's tokens), no revocation id of the
   token is in the revocation list (read in this transaction: a revocation committed on any node is
   effective at the next request everywhere), and the tenant accepts platform tokens for this request
   (``sys/iam/config``).
3. :class:`BiscuitACL` then decides each check the router makes with the Datalog authorizer
   (``resource`` = the full path inside the namespace, mount included; ``operation`` as the router
   decided it, ``create`` or ``update`` after the existence check).

The caller's :class:`~strongroom.auth.tokens.TokenEntry` is synthetic: policies ``root`` (Administrator,
the tenant's root-like role) or ``tenant-user``, no hash (what it creates are orphans), expiring with the
token. Nothing is counted or written for it.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from strongroom.auth.acl import ACL
from strongroom.auth.iam import (
    OPERATIONS,
    IamRequest,
    IamVerifier,
    Role,
    TokenFacts,
    VerifiedToken,
    lookup_self_data,
    refuse_renewal,
    revoke_self_id,
)
from strongroom.auth.tokens import TokenEntry
from strongroom.core.mounts import MountEntry, MountTable
from strongroom.core.namespace_tree import Resolution
from strongroom.core.namespaces import header_path
from strongroom.core.node import Node
from strongroom.engines.context import Context
from strongroom.engines.framework import Response
from strongroom.engines.sys.iam_config import CEREMONIES_ONLY, accepted_mode
from strongroom.engines.sys.iam_state import Decisions, any_revoked, iam_state, revoke
from strongroom.errors import PermissionDenied
from strongroom.storage.base import Transaction

_CALLER = object()
"""Key of the verified token's facts in :attr:`Context.memo` (self-service endpoints read them)."""
ISSUE_PATH = "sys/iam/tokens"
PUBLIC_KEY_PATH = "iam/public-key"
"""The system route of the IAM public key (relative to ``sys/``)."""
# Logical operations Vault checks as update (the ACL's own mapping).
_AS_UPDATE = frozenset({"revoke", "renew", "rollback"})


def select_tenant(namespace: str, path: str, tenant: str) -> tuple[str, str]:
    """Return the ``(namespace header, path)`` a biscuit of ``tenant`` addresses.

    Raises:
        PermissionDenied: the header names another namespace (the root namespace included).
    """
    if namespace:
        if header_path(namespace) != tenant + "/":
            raise PermissionDenied()
        return namespace, path
    if path == tenant or path.startswith(tenant + "/"):
        return tenant, path[len(tenant) + 1 :]
    return tenant, path


async def token_tenant(node: Node, token: str) -> str:
    """The tenant ``token`` names, after checking its signature with this node's verifier.

    Raises:
        PermissionDenied: not a valid token.
        Sealed: the platform is sealed and this node has never seen the IAM key.
    """
    state = iam_state(node)
    return state.verify(await state.current(token), token).facts.tenant


@dataclass(frozen=True)
class BiscuitCaller:
    """A biscuit accepted for one request: its facts, the verified token and the verifier."""

    facts: TokenFacts
    verified: VerifiedToken
    verifier: IamVerifier
    namespace: str
    decisions: Decisions

    @property
    def entry(self) -> TokenEntry:
        """The synthetic token entry handlers see as ``ctx.caller``."""
        return caller_entry(self.facts)


@functools.lru_cache(maxsize=1024)
def caller_entry(facts: TokenFacts) -> TokenEntry:
    """A token entry standing for a biscuit: see the module docstring (one object per token's facts;
    handlers treat entries as read-only)."""
    return TokenEntry(
        token_hash=b"",
        accessor="",
        policies=("root",) if facts.role is Role.ADMIN else (facts.role.policy_name,),
        meta={"tenant": facts.tenant, "role": facts.role.value},
        display_name=f"iam-{facts.tenant}-{facts.role.value}",
        creation_time=float(facts.issued_at),
        expire_at=float(facts.expires_at),
        orphan=True,
        path=ISSUE_PATH,
    )


async def authenticate(tx: Transaction, node: Node, res: Resolution, token: str) -> BiscuitCaller:
    """Accept ``token`` for a request served in ``res.target`` (unsealed), or refuse it.

    Raises:
        PermissionDenied: see the module docstring (step 2).
        CorruptRecord: a stored record is damaged.
    """
    platform = res.levels[0].keys
    target = res.target
    assert platform is not None and target.keys is not None
    state = iam_state(node)
    verifier = await state.verifier(tx, platform)
    verified = state.verify(verifier, token)  # verified once already, by the tenant selection
    facts = verified.facts
    entry = target.entry
    if entry is None or not entry.sealable or target.path != facts.tenant + "/":
        raise PermissionDenied()
    if facts.issued_at < math.floor(entry.created) or node.clock.now() >= facts.expires_at:
        raise PermissionDenied()
    if await any_revoked(tx, platform, facts.revocation_ids):
        raise PermissionDenied()
    if await accepted_mode(tx, target.keys) == CEREMONIES_ONLY:
        raise PermissionDenied()
    return BiscuitCaller(facts, verified, verifier, facts.tenant, state.decisions)


def biscuit_facts(ctx: Context) -> TokenFacts | None:
    """The facts of the biscuit that authenticated this request, ``None`` for a store token."""
    facts = ctx.memo.get(_CALLER)
    return facts if isinstance(facts, TokenFacts) else None


def remember(ctx: Context, caller: BiscuitCaller) -> None:
    """Let the handlers of this request know it came with ``caller``'s biscuit."""
    ctx.memo[_CALLER] = caller.facts


def mount_prefix(mount: MountEntry) -> str:
    """The mount's path as it prefixes a request path (``secret/``, ``auth/token/``)."""
    return mount.path if mount.kind == "secret" else "auth/" + mount.path


class BiscuitACL(ACL):
    """The ACL of a request made with a biscuit: every check is the Datalog authorizer's decision.

    Decisions are memoised per (operation, path) for the request (the router checks a request twice:
    before the body is parsed and after the existence check). ``is_root`` is always false so no shortcut
    skips an attenuation check; the Administrator's ``sudo`` comes from :meth:`capabilities` and
    ``requires_sudo``.
    """

    __slots__ = ("_caller", "_decided", "_now", "_table")

    def __init__(
        self, caller: BiscuitCaller, table: MountTable, now: float
    ) -> None:  # no policies to compile
        self._caller = caller
        self._table = table
        self._now = now
        self._decided: dict[tuple[str, str], bool] = {}
        self.expires_at = float(caller.facts.expires_at)

    def __repr__(self) -> str:
        return f"BiscuitACL(tenant={self._caller.facts.tenant!r}, role={self._caller.facts.role.value!r})"

    @property
    def is_root(self) -> bool:
        return False

    @property
    def admin(self) -> bool:
        return self._caller.facts.role is Role.ADMIN

    def allowed(self, operation: str, path: str) -> bool:
        """Whether the token allows ``operation`` (one of the authorizer's operations) on ``path``."""
        key = (operation, path)
        hit = self._decided.get(key)
        if hit is not None:
            return hit
        caller = self._caller
        mount = self._table.match(path)
        mount_path = mount_prefix(mount) if mount else ""
        mount_type = mount.type if mount else ""
        version = mount.version if mount is not None and mount.type == "kv" else ""
        second = math.floor(self._now)
        # The token is identified by its blocks' signatures (it is verified, so they cover every block's
        # content): shorter than its text, which may reach 8 KiB.
        facts = (*caller.facts.revocation_ids, caller.namespace, path, operation, mount_path, mount_type, version)
        decided = caller.decisions.get(second, facts)
        if decided is None:
            request = IamRequest(caller.namespace, path, operation, self._now, mount_path, mount_type, version)
            try:
                caller.verifier.authorize(caller.verified, request)
                decided = True
            except PermissionDenied:
                decided = False
            caller.decisions.put(second, facts, decided)
        self._decided[key] = decided
        return decided

    def capabilities(self, path: str) -> list[str]:
        caps = [op for op in OPERATIONS if self.allowed(op, path)]
        if caps and self.admin:
            caps.append("sudo")
        return sorted(caps) or ["deny"]

    def check_any(self, operations: tuple[str, ...], path: str) -> None:
        if not any(self.allowed(_operation(op), path) for op in operations):
            raise PermissionDenied()

    def has_access_under(self, prefix: str) -> bool:
        mount = self._table.match(prefix)
        return mount is not None and self._caller.facts.role.can_see_mount(mount.type)

    def check(
        self,
        operation: str,
        path: str,
        params: Mapping[str, Any] | None = None,
        *,
        requires_sudo: bool = False,
        wrap_ttl: float | None = None,
    ) -> None:
        if not self.allowed(_operation(operation), path) or (requires_sudo and not self.admin):
            raise PermissionDenied()


def _operation(operation: str) -> str:
    op = "update" if operation in _AS_UPDATE else operation
    if op not in OPERATIONS:
        raise PermissionDenied()  # scan and unknown operations: the authorizer has no such fact
    return op


def precheck(acl: BiscuitACL, route_public: bool, operations: tuple[str, ...], path: str) -> None:
    """Refuse before anything runs unless the token allows one of ``operations`` on ``path``.

    Also for self-authorizing routes (mount discovery), whose handlers decide what to show but whose
    request is still subject to the token's own checks; not for a public route (the IAM public key),
    which answers everyone the same.
    """
    if not route_public:
        acl.check_any(operations, path)


def is_public(mount: MountEntry | None, relative: str) -> bool:
    """Whether the request names ``GET sys/iam/public-key``, which answers anyone alike."""
    return mount is not None and mount.type == "system" and relative == PUBLIC_KEY_PATH


# -- auth/token/lookup-self, renew-self, revoke-self with a biscuit (docs/spec/tokens.md section 7) ---------


def lookup_self(ctx: Context) -> Response | None:
    """``lookup-self`` answered from the biscuit; ``None`` when the caller has a store token."""
    facts = biscuit_facts(ctx)
    if facts is None:
        return None
    return Response(data=lookup_self_data(facts, ctx.caller_token, ctx.clock.now()))


def renew_self(ctx: Context) -> None:
    """``renew-self``: nothing to do for a store token.

    Raises:
        InvalidRequest: the caller has a biscuit (Vault's ``lease is not renewable``).
    """
    if biscuit_facts(ctx) is not None:
        refuse_renewal()


async def revoke_self(ctx: Context) -> bool:
    """``revoke-self`` of a biscuit: revoke its last revocation id (itself and what was attenuated from it,
    never its parent) in the request's transaction; ``False`` when the caller has a store token."""
    facts = biscuit_facts(ctx)
    if facts is None:
        return False
    platform = await ctx.node.root.current_keys(ctx.tx)
    revoke(ctx.tx, platform, revoke_self_id(facts), now=ctx.clock.now(), expires_at=facts.expires_at)
    return True
