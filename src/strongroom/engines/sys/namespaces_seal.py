"""Seal endpoints of tenants: in the parent (``sys/namespaces/NAME/...``) and inside the tenant (``sys/...``).

Parent side, ordinary ACL-checked system paths of the parent namespace, wire-compatible with OpenBao 2.7
(``bao namespace seal|unseal|seal-status|delete-sealed``): ``sys/namespaces/NAME/seal``, ``/unseal``,
``/seal-status`` and ``/delete-sealed`` (``sudo``). They run in the request's transaction.

Tenant side (``X-Vault-Namespace: NAME``): ``sys/init``, ``sys/seal-status``, ``sys/unseal`` and
``sys/seal`` are the platform's own handlers (:mod:`strongroom.engines.sys.seal`) run against the tenant's
:class:`~strongroom.core.tenant_seal.TenantVault`, after :func:`tenant_ceremony_allowed`, the ONE place
that decides who may initialise, unseal or seal a tenant. ``sys/rekey/*``, ``sys/rotate/root/*`` and
``sys/generate-root[-token]/*`` are the platform's routes too, driving
:class:`~strongroom.core.stored_rekey.StoredRekey` and
:class:`~strongroom.core.stored_generate_root.StoredRootGeneration` for the tenant's
:class:`~strongroom.core.stored_ceremony.TenantSubject` (progress in storage).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import orjson

from strongroom.core.namespaces import NamespaceEntry, descendants, registry
from strongroom.core.seal import SealConfig, check_share, decode_share
from strongroom.core.tenant_seal import UNSEAL_FAILED, TenantVault, UnsealOutcome, seal_tenants
from strongroom.engines.context import Context
from strongroom.engines.fields import NoFields
from strongroom.engines.framework import Operation, Request, Response, Route
from strongroom.engines.open import OpenContext
from strongroom.engines.sys import generate_root as platform_generate_root
from strongroom.engines.sys import iam_ceremony
from strongroom.engines.sys import rekey as platform_rekey
from strongroom.engines.sys import seal as platform_seal
from strongroom.engines.sys.namespaces import NOT_FOUND_WARNING, child, remove
from strongroom.errors import InvalidRequest, NotInitialized

SysRoute = Route[Context, Any]
OpenRoute = Route[OpenContext, Any]
NOT_SEALABLE = "namespace is not sealable"


# -- who may run a tenant's ceremonies -------------------------------------------------------------------


async def tenant_ceremony_allowed(ctx: OpenContext, action: str, req: Request) -> OpenContext:
    """Decide whether the caller may run ``action`` (``init``, ``status``, ``unseal``, ``seal``, ``rekey``,
    ``generate-root``) on the tenant; return the context its handler runs with.

    The ONE place that decides it: a tenant's Administrator biscuit may run every ceremony (checked with
    platform-level state only, so also while the tenant is sealed); a token of the tenant's own store
    only where it can be checked (see :mod:`strongroom.engines.sys.iam_ceremony` for the table). Without
    either, every tenant open route answers the same 403 for an unknown, a sealed and an uninitialised
    tenant.

    Raises:
        PermissionDenied: the caller may not.
    """
    return await iam_ceremony.allowed(ctx, action, req)


def _guarded(action: str, handler: Any) -> Any:
    async def run(ctx: OpenContext, req: Request, f: Any) -> Response | None:
        allowed = await tenant_ceremony_allowed(ctx, action, req)
        result: Response | None = await handler(allowed, req, f)
        return result

    return run


def _action(pattern: str, operation: Operation) -> str | None:
    """The ceremony a tenant open route belongs to (``None``: no guard, see ``decode-token``)."""
    if pattern == "init":
        return iam_ceremony.STATUS if operation is Operation.READ else iam_ceremony.INIT
    if pattern in ("seal-status", "unseal", "seal"):
        return iam_ceremony.STATUS if pattern == "seal-status" else pattern
    if pattern.startswith(("rekey/", "rotate/root/")):
        return iam_ceremony.REKEY
    if pattern.startswith("generate-root"):
        return iam_ceremony.GENERATE_ROOT
    return None


def _guard(route: OpenRoute) -> OpenRoute:
    handlers = {}
    for operation, handler in route.handlers.items():
        action = _action(route.pattern, operation)
        handlers[operation] = handler if action is None else _guarded(action, handler)
    return dataclasses.replace(route, handlers=handlers)


_PLATFORM_OPEN_ROUTES: list[OpenRoute] = [
    Route(
        "init",
        platform_seal.InitFields,
        {Operation.READ: platform_seal.read_init, Operation.UPDATE: platform_seal.write_init},
    ),
    Route("seal-status", NoFields, {Operation.READ: platform_seal.read_seal_status}),
    Route("unseal", platform_seal.UnsealFields, {Operation.UPDATE: platform_seal.write_unseal}),
    Route("seal", NoFields, {Operation.UPDATE: platform_seal.seal}),
    # Rekey (both families) with its progress in storage: core/stored_rekey.py behind the platform's routes.
    *platform_rekey.ROUTES,
    *platform_generate_root.ROUTES,
]
TENANT_OPEN_ROUTES: list[OpenRoute] = [_guard(route) for route in _PLATFORM_OPEN_ROUTES]
"""The unauthenticated system routes of a tenant (relative to ``sys/``)."""


# -- parent side -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TenantFields:
    name: str
    key: Any = None
    reset: bool = False
    force: bool = False


async def _tenant(ctx: Context, name: str) -> tuple[str, NamespaceEntry, TenantVault]:
    name, entry = await child(ctx, name)
    if entry is None:
        raise InvalidRequest(f'namespace "{name}/" doesn\'t exist')
    if not entry.sealable:
        raise InvalidRequest(NOT_SEALABLE)
    return name, entry, ctx.node.namespaces.tenant(entry)


async def seal_status(ctx: Context, req: Request, f: TenantFields) -> Response:
    _, _, tenant = await _tenant(ctx, f.name)
    return Response(data=await tenant.status_in(ctx.tx))


async def seal(ctx: Context, req: Request, f: TenantFields) -> None:
    _, entry = await child(ctx, f.name)
    if entry is None:
        raise InvalidRequest("namespace doesn't exist")
    if not entry.sealable:
        raise InvalidRequest(NOT_SEALABLE)
    tenant = ctx.node.namespaces.tenant(entry)
    await seal_tenants(ctx.tx, await ctx.node.root.current_keys(ctx.tx), entry.ns_id)
    ctx.after_commit.append(tenant.seal)


async def unseal(ctx: Context, req: Request, f: TenantFields) -> Response:
    _, _, tenant = await _tenant(ctx, f.name)
    if f.reset:
        platform = await ctx.node.root.current_keys(ctx.tx)
        platform.records(ctx.tx, "sys", "tenant-unseal").clear(tenant.ns_id)
        return Response(data={**await tenant.status_in(ctx.tx), "progress": 0, "nonce": ""})
    if f.key is None or f.key == "":
        raise InvalidRequest("provided key is empty")
    share = decode_share(str(f.key))
    raw = await ctx.tx.get(tenant.space.key("seal"))
    if raw is None:
        raise NotInitialized()
    config = SealConfig.from_json(orjson.loads(raw))
    check_share(share, config)
    outcome = await tenant.add_share(ctx.tx, share, config)
    if outcome is UnsealOutcome.WRONG_KEY:
        # The progress reset must commit: answer the error without raising (which would roll it back).
        return Response.raw({"errors": [UNSEAL_FAILED]}, 400)
    return Response(data=await tenant.status_in(ctx.tx))


async def delete_sealed(ctx: Context, req: Request, f: TenantFields) -> Response:
    name, entry = await child(ctx, f.name)
    if entry is None:
        return Response(warnings=[NOT_FOUND_WARNING])
    if not entry.sealable:
        raise InvalidRequest("namespace is not sealed")
    tenant = ctx.node.namespaces.tenant(entry)
    if not (await tenant.status_in(ctx.tx))["sealed"]:
        raise InvalidRequest("namespace is not sealed")
    below = descendants(await registry(ctx.tx, await ctx.node.root.current_keys(ctx.tx)), entry.ns_id)
    if below and not f.force:
        raise InvalidRequest(
            "sealed namespace has leftover child namespaces; pass force=true to delete the entire tree, "
            "or unseal the namespace and delete children individually"
        )
    await remove(ctx, name, [entry.ns_id, *below])
    return Response(data={"status": "in-progress"})


ROUTES: list[SysRoute] = [
    Route("namespaces/{name:*}/seal-status", TenantFields, {Operation.READ: seal_status}),
    Route("namespaces/{name:*}/seal", TenantFields, {Operation.UPDATE: seal}),
    Route("namespaces/{name:*}/unseal", TenantFields, {Operation.UPDATE: unseal}),
    Route("namespaces/{name:*}/delete-sealed", TenantFields, {Operation.DELETE: delete_sealed}, sudo=True),
]
