"""``auth/token/create``, ``auth/token/create-orphan`` and ``auth/token/create/:role_name``.

The flow is Vault's ``handleCreateCommon``, step for step, so that the same request fails with the same
message at the same step: the caller's use limit, token type, entity alias, metadata, display name,
custom ID, policies (subset of the parent's unless the caller has sudo, or the role's rules), orphan
status, TTL/period/explicit max TTL, then the store.

Guarantees: a non-root, non-sudo caller never obtains a token with a policy it does not hold (unless a role
it may use allows it); only root can create a root token; custom IDs, orphans via ``no_parent`` and periodic
tokens need root or sudo on the path; every token gets a TTL except root tokens created without one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from strongroom.auth.tokens import TokenEntry
from strongroom.engines.context import Context
from strongroom.engines.framework import Operation, Request, Response, Route
from strongroom.engines.token.common import (
    NON_ASSIGNABLE_POLICIES,
    ROOT_POLICY,
    auth_response,
    calculate_ttl,
    caller,
    contains_glob,
    display_name,
    go_quote_list,
    has_sudo,
    parse_seconds,
    sanitize_policies,
)
from strongroom.engines.token.roles import RoleEntry, check_name, load_role
from strongroom.errors import InvalidRequest

BATCH_UNSUPPORTED = "batch tokens are not supported by strongroom; use 'service'"


@dataclass(frozen=True)
class CreateFields:
    """Parameters of a token creation (Vault's ``commonFieldsForCreate``).

    ``policies``, ``meta`` and the durations stay loosely typed here because Vault accepts shapes the
    generic field coercions would change (a policy string is one policy, never split on commas;
    ``meta`` may be ``"k=v"`` pairs).
    """

    role_name: str = ""
    id: str = ""
    policies: Any = None
    meta: Any = None
    no_parent: bool = False
    no_default_policy: bool = False
    renewable: bool = True
    ttl: Any = None
    lease: Any = None
    explicit_max_ttl: Any = None
    period: Any = None
    num_uses: int = 0
    display_name: str = ""
    type: str = ""
    entity_alias: str = ""


def _policy_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise InvalidRequest('Field validation failed: error converting input for field "policies"')


def _meta(value: Any) -> dict[str, str] | None:
    """Vault's ``TypeKVPairs``: a map, or ``"k=v"`` strings (one, comma-separated or a list)."""
    if value is None:
        return None
    if isinstance(value, dict):
        return {str(k): v if isinstance(v, str) else str(v) for k, v in value.items()}
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list):
        items = [items]
    out: dict[str, str] = {}
    for index, item in enumerate(items):
        if not isinstance(item, str) or "=" not in item:
            raise InvalidRequest(
                f'Field validation failed: error converting input for field "meta": '
                f'invalid key pair at index {index} in field "meta"'
            )
        key, _, val = item.partition("=")
        out[key.strip()] = val.strip()
    return out


def _seconds(value: Any, name: str) -> int | None:
    """Parse an optional duration parameter; ``None`` when absent or empty."""
    if value is None or value == "":
        return None
    return parse_seconds(value, name)


