"""The ACL: a token's policies compiled into a structure answering "may this request happen?".

Semantics follow Vault/OpenBao's ``ACL`` (``vault/acl.go``) rule for rule:

* Rules for the same path string from several policies merge: capabilities are unioned, ``deny`` wins and
  clears parameter constraints, wrapping TTL bounds keep the smaller set value, parameter maps merge value
  lists (an empty list, meaning "any value", absorbs a non-empty one), required parameters are unioned.
  Exact, glob (``*``) and segment-wildcard (``+``) rules live in separate tables and never merge together.
* Lookup: an exact rule wins; a LIST also tries the path without its trailing ``/`` as an exact rule; then
  the longest matching glob competes with every matching ``+`` rule by Vault's priority (first wildcard
  later in the path; not ending in ``*``; fewer ``+`` segments; longer; lexicographically larger); a LIST
  on ``p/`` finally retries that on ``p``.
* ``capabilities()`` answers like ``sys/capabilities`` (sorted, ``["deny"]`` for nothing, ``["root"]``).

An ACL is immutable once built and safe to share between requests; build one per distinct policy set.
Paths using identity templating (``{{identity...}}``) are ignored, as Vault ignores them for a token without
an entity; strongroom has no identity store yet.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from strongroom.auth.policy import PathRule, Policy
from strongroom.clock import SystemClock
from strongroom.errors import InvalidRequest, PermissionDenied

_BITS = {"deny": 1, "create": 2, "read": 4, "update": 8, "delete": 16, "list": 32, "sudo": 64, "patch": 128,
         "scan": 256}  # fmt: skip
_DENY, _SUDO = _BITS["deny"], _BITS["sudo"]
# Operations whose request data Vault checks against parameter constraints.
_PARAM_OPS = frozenset({"read", "update", "create", "patch"})
_OPERATION_BITS = {op: _BITS[op] for op in ("create", "read", "update", "patch", "delete", "list", "scan")}
# Vault checks these logical operations against the update capability.
_OPERATION_BITS |= {"revoke": _BITS["update"], "renew": _BITS["update"], "rollback": _BITS["update"]}
OPERATIONS = frozenset(_OPERATION_BITS)


class _Perms:
    """The merged permissions for one path string; mutated only while the ACL is built."""

    __slots__ = ("allowed", "bits", "denied", "max_wrap", "min_wrap", "required")

    def __init__(self, rule: PathRule) -> None:
        self.bits = sum(_BITS[c] for c in rule.capabilities)
        self.min_wrap, self.max_wrap = rule.min_wrapping_ttl, rule.max_wrapping_ttl
        self.allowed = None if rule.allowed_parameters is None else dict(rule.allowed_parameters)
        self.denied = None if rule.denied_parameters is None else dict(rule.denied_parameters)
        self.required = tuple(rule.required_parameters)

    def merge(self, rule: PathRule) -> None:
        if self.bits & _DENY:
            return
        if "deny" in rule.capabilities:
            self.bits, self.allowed, self.denied = _DENY, None, None
            return
        self.bits |= sum(_BITS[c] for c in rule.capabilities)
        # The smaller of two set bounds wins, so merging never lengthens a wrapped response's life.
        if rule.max_wrapping_ttl > 0 and (self.max_wrap == 0 or rule.max_wrapping_ttl < self.max_wrap):
            self.max_wrap = rule.max_wrapping_ttl
        if rule.min_wrapping_ttl > 0 and (self.min_wrap == 0 or rule.min_wrapping_ttl < self.min_wrap):
            self.min_wrap = rule.min_wrapping_ttl
        self.allowed = _merge_params(self.allowed, rule.allowed_parameters)
        self.denied = _merge_params(self.denied, rule.denied_parameters)
        self.required += tuple(p for p in rule.required_parameters if p not in self.required)


def _merge_params(
    mine: dict[str, tuple[Any, ...]] | None, theirs: Mapping[str, tuple[Any, ...]] | None
) -> dict[str, tuple[Any, ...]] | None:
    if not theirs:
        return mine
    if mine is None:
        return dict(theirs)
    for key, values in theirs.items():
        if not values or (key in mine and not mine[key]):
            mine[key] = ()
        else:
            mine[key] = values + mine.get(key, ())
    return mine


class _Wildcard:
    """A precompiled ``+`` rule and its priority key (bigger wins)."""

    __slots__ = ("is_prefix", "key", "parts", "perms")

    def __init__(self, full_path: str, perms: _Perms) -> None:
        self.perms = perms
        self.is_prefix = full_path.endswith("*")
        path = full_path[:-1] if self.is_prefix else full_path
        self.parts = tuple(path.split("/"))
        # Vault measures positions and lengths in bytes, and takes the first "+" anywhere in the string.
        first = len(full_path[: full_path.index("+")].encode())
        self.key = (first, 0 if self.is_prefix else 1, -self.parts.count("+"), len(path.encode()), path)

    def matches(self, parts: list[str]) -> bool:
        n = len(self.parts)
        if len(parts) < n or (not self.is_prefix and len(parts) != n):
            return False
        last = n - 1
        for i, want in enumerate(self.parts):
            got = parts[i]
            if want != "+" and want != got and not (self.is_prefix and i == last and got.startswith(want)):
                return False
        return True


class ACL:
    """The compiled policies of one token.

    Build with ``ACL(policies, now=...)`` (rules whose ``expiration`` is before ``now`` are dropped, so a
    cached ACL must be rebuilt at :attr:`expires_at`) or :meth:`root`. A sole policy named ``root`` also
    yields the root ACL.

    Raises:
        InvalidRequest: ``root`` is combined with other policies (Vault refuses that too).
    """

    __slots__ = ("_exact", "_glob_lengths", "_globs", "_is_root", "_wildcards", "expires_at")

    def __init__(self, policies: Sequence[Policy], *, now: float | None = None) -> None:
        moment = SystemClock().now() if now is None else now
        self._is_root = False
        self.expires_at: float | None = None
        exact: dict[str, _Perms] = {}
        globs: dict[str, _Perms] = {}
        wild: dict[str, _Perms] = {}
        for policy in policies:
            if policy.name == "root":
                if len(policies) != 1:
                    raise InvalidRequest("other policies present along with root")
                self._is_root = True
            for rule in policy.rules:
                if rule.templated or (rule.expiration is not None and moment > rule.expiration):
                    continue
                if rule.expiration is not None:
                    self.expires_at = min(rule.expiration, self.expires_at or rule.expiration)
                table = wild if rule.has_segment_wildcards else globs if rule.glob else exact
                if (perms := table.get(rule.path)) is None:
                    table[rule.path] = _Perms(rule)
                else:
                    perms.merge(rule)
        self._exact = exact
        self._globs = globs
        # Distinct glob lengths, longest first: a longest-prefix search is then a few dict probes.
        self._glob_lengths = sorted({len(p) for p in globs}, reverse=True)
        self._wildcards = tuple(_Wildcard(p, perms) for p, perms in wild.items())

    @classmethod
    def root(cls) -> ACL:
        """The ACL of a root token: every operation on every path, sudo included (one shared instance)."""
        global _ROOT
        if _ROOT is None:
            acl = cls(())
            acl._is_root = True
            _ROOT = acl
        return _ROOT

    @property
    def is_root(self) -> bool:
        """Whether this is the root ACL."""
        return self._is_root

    def capabilities(self, path: str) -> list[str]:
        """The capabilities on ``path`` exactly as Vault's ``sys/capabilities`` lists them (sorted)."""
        if self._is_root:
            return ["root"]
        perms = self._lookup(path, listing=True)
        bits = 0 if perms is None else perms.bits
        if bits & _DENY or not bits:
            return ["deny"]
        return sorted(name for name, bit in _BITS.items() if bits & bit)

    def check_any(self, operations: tuple[str, ...], path: str) -> None:
        """Raise :class:`PermissionDenied` unless at least one of ``operations`` is granted on ``path``.

        A coarse pre-check (parameters and sudo are not considered); :meth:`check` decides for real.
        """
        if self._is_root:
            return
        perms = self._lookup(path, listing="list" in operations or "scan" in operations)
        if perms is None or perms.bits & _DENY or not any(perms.bits & _BITS.get(op, 0) for op in operations):
            raise PermissionDenied()

    def has_access_under(self, prefix: str) -> bool:
        """Whether the ACL grants any non-deny capability at ``prefix`` or on any path below it.

        This is Vault's ``hasMountAccess``: ``sys/internal/ui/mounts/:path`` shows a mount to a token that
        can reach something inside it, even when it has no rule on the mount path itself.
        """
        if self._is_root:
            return True
        if self.capabilities(prefix) != ["deny"]:
            return True
        useful = sum(_BITS[c] for c in ("create", "read", "update", "delete", "list", "patch"))
        for table in (self._exact, self._globs):
            for path, perms in table.items():
                if path.startswith(prefix) and perms.bits & useful and not perms.bits & _DENY:
                    return True
        parts = prefix.rstrip("/").split("/")
        for wc in self._wildcards:
            head = wc.parts[: len(parts)]
            if (
                all(w in ("+", p) for w, p in zip(head, parts, strict=False))
                and wc.perms.bits & useful
                and not wc.perms.bits & _DENY
            ):
                return True
        return False

    def check(
        self,
        operation: str,
        path: str,
        params: Mapping[str, Any] | None = None,
        *,
        requires_sudo: bool = False,
        wrap_ttl: float | None = None,
    ) -> None:
        """Allow ``operation`` on ``path`` with request data ``params``, or raise.

        ``operation`` is one of :data:`OPERATIONS` (the caller decides create vs update by an existence
        check, as Vault does); ``requires_sudo`` is set for Vault's root-protected paths; ``wrap_ttl`` is
        the requested response-wrapping TTL in seconds, checked against ``min/max_wrapping_ttl``.

        Raises:
            PermissionDenied: not allowed (also for an unknown operation: Vault denies those too).
        """
        if self._is_root:
            return
        bit = _OPERATION_BITS.get(operation, 0)
        perms = self._lookup(path, listing=operation in ("list", "scan"))
        if perms is None or not perms.bits & bit or (requires_sudo and not perms.bits & _SUDO):
            raise PermissionDenied()
        if perms.max_wrap > 0 and (wrap_ttl is None or wrap_ttl > perms.max_wrap):
            raise PermissionDenied()
        if perms.min_wrap > 0 and (wrap_ttl is None or wrap_ttl < perms.min_wrap):
            raise PermissionDenied()
        if perms.min_wrap and perms.max_wrap and perms.max_wrap < perms.min_wrap:
            raise PermissionDenied()  # possible only after merging; each rule was checked at parse time
        if operation in _PARAM_OPS and not _params_allowed(perms, params or {}):
            raise PermissionDenied()

    def _lookup(self, path: str, *, listing: bool) -> _Perms | None:
        path = path.lstrip("/")
        perms = self._exact.get(path)
        if perms is not None:
            return perms
        if listing and path.endswith("/") and (perms := self._exact.get(path[:-1])) is not None:
            return perms
        perms = self._non_exact(path)
        if perms is None and listing and path.endswith("/"):
            perms = self._non_exact(path[:-1])
        return perms

    def _non_exact(self, path: str) -> _Perms | None:
        best_key: tuple[Any, ...] | None = None
        best: _Perms | None = None
        for length in self._glob_lengths:
            if length <= len(path) and (perms := self._globs.get(path[:length])) is not None:
                if not self._wildcards:
                    return perms
                prefix = path[:length]
                size = len(prefix.encode())
                best_key, best = (size, 0, 0, size, prefix), perms
                break
        if self._wildcards:
            parts = path.split("/")
            for wc in self._wildcards:
                if (best_key is None or wc.key > best_key) and wc.matches(parts):
                    best_key, best = wc.key, wc.perms
        return best


