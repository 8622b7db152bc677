"""``auth/token/roles`` (LIST) and ``auth/token/roles/:role_name`` (create, read, update, delete).

Roles are stored in the token mount's own view under blind-indexed names (``ctx.paths("roles")``), so no
role name appears in storage. Writes follow Vault's create/update split: on update only the parameters
given change; on create every parameter takes its default. Deprecated ``period`` and
``explicit_max_ttl`` are kept beside ``token_period`` and ``token_explicit_max_ttl`` exactly as Vault
keeps them, so a role reads back as written.

Deliberate differences: batch token types and bound CIDRs are refused with a 400 (strongroom issues only
service tokens and does not enforce CIDR bindings, so accepting them would promise what is not enforced).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any

from strongroom.barrier.paths import PathIndex
from strongroom.engines.context import Context
from strongroom.engines.fields import Duration, NoFields
from strongroom.engines.framework import Operation, Request, Response, Route
from strongroom.engines.token.common import NAME_PATTERN, dedupe_lower, mount_ttls, sanitize_policies
from strongroom.errors import CorruptRecord, InvalidRequest, UnsupportedPath

_PATH_SUFFIX = re.compile(r"\w[\w\-.]+\w")
# Vault prints its Go pattern, in which "-" before "." needs no escape.
_PATH_SUFFIX_TEXT = r"\w[\w-.]+\w"
_SERVICE_TYPES = {"service": "service", "default-service": "default-service", "default": "default-service"}
_BATCH_TYPES = frozenset({"batch", "default-batch"})
_VALUE_KEY = ("v",)


@dataclass(frozen=True)
class RoleEntry:
    """A stored token role (Vault's ``tsRoleEntry`` without the parts strongroom does not support)."""

    name: str
    allowed_policies: tuple[str, ...] = ()
    disallowed_policies: tuple[str, ...] = ()
    allowed_policies_glob: tuple[str, ...] = ()
    disallowed_policies_glob: tuple[str, ...] = ()
    orphan: bool = False
    renewable: bool = True
    path_suffix: str = ""
    period: int = 0
    explicit_max_ttl: int = 0
    token_period: int = 0
    token_explicit_max_ttl: int = 0
    token_no_default_policy: bool = False
    token_num_uses: int = 0
    token_type: str = "default-service"
    allowed_entity_aliases: tuple[str, ...] | None = None

    def to_json(self) -> dict[str, Any]:
        """Return the stored form."""
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, doc: Any) -> RoleEntry:
        """Parse the stored form.

        Raises:
            CorruptRecord: the record is not a role.
        """
        try:
            fields = dict(doc)
            for key in (
                "allowed_policies",
                "disallowed_policies",
                "allowed_policies_glob",
                "disallowed_policies_glob",
            ):
                fields[key] = tuple(fields.get(key) or ())
            if fields.get("allowed_entity_aliases") is not None:
                fields["allowed_entity_aliases"] = tuple(fields["allowed_entity_aliases"])
            return cls(**fields)
        except (TypeError, ValueError) as exc:
            raise CorruptRecord("malformed token role") from exc

    def describe(self) -> dict[str, Any]:
        """The ``data`` of a role read, with Vault's keys."""
        data: dict[str, Any] = {
            "allowed_entity_aliases": None
            if self.allowed_entity_aliases is None
            else list(self.allowed_entity_aliases),
            "allowed_policies": list(self.allowed_policies),
            "allowed_policies_glob": list(self.allowed_policies_glob),
            "disallowed_policies": list(self.disallowed_policies),
            "disallowed_policies_glob": list(self.disallowed_policies_glob),
            "explicit_max_ttl": self.explicit_max_ttl,
            "name": self.name,
            "orphan": self.orphan,
            "path_suffix": self.path_suffix,
            "period": self.period,
            "renewable": self.renewable,
            "token_explicit_max_ttl": self.token_explicit_max_ttl,
            "token_no_default_policy": self.token_no_default_policy,
            "token_period": self.token_period,
            "token_type": self.token_type,
        }
        if self.token_num_uses > 0:
            data["token_num_uses"] = self.token_num_uses
        return data


