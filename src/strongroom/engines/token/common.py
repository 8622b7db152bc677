"""Helpers shared by the ``auth/token/`` endpoint families: policy sets, durations, TTLs, auth bodies.

Each helper reproduces one piece of Vault's token store semantics (``vault/token_store.go``,
``sdk/helper/policyutil``, ``sdk/framework/lease.go``) so the endpoint modules read like the flow they
implement. Messages are Vault's, because clients and people match on them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Any

from strongroom.auth.tokens import TokenEntry
from strongroom.core.mounts import DEFAULT_LEASE_TTL
from strongroom.engines.context import Context
from strongroom.engines.fields import parse_duration
from strongroom.engines.framework import Request, Response
from strongroom.errors import InvalidRequest, PermissionDenied

ROOT_POLICY = "root"
DEFAULT_POLICY = "default"
NON_ASSIGNABLE_POLICIES = frozenset({"response-wrapping"})
"""Policies Vault keeps for its own tokens (response wrapping); never given to a created token."""

_DISPLAY_NAME_SANITIZE = re.compile(r"[^a-zA-Z0-9-]")
NAME_PATTERN = re.compile(r"\w(?:[\w\-.]*\w)?\Z")
"""Vault's ``framework.GenericNameRegex``: what a role name may look like."""


def caller(ctx: Context) -> TokenEntry:
    """Return the calling token's entry.

    Raises:
        PermissionDenied: the request carries no live token (the router normally rejects it earlier).
    """
    if ctx.caller is None:
        raise PermissionDenied()
    return ctx.caller


def full_path(req: Request) -> str:
    """The API path of ``req`` below ``/v1/`` (what ACL rules name), e.g. ``auth/token/create``."""
    return "auth/" + req.mount_point + req.path


def has_sudo(ctx: Context, req: Request) -> bool:
    """Whether the caller has root or ``sudo`` on the request's own path (Vault's ``SudoPrivilege``)."""
    if ctx.acl.is_root:
        return True
    return "sudo" in ctx.acl.capabilities(full_path(req))


def sanitize_policies(policies: Iterable[str], add_default: bool) -> list[str]:
    """Vault's ``SanitizePolicies``: lower-case, trim, drop empties, ``root`` alone, sort, deduplicate.

    ``default`` is added when ``add_default`` and it is missing (never next to ``root``).
    """
    cleaned = [p.strip().lower() for p in policies]
    cleaned = [p for p in cleaned if p]
    if ROOT_POLICY in cleaned:
        return [ROOT_POLICY]
    if add_default and DEFAULT_POLICY not in cleaned:
        cleaned.append(DEFAULT_POLICY)
    return sorted(set(cleaned))


def dedupe_lower(values: Iterable[str]) -> list[str]:
    """Vault's ``strutil.RemoveDuplicates(values, true)``: trimmed, lower-cased, sorted, unique, non-empty."""
    return sorted({v.strip().lower() for v in values if v.strip()})


def glob_match(pattern: str, value: str) -> bool:
    """``go-glob`` matching as Vault uses it for ``*_glob`` lists: ``*`` matches any run of characters."""
    regex = ".*".join(re.escape(part) for part in pattern.split("*"))
    return re.fullmatch(regex, value, flags=re.DOTALL) is not None


def contains_glob(patterns: Iterable[str], value: str) -> bool:
    """Whether any of ``patterns`` glob-matches ``value``."""
    return any(glob_match(p, value) for p in patterns)


