"""``sys/policies/acl[/:name]``, legacy ``sys/policy[/:name]`` and ``sys/capabilities[-self|-accessor]``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from strongroom.auth.iam import is_biscuit_token
from strongroom.auth.tokens import TokenStore
from strongroom.engines.context import Context
from strongroom.engines.fields import NoFields
from strongroom.engines.framework import Operation, Request, Response, Route
from strongroom.errors import InvalidRequest, PermissionDenied

SysRoute = Route[Context, Any]


async def list_acl(ctx: Context, req: Request, f: NoFields) -> Response:
    names = await ctx.policies().names()
    return Response(data={"keys": names}, sys_inject=False)


async def list_legacy(ctx: Context, req: Request, f: NoFields) -> Response:
    names = await ctx.policies().names()
    return Response(data={"keys": names, "policies": names}, sys_inject=True)


@dataclass(frozen=True)
class PolicyFields:
    name: str
    policy: str = ""
    rules: str = ""


async def read_acl(ctx: Context, req: Request, f: PolicyFields) -> Response | None:
    data = await _read(ctx, f.name)
    if data is None:
        return None
    # Unlike legacy sys/policy, Vault does not copy sys/policies/acl data to the top level.
    return Response(data=data)


async def read_legacy(ctx: Context, req: Request, f: PolicyFields) -> Response | None:
    data = await _read(ctx, f.name)
    if data is None:
        return None
    data["rules"] = data.pop("policy")
    return Response(data=data, sys_inject=True)


async def _read(ctx: Context, name: str) -> dict[str, Any] | None:
    if name.strip().lower() == "root":
        return {"name": "root", "policy": ""}
    policy = await ctx.policies().get(name)
    if policy is None:
        return None
    return {"name": policy.name, "policy": policy.raw}


async def write_acl(ctx: Context, req: Request, f: PolicyFields) -> None:
    if not f.policy:
        raise InvalidRequest("'policy' parameter not supplied or empty")
    await ctx.policies().put(f.name, f.policy)


async def write_legacy(ctx: Context, req: Request, f: PolicyFields) -> Response | None:
    # Only the legacy path still accepts ``rules``, and Vault answers 200 with a deprecation warning.
    if f.policy:
        await ctx.policies().put(f.name, f.policy)
        return None
    if not f.rules:
        raise InvalidRequest("'policy' parameter not supplied or empty")
    await ctx.policies().put(f.name, f.rules)
    return Response(warnings=["'rules' is deprecated, please use 'policy' instead"])


async def delete_acl(ctx: Context, req: Request, f: PolicyFields) -> None:
    await ctx.policies().delete(f.name)


@dataclass(frozen=True)
class CapabilitiesFields:
    token: str = ""
    accessor: str = ""
    path: list[str] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)


def _paths(f: CapabilitiesFields) -> list[str]:
    paths = list(f.paths) + list(f.path)
    if not paths:
        raise InvalidRequest("paths must be supplied")
    return paths


def _capabilities_response(caps: dict[str, list[str]], paths: list[str]) -> Response:
    data: dict[str, Any] = dict(caps)
    if len(paths) == 1:
        # Vault keeps the pre-1.0 single-path shape alongside the per-path map.
        data["capabilities"] = caps[paths[0]]
    return Response(data=data, sys_inject=True)


async def _caps_for(ctx: Context, policies: tuple[str, ...], paths: list[str]) -> dict[str, list[str]]:
    acl = await ctx.policies().acl(policies, ctx.clock.now())
    return {p: acl.capabilities(p.lstrip("/")) for p in paths}


async def capabilities(ctx: Context, req: Request, f: CapabilitiesFields) -> Response:
    if not f.token:
        raise InvalidRequest("missing token")
    entry = await TokenStore(ctx.tx, ctx.keys, ctx.clock).lookup(f.token)
    if entry is None:
        raise InvalidRequest("invalid token")
    paths = _paths(f)
    return _capabilities_response(await _caps_for(ctx, entry.policies, paths), paths)


async def capabilities_self(ctx: Context, req: Request, f: CapabilitiesFields) -> Response:
    if ctx.caller is None:
        raise PermissionDenied()
    paths = _paths(f)
    if is_biscuit_token(ctx.caller_token):  # no policies: the biscuit's authorizer answers (BiscuitACL)
        return _capabilities_response({p: ctx.acl.capabilities(p.lstrip("/")) for p in paths}, paths)
    return _capabilities_response(await _caps_for(ctx, ctx.caller.policies, paths), paths)


async def capabilities_accessor(ctx: Context, req: Request, f: CapabilitiesFields) -> Response:
    if not f.accessor:
        raise InvalidRequest("missing accessor")
    entry = await TokenStore(ctx.tx, ctx.keys, ctx.clock).lookup_accessor(f.accessor)
    if entry is None:
        raise InvalidRequest("invalid accessor")
    paths = _paths(f)
    return _capabilities_response(await _caps_for(ctx, entry.policies, paths), paths)


ROUTES: list[SysRoute] = [
    # Vault's pattern is ``policies/acl/?``: a read of the bare path is a 405, not an unknown path.
    Route("policies/acl", NoFields, {}),
    Route("policies/acl/", NoFields, {Operation.LIST: list_acl}),
    Route(
        "policies/acl/{name}",
        PolicyFields,
        {Operation.READ: read_acl, Operation.UPDATE: write_acl, Operation.DELETE: delete_acl},
    ),
    Route("policy", NoFields, {Operation.READ: list_legacy}),
    Route("policy/", NoFields, {Operation.READ: list_legacy, Operation.LIST: list_legacy}),
    Route(
        "policy/{name}",
        PolicyFields,
        {Operation.READ: read_legacy, Operation.UPDATE: write_legacy, Operation.DELETE: delete_acl},
    ),
    Route("capabilities", CapabilitiesFields, {Operation.UPDATE: capabilities}),
    Route("capabilities-self", CapabilitiesFields, {Operation.UPDATE: capabilities_self}),
    Route("capabilities-accessor", CapabilitiesFields, {Operation.UPDATE: capabilities_accessor}),
]