def check_name(name: str) -> str:
    """Return ``name`` if it is a valid role name.

    Raises:
        UnsupportedPath: Vault's route pattern would not match it, so Vault answers 404 too.
    """
    if not NAME_PATTERN.match(name):
        raise UnsupportedPath()
    return name


def _index(ctx: Context) -> PathIndex:
    return ctx.paths("roles")


async def load_role(ctx: Context, name: str) -> RoleEntry | None:
    """Return the role ``name`` or ``None``."""
    index = _index(ctx)
    doc = await index.entry(index.id_of(name)).get_json(*_VALUE_KEY)
    return None if doc is None else RoleEntry.from_json(doc)


@dataclass(frozen=True)
class RoleFields:
    """Parameters of a role write; ``None`` means "not given" (an update then keeps the stored value)."""

    role_name: str
    allowed_policies: list[str] | None = None
    disallowed_policies: list[str] | None = None
    allowed_policies_glob: list[str] | None = None
    disallowed_policies_glob: list[str] | None = None
    orphan: bool | None = None
    renewable: bool | None = None
    path_suffix: str | None = None
    period: Duration | None = None
    explicit_max_ttl: Duration | None = None
    token_period: Duration | None = None
    token_explicit_max_ttl: Duration | None = None
    token_no_default_policy: bool | None = None
    token_num_uses: int | None = None
    token_type: str | None = None
    allowed_entity_aliases: list[str] | None = None
    bound_cidrs: list[str] | None = None
    token_bound_cidrs: list[str] | None = None


async def role_exists(ctx: Context, req: Request, f: RoleFields) -> bool:
    """Existence check: decides whether a write is a ``create`` or an ``update`` (for the ACL too)."""
    return await load_role(ctx, check_name(f.role_name)) is not None


def _pick(given: Any, stored: Any, creating: bool, default: Any) -> Any:
    if given is not None:
        return given
    return default if creating else stored


