"""``sys/iam/*``: the managed-service flow of the platform IAM (issue 4, ``docs/tenants.md``).

In the root namespace, with the platform root token (a token of the root namespace with ``sudo`` on the
path; every route here is root-protected):

* ``POST sys/iam/tenants/NAME`` ``{ttl}``: create tenant ``NAME``, a sealable namespace that is still
  **uninitialised** (its own administrator runs ``sys/init`` inside it), and issue its Administrator and
  User tokens, in one transaction;
* ``GET sys/iam/tenants/NAME``, ``LIST sys/iam/tenants``; ``DELETE sys/iam/tenants/NAME`` only for a
  sealed (or uninitialised) tenant, as ``sys/namespaces/NAME/delete-sealed``;
* ``POST sys/iam/tokens`` ``{tenant, role, ttl}``: issue another token for an existing tenant;
* ``POST sys/iam/revoke`` ``{revocation_id}`` or ``{token}``: add a revocation id to the platform's list.
  Inside a tenant the same route takes ``{token}`` only, for a token of that tenant (the tenant's
  Administrator, or a tenant token with ``sudo``), since an id alone does not say whose token it is.

Anywhere, without a token: ``GET sys/iam/public-key`` (the document of ``docs/spec/tokens.md`` section
5). Inside a tenant: ``sys/iam/config`` (:mod:`strongroom.engines.sys.iam_config`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from strongroom.auth.iam import IamKey, Role, issue_token, public_key_document
from strongroom.clock import rfc3339
from strongroom.core.namespaces import NamespaceTable, header_path, parse_name, split_path
from strongroom.engines.context import Context
from strongroom.engines.fields import NoFields, parse_duration
from strongroom.engines.framework import Operation, Request, Response, Route
from strongroom.engines.sys import iam_config, namespaces, namespaces_seal
from strongroom.engines.sys.iam_auth import PUBLIC_KEY_PATH
from strongroom.engines.sys.iam_state import check_revocation_id, iam_state, revoke, signing_key
from strongroom.errors import InvalidRequest, PermissionDenied

SysRoute = Route[Context, Any]
DEFAULT_TTL = 30 * 24 * 3600
"""Tokens issued without a ``ttl`` live 30 days (720h)."""
MAX_TTL = 10 * 365 * 24 * 3600
"""At most ten years: an expiry must stay a valid date, and longer is never what anyone meant."""
_UNINITIALISED_SEAL = 'seal "shamir" {}'


def _root_only(req: Request) -> None:
    if req.namespace:
        raise InvalidRequest(f"sys/{req.path} is a platform endpoint: call it in the root namespace")


def _ttl(value: Any) -> int:
    if value is None or value == "":
        return DEFAULT_TTL
    seconds = parse_duration(value, "ttl")
    if not 0 < seconds <= MAX_TTL:
        raise InvalidRequest(f"ttl must be a positive duration of at most {MAX_TTL // 3600}h")
    return seconds


def _issued(key: IamKey, tenant: str, role: Role | str, ttl: int, now: float) -> tuple[str, int]:
    token = issue_token(key, tenant=tenant, role=role, ttl=ttl, now=now)
    return token, math.ceil(now + ttl)


@dataclass(frozen=True)
class TenantFields:
    name: str = ""
    ttl: Any = None


async def create_tenant(ctx: Context, req: Request, f: TenantFields) -> Response:
    _root_only(req)
    name = parse_name(f.name)
    ttl = _ttl(f.ttl)
    if await NamespaceTable(ctx.tx, ctx.keys).get(name) is not None:
        raise InvalidRequest(f'namespace "{name}/" already exists')
    data = {"seal": _UNINITIALISED_SEAL, "initialize": False}
    inner = Request(Operation.UPDATE, f"namespaces/{name}", data, req.mount_point, "", req.client_token)
    fields = namespaces.WriteFields(name=name, seal=_UNINITIALISED_SEAL, initialize=False)
    created = await namespaces.write_namespace(ctx, inner, fields)
    key = await signing_key(ctx.tx, ctx.keys, create=True)
    now = ctx.clock.now()
    admin, expires_at = _issued(key, name, Role.ADMIN, ttl, now)
    user, _ = _issued(key, name, Role.USER, ttl, now)
    described = created.data or {}
    return Response(data={
        "tenant": name, "path": described.get("path", name + "/"), "uuid": described.get("uuid", ""),
        "admin_token": admin, "user_token": user, "expiry": rfc3339(expires_at), "expires_at": expires_at,
        "key_id": key.key_id, "public_key": key.public_key.to_text(),
    })  # fmt: skip


async def _tenant_entry(ctx: Context, name: str) -> tuple[str, Any]:
    name = parse_name(name)
    entry = await NamespaceTable(ctx.tx, ctx.keys).get(name)
    if entry is not None and not entry.sealable:
        raise InvalidRequest(f'namespace "{name}/" is not a tenant (it has no seal of its own)')
    return name, entry


async def read_tenant(ctx: Context, req: Request, f: TenantFields) -> Response | None:
    _root_only(req)
    _, entry = await _tenant_entry(ctx, f.name)
    if entry is None:
        return None
    status = await ctx.node.namespaces.tenant(entry).status_in(ctx.tx)
    return Response(
        data={**entry.describe(), "initialized": status["initialized"], "sealed": status["sealed"]}
    )


async def list_tenants(ctx: Context, req: Request, f: NoFields) -> Response | None:
    _root_only(req)
    entries = [e for e in await NamespaceTable(ctx.tx, ctx.keys).entries() if e.sealable]
    if not entries:
        return None
    keys = [e.name + "/" for e in entries]
    return Response(
        data={"keys": keys, "key_info": {k: e.describe() for k, e in zip(keys, entries, strict=True)}}
    )


async def delete_tenant(ctx: Context, req: Request, f: TenantFields) -> Response:
    _root_only(req)
    name, _ = await _tenant_entry(ctx, f.name)
    return await namespaces_seal.delete_sealed(ctx, req, namespaces_seal.TenantFields(name=name))


@dataclass(frozen=True)
class TokenFields:
    tenant: str = ""
    role: str = ""
    ttl: Any = None


async def issue(ctx: Context, req: Request, f: TokenFields) -> Response:
    _root_only(req)
    if not f.tenant:
        raise InvalidRequest("tenant is required")
    if f.role not in (Role.ADMIN.value, Role.USER.value):
        raise InvalidRequest("role must be admin or user")
    ttl = _ttl(f.ttl)
    path = header_path(f.tenant)
    split_path(path)  # the naming rules: a clear 400 for a malformed name
    res = await ctx.node.namespaces.resolve(ctx.tx, path, "", follow=False)
    if not path or res.unknown or not res.target.tenant:
        raise InvalidRequest(f'tenant "{f.tenant}" does not exist')
    tenant = path.rstrip("/")
    key = await signing_key(ctx.tx, ctx.keys, create=True)
    entry = res.target.entry
    assert entry is not None
    # Never "issued" before the tenant's creation, which would refuse it (iam_auth): another node's clock
    # may be behind the one that created the tenant.
    now = max(ctx.clock.now(), entry.created)
    token, expires_at = _issued(key, tenant, f.role, ttl, now)
    revocation_id = (await iam_state(ctx.node).verifier(ctx.tx, ctx.keys)).verify(token).facts.revocation_id
    return Response(data={
        "tenant": tenant, "role": f.role, "token": token, "expiry": rfc3339(expires_at),
        "expires_at": expires_at, "key_id": key.key_id, "revocation_id": revocation_id,
    })  # fmt: skip


async def read_public_key(ctx: Context, req: Request, f: NoFields) -> Response:
    platform = await ctx.node.root.current_keys(ctx.tx)
    try:
        public = await iam_state(ctx.node).public_key(ctx.tx, platform)
    except PermissionDenied:
        raise InvalidRequest("the platform has no IAM signing key yet") from None
    return Response(data=public_key_document(public))


@dataclass(frozen=True)
class RevokeFields:
    revocation_id: Any = None
    token: Any = None


async def revoke_token(ctx: Context, req: Request, f: RevokeFields) -> Response:
    if (f.revocation_id is None) == (f.token is None):
        raise InvalidRequest("give exactly one of revocation_id or token")
    platform = await ctx.node.root.current_keys(ctx.tx)
    now = ctx.clock.now()
    if f.revocation_id is not None:
        if req.namespace:
            raise InvalidRequest("inside a tenant, revoke by token: a revocation id does not say whose it is")
        revocation_id = check_revocation_id(f.revocation_id)
        revoke(ctx.tx, platform, revocation_id, now=now)
        return Response(data={"revocation_id": revocation_id})
    if not isinstance(f.token, str):
        raise InvalidRequest("token must be a string")
    verifier = await iam_state(ctx.node).verifier(ctx.tx, platform)
    try:
        facts = verifier.verify(f.token).facts  # signature and shape only: expired tokens may be revoked
    except PermissionDenied:
        raise InvalidRequest("token is not a valid IAM token of this platform") from None
    if req.namespace and facts.tenant + "/" != req.namespace:
        raise InvalidRequest("token is not a token of this tenant")
    revoke(ctx.tx, platform, facts.revocation_id, now=now, expires_at=facts.expires_at)
    return Response(
        data={"revocation_id": facts.revocation_id, "tenant": facts.tenant, "role": facts.role.value}
    )


ROUTES: list[SysRoute] = [
    Route("iam/tenants", NoFields, {Operation.LIST: list_tenants}, sudo=True),
    Route(
        "iam/tenants/{name:*}",
        TenantFields,
        {Operation.READ: read_tenant, Operation.UPDATE: create_tenant, Operation.DELETE: delete_tenant},
        sudo=True,
    ),
    Route("iam/tokens", TokenFields, {Operation.UPDATE: issue}, sudo=True),
    Route("iam/revoke", RevokeFields, {Operation.UPDATE: revoke_token}, sudo=True),
    Route(
        "iam/config",
        iam_config.ConfigFields,
        {Operation.READ: iam_config.read_config, Operation.UPDATE: iam_config.write_config},
        sudo=True,
    ),
    # Self-authorizing and unauthenticated: it shows the same public document to anyone.
    Route(
        PUBLIC_KEY_PATH,
        NoFields,
        {Operation.READ: read_public_key},
        unauthenticated=True,
        self_authorizing=True,
    ),
]
