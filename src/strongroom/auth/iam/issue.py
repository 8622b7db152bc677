"""Issuing Administrator and User tokens for a tenant (docs/spec/tokens.md section 2).

The authority block carries ``tenant``, ``role``, ``issued`` and ``expiry`` facts and a time check, and is
signed by the IAM key; its root key id is the key's id. Values enter the Datalog as parameters, never
spliced into the source, so a tenant name cannot inject Datalog.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

import biscuit_auth

from strongroom.auth.iam.policy import Role
from strongroom.auth.iam.signing import IamKey
from strongroom.auth.iam.text import token_from_biscuit
from strongroom.errors import InvalidRequest

MAX_TENANT_CHARS = 1024
"""A tenant is a namespace path; the namespace layer bounds segments, this only bounds the fact."""

_AUTHORITY = """\
tenant({tenant});
role({role});
issued({issued});
expiry({expiry});
check if time($time), $time < {expiry};
"""


def issue_token(key: IamKey, *, tenant: str, role: Role | str, ttl: float, now: float) -> str:
    """Return a new ``sb.`` token for ``tenant`` with ``role``, valid from ``now`` for ``ttl`` seconds.

    Times are seconds since the epoch; biscuit dates have whole seconds, so ``now`` is rounded down and
    the expiry up (a token never lives shorter than asked, and at most a second longer).

    Raises:
        InvalidRequest: an empty or malformed tenant (leading/trailing ``/``, control characters), an
            unknown role, or a TTL that is not a positive finite number of seconds.
    """
    role = _role(role)
    _check_tenant(tenant)
    if isinstance(ttl, bool) or not isinstance(ttl, int | float) or not math.isfinite(ttl) or ttl <= 0:
        raise InvalidRequest("ttl must be a positive number of seconds")
    issued = math.floor(now)
    expiry = math.ceil(now + ttl)
    builder = biscuit_auth.BiscuitBuilder(
        _AUTHORITY,
        {"tenant": tenant, "role": role.value, "issued": _date(issued), "expiry": _date(expiry)},
    )
    builder.set_root_key_id(key.key_id)
    return token_from_biscuit(builder.build(key.biscuit_private_key).to_base64())


def _role(role: Role | str) -> Role:
    try:
        return Role(role)
    except ValueError:
        raise InvalidRequest(f"unknown role {role!r}: expected admin or user") from None


def _check_tenant(tenant: str) -> None:
    if not isinstance(tenant, str) or not tenant or len(tenant) > MAX_TENANT_CHARS:
        raise InvalidRequest("a tenant is a non-empty namespace path")
    if tenant.startswith("/") or tenant.endswith("/") or any(ord(c) < 0x20 or ord(c) == 0x7F for c in tenant):
        raise InvalidRequest("a tenant is a namespace path without leading or trailing '/' or control characters")


def _date(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)