async def write_role(ctx: Context, req: Request, f: RoleFields) -> Response | None:
    """Create or update a role; 204, or 200 with warnings as Vault answers.

    Raises:
        InvalidRequest: an invalid path suffix, token type or count, or an unsupported feature.
    """
    name = check_name(f.role_name)
    creating = req.operation is Operation.CREATE
    stored = await load_role(ctx, name) or RoleEntry(name=name)
    warnings: list[str] = []
    if f.bound_cidrs or f.token_bound_cidrs:
        raise InvalidRequest("bound CIDRs are not supported by strongroom token roles")
    path_suffix = _pick(f.path_suffix, stored.path_suffix, creating, "")
    if f.path_suffix and not _PATH_SUFFIX.search(f.path_suffix):
        raise InvalidRequest(
            "given role path suffix contains invalid characters; must match " + _PATH_SUFFIX_TEXT
        )
    if ".." in path_suffix:
        raise InvalidRequest("error registering path suffix: path cannot contain parent references")
    token_type = stored.token_type
    if f.token_type is not None:
        kind = f.token_type.strip().lower()
        if kind in _BATCH_TYPES:
            raise InvalidRequest("batch tokens are not supported by strongroom; use 'service'")
        if kind not in _SERVICE_TYPES:
            raise InvalidRequest(f"invalid 'token_type' value \"{f.token_type}\"")
        token_type = _SERVICE_TYPES[kind]
    num_uses = stored.token_num_uses if f.token_num_uses is None else f.token_num_uses
    if num_uses < 0:
        raise InvalidRequest("error parsing role fields: 'token_num_uses' cannot be negative")
    if f.token_period is not None and f.token_period < 0:
        raise InvalidRequest("error parsing role fields: 'token_period' cannot be negative")

    period, token_period = stored.period, stored.token_period
    if f.token_period is None:
        if f.period is not None:
            period = token_period = f.period
    else:
        if f.period is not None:
            warnings.append(
                "Both 'token_period' and deprecated 'period' value supplied, ignoring the deprecated value"
            )
        period, token_period = 0, f.token_period

    emax, token_emax = stored.explicit_max_ttl, stored.token_explicit_max_ttl
    if f.token_explicit_max_ttl is None:
        if f.explicit_max_ttl is not None:
            emax = token_emax = f.explicit_max_ttl
        final_emax = emax
    else:
        if f.explicit_max_ttl is not None:
            warnings.append(
                "Both 'token_explicit_max_ttl' and deprecated 'explicit_max_ttl' value supplied, "
                "ignoring the deprecated value"
            )
        emax, token_emax = 0, f.token_explicit_max_ttl
        final_emax = token_emax
    _, max_ttl = mount_ttls(ctx)
    if final_emax and final_emax > max_ttl:
        warnings.append(
            f"Given explicit max TTL of {final_emax} is greater than system/mount allowed value of {max_ttl} "
            "seconds; until this is fixed attempting to create tokens against this role will result in an error"
        )

    def policies(given: list[str] | None, current: tuple[str, ...], sanitize: bool) -> tuple[str, ...]:
        if given is None:
            return () if creating else current
        return tuple(sanitize_policies(given, False) if sanitize else dedupe_lower(given))

    aliases = stored.allowed_entity_aliases
    if f.allowed_entity_aliases is not None:
        aliases = tuple(dedupe_lower(f.allowed_entity_aliases))
    role = RoleEntry(
        name=name,
        allowed_policies=policies(f.allowed_policies, stored.allowed_policies, True),
        disallowed_policies=policies(f.disallowed_policies, stored.disallowed_policies, False),
        allowed_policies_glob=policies(f.allowed_policies_glob, stored.allowed_policies_glob, True),
        disallowed_policies_glob=policies(f.disallowed_policies_glob, stored.disallowed_policies_glob, False),
        orphan=_pick(f.orphan, stored.orphan, creating, False),
        renewable=_pick(f.renewable, stored.renewable, creating, True),
        path_suffix=path_suffix,
        period=period,
        explicit_max_ttl=emax,
        token_period=token_period,
        token_explicit_max_ttl=token_emax,
        token_no_default_policy=_pick(
            f.token_no_default_policy, stored.token_no_default_policy, False, False
        ),
        token_num_uses=num_uses,
        token_type=token_type,
        allowed_entity_aliases=aliases,
    )
    index = _index(ctx)
    role_id = await index.link(name)
    index.entry(role_id).put_json(_VALUE_KEY, role.to_json())
    return Response(warnings=warnings) if warnings else None


async def read_role(ctx: Context, req: Request, f: RoleFields) -> Response | None:
    """Return a role (``None`` -> 404)."""
    role = await load_role(ctx, check_name(f.role_name))
    return None if role is None else Response(data=role.describe())


async def delete_role(ctx: Context, req: Request, f: RoleFields) -> None:
    """Delete a role; deleting a missing role is a 204 as well (Vault)."""
    name = check_name(f.role_name)
    index = _index(ctx)
    role_id = index.id_of(name)
    if await index.entry(role_id).exists(*_VALUE_KEY):
        index.entry(role_id).clear(*_VALUE_KEY)
        await index.unlink(name)


async def list_roles(ctx: Context, req: Request, f: NoFields) -> Response:
    """LIST the role names (an empty list becomes a 404 in the router, as Vault answers)."""
    return Response(data={"keys": await _index(ctx).list("")})


ROUTES: list[Route[Context, Any]] = [
    Route("roles", NoFields, {Operation.LIST: list_roles}, summary="List token roles."),
    Route("roles/", NoFields, {Operation.LIST: list_roles}, summary="List token roles."),
    Route(
        "roles/{role_name}",
        RoleFields,
        {
            Operation.READ: read_role,
            Operation.CREATE: write_role,
            Operation.UPDATE: write_role,
            Operation.DELETE: delete_role,
        },
        existence=role_exists,
        summary="Create, read, update or delete a token role.",
    ),
]