def go_quote_list(values: Iterable[str]) -> str:
    """Format a list as Go's ``%q`` does: ``["a" "b"]``."""
    return "[" + " ".join('"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values) + "]"


def display_name(name: str) -> str:
    """Vault's token display name: ``token-`` + name, odd characters as ``-``, one trailing ``-`` dropped."""
    full = _DISPLAY_NAME_SANITIZE.sub("-", "token-" + name)
    return full[:-1] if full.endswith("-") else full


def parse_seconds(value: Any, name: str) -> int:
    """Parse a Vault duration (``ParseDurationSecond``): ints are seconds, strings may carry units.

    Raises:
        InvalidRequest: not a duration (Go's ``time: invalid duration "..."`` message).
    """
    if isinstance(value, str):
        text = value.strip()
        sign = -1 if text.startswith("-") else 1
        body = text[1:] if sign < 0 else text
        try:
            return sign * parse_duration(body, name) if body else 0
        except InvalidRequest:
            raise InvalidRequest(f'time: invalid duration "{value}"') from None
    try:
        return parse_duration(value, name)
    except InvalidRequest:
        raise InvalidRequest(f'time: invalid duration "{value}"') from None


def _go_duration(seconds: int) -> str:
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"


def human_duration(seconds: int) -> str:
    """Vault's ``humanDuration``: Go's duration text without zero parts (``"1h30m"``, ``"768h"``)."""
    if seconds == 0:
        return "0s"
    text = _go_duration(seconds)
    if text.endswith("m0s"):
        text = text[:-2]
    idx = text.find("h0m")
    if idx > 0:
        text = text[: idx + 1] + text[idx + 3 :]
    return text


def mount_ttls(ctx: Context) -> tuple[int, int]:
    """Return ``(default_ttl, max_ttl)`` of the token mount: its tuned values or the system's 768h."""
    config = ctx.mount.config or {}

    def value(key: str) -> int:
        try:
            return parse_seconds(config.get(key) or 0, key)
        except InvalidRequest:
            return 0

    max_ttl = value("max_lease_ttl") or DEFAULT_LEASE_TTL
    default_ttl = value("default_lease_ttl") or DEFAULT_LEASE_TTL
    return min(default_ttl, max_ttl), max_ttl


def calculate_ttl(
    ctx: Context,
    *,
    start: float,
    increment: int = 0,
    backend_ttl: int = 0,
    period: int = 0,
    explicit_max_ttl: int = 0,
    now: float | None = None,
) -> tuple[int, list[str]]:
    """Vault's ``framework.CalculateTTL`` for the token mount; returns the TTL and any warnings.

    A periodic token gets ``period`` (capped by the mount max) and is bounded only by its explicit max TTL
    counted from ``start``; any other token gets ``increment``, else ``backend_ttl``, else the mount
    default, bounded by ``start`` plus the smaller of the mount max and the explicit max TTL.

    ``now`` defaults to the clock; a caller that already read the clock passes its reading so that one
    request never sees two different seconds.

    Raises:
        InvalidRequest: the token is already past its maximum lifetime.
    """
    default_ttl, max_ttl = mount_ttls(ctx)
    # Vault truncates both instants to whole seconds before comparing.
    current = math.floor(ctx.clock.now() if now is None else now)
    begin = math.floor(start)
    if 0 < explicit_max_ttl < max_ttl:
        max_ttl = explicit_max_ttl
    warnings: list[str] = []
    limit: int | None = None
    if period > 0:
        if period > max_ttl:
            warnings.append(
                f'period of "{human_duration(period)}" exceeded the effective max_ttl of '
                f'"{human_duration(max_ttl)}"; period value is capped accordingly'
            )
            period = max_ttl
        ttl = period
        if explicit_max_ttl > 0:
            limit = begin + explicit_max_ttl
    else:
        ttl = increment or backend_ttl or default_ttl
        limit = begin + max_ttl
    if limit is not None:
        remaining = limit - current
        if remaining <= 0:
            raise InvalidRequest("past the max TTL, cannot renew")
        if remaining < ttl:
            warnings.append(
                f'TTL of "{human_duration(ttl)}" exceeded the effective max_ttl of '
                f'"{human_duration(remaining)}"; TTL value is capped accordingly'
            )
            ttl = remaining
    return ttl, warnings


def auth_body(entry: TokenEntry, client_token: str, lease_duration: int, renewable: bool) -> dict[str, Any]:
    """The ``auth`` object of a create or renew response, with Vault's keys."""
    policies = list(entry.policies)
    return {
        "client_token": client_token,
        "accessor": entry.accessor,
        "policies": policies,
        "token_policies": list(policies),
        "metadata": entry.meta,
        "lease_duration": lease_duration,
        "renewable": renewable,
        "entity_id": entry.entity_id,
        "token_type": entry.type,
        "orphan": entry.orphan,
        "mfa_requirement": None,
        "num_uses": entry.num_uses,
    }


def auth_response(
    entry: TokenEntry, client_token: str, lease_duration: int, renewable: bool, warnings: list[str]
) -> Response:
    """A create/renew response: ``data`` null, the token in ``auth``."""
    return Response(auth=auth_body(entry, client_token, lease_duration, renewable), warnings=warnings)


def envelope_with_status(ctx: Context, status: int, warnings: list[str]) -> Response:
    """An empty Vault envelope carrying ``warnings`` sent with a non-200 ``status`` (tidy's 202)."""
    body = {
        "request_id": ctx.request_id,
        "lease_id": "",
        "renewable": False,
        "lease_duration": 0,
        "data": None,
        "wrap_info": None,
        "warnings": warnings or None,
        "auth": None,
    }
    return Response.raw(body, status)