def resolve_policies(f: CreateFields, role: RoleEntry | None, parent: TokenEntry, is_sudo: bool) -> list[str]:
    """Vault's ``resolveTokenPolicies``: the final, sorted policy list of the new token.

    Raises:
        InvalidRequest: not a subset of the parent's (or the role's allowed) policies, a disallowed or
            non-assignable policy.
    """
    requested = _policy_list(f.policies)
    no_default = f.no_default_policy
    add_default = False
    role_rules = role is not None and bool(
        role.allowed_policies
        or role.disallowed_policies
        or role.allowed_policies_glob
        or role.disallowed_policies_glob
    )
    if role is not None and role_rules:
        # With allowed/disallowed lists the role, not the parent, bounds the policies.
        local_default = (
            not no_default
            and not role.token_no_default_policy
            and "default" not in role.disallowed_policies
            and not contains_glob(role.disallowed_policies_glob, "default")
        )
        final = sanitize_policies(requested, local_default) if requested else []
        if role.allowed_policies or role.allowed_policies_glob:
            allowed = sanitize_policies(role.allowed_policies, local_default)
            if not final:
                final = allowed
            else:
                globs = sanitize_policies(role.allowed_policies_glob, False)
                for policy in final:
                    if policy not in allowed and not contains_glob(globs, policy):
                        raise InvalidRequest(
                            f"token policies ({go_quote_list(final)}) must be subset of the role's allowed "
                            f"policies ({go_quote_list(allowed)}) or glob policies ({go_quote_list(globs)})"
                        )
        elif not final:
            final = sanitize_policies(parent.policies, local_default)
        for policy in final:
            if policy in role.disallowed_policies or contains_glob(role.disallowed_policies_glob, policy):
                raise InvalidRequest(f'token policy "{policy}" is disallowed by this role')
        policies = final
    elif not requested:
        # Inherit the parent's set; "default" only if the parent has it.
        policies = sanitize_policies(parent.policies, False)
    elif not is_sudo:
        wanted = sanitize_policies(requested, False)
        held = set(sanitize_policies(parent.policies, False))
        if not set(wanted) <= held:
            raise InvalidRequest("child policies must be subset of parent")
        policies = wanted
        add_default = not no_default and "default" in parent.policies
    else:
        policies = requested
        add_default = not no_default
    final_policies = sanitize_policies(policies, add_default)
    if no_default:
        final_policies = [p for p in final_policies if p != "default"]
    for policy in final_policies:
        if policy in NON_ASSIGNABLE_POLICIES:
            raise InvalidRequest(f'cannot assign policy "{policy}"')
    return final_policies


def _check_custom_id(token_id: str) -> None:
    if token_id.startswith("hvs."):
        raise InvalidRequest("custom token ID cannot have the 'hvs.' prefix")
    if token_id.startswith("s."):
        raise InvalidRequest("custom token ID cannot have the 's.' prefix")
    if "." in token_id:
        raise InvalidRequest("custom token ID cannot have a '.' in the value")