_ROOT: ACL | None = None


def _params_allowed(perms: _Perms, data: Mapping[str, Any]) -> bool:
    # Vault lower-cases the policy's name but looks it up verbatim in the request.
    if any(p.lower() not in data for p in perms.required):
        return False
    if not data:
        return True
    denied = perms.denied
    if denied:
        if "*" in denied:
            return False
        for name, value in data.items():
            values = denied.get(name.lower())
            if values is not None and _value_in(value, values):
                return False
    allowed = perms.allowed
    if not allowed:
        return True
    allow_all = "*" in allowed
    if allow_all and len(allowed) == 1:
        return True
    for name, value in data.items():
        values = allowed.get(name.lower())
        if (values is None and not allow_all) or (values is not None and not _value_in(value, values)):
            return False
    return True


def _value_in(value: Any, options: tuple[Any, ...]) -> bool:
    """Vault's ``valueInParameterList``: an empty list matches anything; strings match with ``*`` globs."""
    if not options:
        return True
    for option in options:
        if option is None or value is None:
            if option is value:
                return True
        elif isinstance(option, str) and isinstance(value, str):
            if _glob_match(option, value):
                return True
        elif _deep_equal(option, value):
            return True
    return False


def _glob_match(pattern: str, value: str) -> bool:
    """Vault's ``GlobbedStringsMatch``: a leading and/or trailing ``*``; a lone ``*`` is literal."""
    if len(pattern) < 2:
        return value == pattern
    head, tail = pattern.startswith("*"), pattern.endswith("*")
    if head and tail:
        return pattern[1:-1] in value
    if head:
        return value.endswith(pattern[1:])
    if tail:
        return value.startswith(pattern[:-1])
    return value == pattern


def _deep_equal(option: Any, value: Any) -> bool:
    """``reflect.DeepEqual`` between a policy value and request data as Vault decodes them.

    Vault decodes JSON request numbers as ``json.Number``, which never equals a number written in a policy;
    we keep that, so a policy allows exactly the requests it allows in Vault.
    """
    if isinstance(value, int | float) and not isinstance(value, bool):
        return False
    if isinstance(option, list | tuple) and isinstance(value, list | tuple):
        return len(option) == len(value) and all(map(_deep_equal, option, value))
    if isinstance(option, dict) and isinstance(value, dict):
        return option.keys() == value.keys() and all(_deep_equal(option[k], value[k]) for k in option)
    return type(option) is type(value) and bool(option == value)
