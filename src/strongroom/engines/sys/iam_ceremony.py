"""Who may run a tenant's ceremonies: the Administrator biscuit, and tenant tokens where they can be checked.

Vault leaves ``sys/init``, ``sys/unseal`` and ``sys/seal-status`` unauthenticated. For a tenant that
would let whoever calls ``sys/init`` first own the vault, and would tell anyone which tenants exist. So
inside a tenant (``docs/spec/tokens.md`` section 4, ``docs/spec/namespaces.md`` section 5):

======================  ==========================================  =========================================
action                  Administrator biscuit of the tenant         token of the tenant's own store
======================  ==========================================  =========================================
init (write)            yes                                         no (there is no store before init)
unseal (and reset)      yes                                         no
seal-status, init read  yes                                         any live token, while unsealed
seal                    yes                                         ``sudo`` on ``sys/seal`` (Vault's rule;
                                                                    a sealed tenant answers 204 to anyone)
rekey, rotate/root      yes                                         the platform's rule (``sudo``), while
                                                                    unsealed
generate-root           yes                                         no (the quorum of shares is the
                                                                    authority; the biscuit says who may try)
decode-token            anyone (a pure function of its input)
======================  ==========================================  =========================================

Everything else is 403, and the same 403 for an unknown namespace, a sealed and an uninitialised tenant:
a caller without the tenant's Administrator biscuit cannot tell them apart. The biscuit is checked with
platform-level state only (IAM key, revocation list, the tenant's namespace entry), so it works while the
tenant is sealed. The tenant's ``accept_platform_tokens`` setting does not apply here: ceremonies are what
``admin-ceremony-only`` still allows.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from strongroom.auth.iam import IamRequest, IamVerifier, Role, VerifiedToken, is_biscuit_token
from strongroom.core.tenant_seal import TenantVault
from strongroom.engines.framework import Request
from strongroom.engines.open import OpenContext
from strongroom.engines.sys.iam_state import any_revoked, iam_state
from strongroom.errors import PermissionDenied, Sealed
from strongroom.storage.base import Transaction, transactional

INIT, STATUS, UNSEAL, SEAL, REKEY, GENERATE_ROOT = (
    "init",
    "status",
    "unseal",
    "seal",
    "rekey",
    "generate-root",
)
ACTIONS = (INIT, STATUS, UNSEAL, SEAL, REKEY, GENERATE_ROOT)


@dataclass
class BiscuitOpenContext(OpenContext):
    """An :class:`OpenContext` whose caller is a verified Administrator biscuit of the tenant.

    :meth:`authorize` (what the rekey and seal handlers call) asks the biscuit's authorizer about the
    path they name, instead of the tenant's token store (unreadable while sealed).
    """

    verifier: IamVerifier | None = None
    verified: VerifiedToken | None = None

    async def authorize(
        self, path: str, operation: str, params: Mapping[str, Any] | None, *, sudo: bool
    ) -> None:
        """Raises PermissionDenied: the biscuit does not allow ``operation`` on ``path``."""
        assert self.verifier is not None and self.verified is not None
        _authorize(self.verifier, self.verified, path, operation, self.node.clock.now())


def _authorize(verifier: IamVerifier, verified: VerifiedToken, path: str, operation: str, now: float) -> None:
    facts = verified.facts
    if facts.role is not Role.ADMIN:
        raise PermissionDenied()
    verifier.authorize(
        verified, IamRequest(facts.tenant, path, operation, now, mount_path="sys/", mount_type="system")
    )


async def allowed(ctx: OpenContext, action: str, req: Request) -> OpenContext:
    """Decide ``action`` (one of :data:`ACTIONS`) for ``req`` on the tenant ``ctx.vault``; return the
    context the handler runs with.

    Raises:
        PermissionDenied: not allowed (the same for unknown, sealed and uninitialised tenants).
        Sealed: the platform is sealed on this node.
    """
    if is_biscuit_token(ctx.token):
        return await _administrator(ctx, req)
    if action == SEAL:
        return ctx  # the handler: 204 while sealed, else sudo in the tenant's store
    if action == REKEY and ctx.token:
        if ctx.node.settings.unauthenticated_rekey:
            # Vault's unauthenticated rekey is a node setting for the platform; a tenant always checks.
            await ctx.require_sudo("sys/" + req.path, req.operation.value, req.data)
        return ctx  # the handler checks sudo in the tenant's store (503 while sealed, as for anyone)
    if action == STATUS and ctx.token and isinstance(ctx.vault, TenantVault) and not ctx.vault.sealed:
        await _live_token(ctx)
        return ctx
    raise PermissionDenied()


async def _live_token(ctx: OpenContext) -> None:
    async def check(tx: Transaction) -> None:
        try:
            keys = await ctx.vault.current_keys(tx)
        except Sealed:
            raise PermissionDenied() from None
        await ctx.router.authenticate(tx, ctx.vault, ctx.token, keys)

    await transactional(ctx.node.store, check)


async def _administrator(ctx: OpenContext, req: Request) -> OpenContext:
    vault = ctx.vault
    if not isinstance(vault, TenantVault):
        raise PermissionDenied()  # an unknown namespace: no Administrator of it exists
    now = ctx.node.clock.now()

    async def check(tx: Transaction) -> tuple[IamVerifier, VerifiedToken]:
        platform = await ctx.node.root.current_keys(tx)
        verifier = await iam_state(ctx.node).verifier(tx, platform)
        verified = verifier.verify(ctx.token)
        facts = verified.facts
        if facts.tenant + "/" != vault.path:
            raise PermissionDenied()
        # The tenant's entry, read now: the token must be younger than this incarnation of the name.
        res = await ctx.node.namespaces.resolve(tx, vault.path, "", follow=False)
        entry = res.target.entry
        if res.unknown or entry is None or entry.ns_id != vault.ns_id:
            raise PermissionDenied()
        if facts.issued_at < math.floor(entry.created):
            raise PermissionDenied()
        if await any_revoked(tx, platform, facts.revocation_ids):
            raise PermissionDenied()
        _authorize(verifier, verified, "sys/" + req.path, req.operation.value, now)
        return verifier, verified

    verifier, verified = await transactional(ctx.node.store, check)
    return BiscuitOpenContext(ctx.node, vault, ctx.request_id, ctx.token, ctx.router, verifier, verified)