async def create_token(
    ctx: Context, req: Request, f: CreateFields, *, orphan: bool, role: RoleEntry | None
) -> Response:
    """Create a token for the caller and return Vault's auth response.

    Raises:
        InvalidRequest: any of Vault's validation failures (see the module docstring).
    """
    parent = caller(ctx)
    if parent.num_uses > 0:
        raise InvalidRequest("restricted use token cannot generate child tokens")
    is_sudo = has_sudo(ctx, req)

    kind = f.type
    if role is not None and role.token_type == "service":
        kind = "service"
    if kind == "batch":
        raise InvalidRequest(BATCH_UNSUPPORTED)
    if kind not in ("", "service"):
        raise InvalidRequest("invalid 'token_type' value")
    if f.num_uses < 0:
        raise InvalidRequest("number of uses cannot be negative")
    if f.entity_alias:
        if role is None:
            raise InvalidRequest("'entity_alias' is only allowed in combination with token role")
        alias = f.entity_alias.lower()
        allowed = role.allowed_entity_aliases or ()
        if alias not in allowed and not contains_glob(allowed, alias):
            raise InvalidRequest("invalid 'entity_alias' value")
        raise InvalidRequest("entity aliases are not supported: strongroom has no identity store yet")
    meta = _meta(f.meta)

    renewable = f.renewable
    num_uses = f.num_uses
    path = "auth/token/" + req.path
    if role is not None:
        renewable = renewable and role.renewable
        if role.token_num_uses and (num_uses == 0 or role.token_num_uses < num_uses):
            num_uses = role.token_num_uses
        if role.path_suffix:
            path = f"{path}/{role.path_suffix}"
    name = display_name(f.display_name) if f.display_name else "token"

    if f.id:
        if not is_sudo:
            raise InvalidRequest("root or sudo privileges required to specify token id")
        _check_custom_id(f.id)

    policies = resolve_policies(f, role, parent, is_sudo)
    if ROOT_POLICY in policies and not parent.is_root:
        raise InvalidRequest("root tokens may not be created without parent token being root")

    if role is not None:
        orphan = role.orphan
    elif f.no_parent:
        if not is_sudo:
            raise InvalidRequest("root or sudo privileges required to create orphan token")
        orphan = True

    warnings: list[str] = []
    explicit_max = _seconds(f.explicit_max_ttl, "explicit_max_ttl") or 0
    if explicit_max < 0:
        raise InvalidRequest("explicit_max_ttl must be positive")
    period = _seconds(f.period, "period") or 0
    if period < 0:
        raise InvalidRequest("period must be positive")
    if period > 0 and not is_sudo:
        raise InvalidRequest("root or sudo privileges required to create periodic token")
    ttl = _seconds(f.ttl, "ttl")
    if ttl is None:
        ttl = _seconds(f.lease, "lease")
        if ttl is not None and ttl < 0:
            raise InvalidRequest("lease must be positive")
    elif ttl < 0:
        raise InvalidRequest("ttl must be positive")
    ttl = ttl or 0
    explicit_max_use, period_use = explicit_max, period
    if role is not None:
        if role.token_explicit_max_ttl:
            if explicit_max_use:
                explicit_max_use = min(explicit_max_use, role.token_explicit_max_ttl)
                warnings.append(
                    "Explicit max TTL specified both during creation call and in role; using the lesser value "
                    f"of {explicit_max_use} seconds"
                )
            else:
                explicit_max_use = role.token_explicit_max_ttl
        if role.token_period:
            if period_use:
                period_use = min(period_use, role.token_period)
                warnings.append(
                    "Period specified both during creation call and in role; using the lesser value of "
                    f"{period_use} seconds"
                )
            else:
                period_use = role.token_period

    now = ctx.clock.now()
    if period_use > 0 or ttl > 0 or ROOT_POLICY not in policies:
        ttl, ttl_warnings = calculate_ttl(
            ctx, start=now, backend_ttl=ttl, period=period_use, explicit_max_ttl=explicit_max_use, now=now
        )
        warnings.extend(ttl_warnings)
    if ttl == 0 and explicit_max_use > 0:
        ttl = explicit_max_use  # root tokens are still bound by an explicit max TTL
    if ttl == 0:
        if parent.expire_at:
            raise InvalidRequest("expiring root tokens cannot create non-expiring root tokens")
        renewable = False  # a token that never expires has nothing to renew

    entry = TokenEntry(
        token_hash=b"",
        accessor="",
        policies=tuple(policies),
        parent_hash=b"" if orphan else parent.token_hash,
        meta=meta,
        display_name=name,
        num_uses=num_uses,
        creation_time=now,
        creation_ttl=ttl,
        expire_at=now + ttl if ttl else 0.0,
        explicit_max_ttl=explicit_max,
        period=period,
        renewable=renewable,
        path=path,
        role=role.name if role is not None else "",
        no_default_policy=f.no_default_policy,
        lease_ttl=ttl,
    )
    token, entry = await ctx.tokens().create(entry, f.id or None)
    store = ctx.policies()
    for policy in policies:
        if policy != ROOT_POLICY and await store.get(policy) is None:
            warnings.append(f'Policy "{policy}" does not exist')
    return auth_response(entry, token, ttl, renewable, warnings)


async def create(ctx: Context, req: Request, f: CreateFields) -> Response:
    """``auth/token/create``."""
    return await create_token(ctx, req, f, orphan=False, role=None)


async def create_orphan(ctx: Context, req: Request, f: CreateFields) -> Response:
    """``auth/token/create-orphan``: like create, without a parent; access is left to the ACL, as Vault."""
    return await create_token(ctx, req, f, orphan=True, role=None)


async def create_with_role(ctx: Context, req: Request, f: CreateFields) -> Response:
    """``auth/token/create/:role_name``.

    Raises:
        InvalidRequest: the role does not exist (``unknown role NAME``).
    """
    name = check_name(f.role_name)
    role = await load_role(ctx, name)
    if role is None:
        raise InvalidRequest(f"unknown role {name}")
    return await create_token(ctx, req, f, orphan=False, role=role)


ROUTES: list[Route[Context, Any]] = [
    Route("create", CreateFields, {Operation.UPDATE: create}, summary="Create a token."),
    Route(
        "create-orphan", CreateFields, {Operation.UPDATE: create_orphan}, summary="Create an orphan token."
    ),
    Route(
        "create/{role_name}",
        CreateFields,
        {Operation.UPDATE: create_with_role},
        summary="Create a token against a role.",
    ),
]
