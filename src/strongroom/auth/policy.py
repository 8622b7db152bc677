"""ACL policy documents: parsing HCL or JSON into immutable rules, with Vault's (OpenBao's) semantics.

Guarantees:

* A document OpenBao 2.7 accepts is accepted, and yields the same rules, except for the features strongroom
  refuses rather than silently ignores (``control_group``, ``pagination_limit``,
  ``list_scan_response_keys_filter_path``: each would narrow access, so ignoring it would widen access) and
  for two lenient corners of Go's HCL library we do not copy: truncated JSON and trailing text after a
  JSON document. An expired stanza is still validated (Vault skips validating it).
* Errors are :class:`~strongroom.errors.InvalidRequest` whose messages copy OpenBao's, e.g.
  ``failed to parse policy: path "a": path "a": invalid capability "foo"``.

Reading the text is :mod:`strongroom.auth.hcl_reader`'s job; this module applies Vault's decoding rules.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from strongroom.auth.hcl_reader import HclError, Item, Obj, multierror, read_document
from strongroom.errors import InvalidRequest

CAPABILITIES = frozenset({"create", "read", "update", "patch", "delete", "list", "sudo", "deny", "scan"})
# Legacy ``policy = "..."`` shorthands, as Vault maps them.
_LEGACY = {
    "read": ("read", "list"),
    "write": ("create", "read", "update", "delete", "list"),
    "sudo": ("create", "read", "update", "delete", "list", "sudo"),
}
_PATH_KEYS = frozenset({
    "comment", "policy", "capabilities", "allowed_parameters", "denied_parameters", "required_parameters",
    "min_wrapping_ttl", "max_wrapping_ttl", "mfa_methods", "pagination_limit", "expiration",
    "list_scan_response_keys_filter_path", "control_group",
})  # fmt: skip
_IMMUTABLE = ("root", "response-wrapping")

ParamMap = Mapping[str, tuple[Any, ...]]


@dataclass(frozen=True)
class PathRule:
    """One ``path "..." { ... }`` stanza after normalisation.

    ``path`` has its leading ``/`` and, for a glob rule, its trailing ``*`` removed (a rule with segment
    wildcards keeps its ``*``, as Vault does). ``capabilities`` is exactly ``{"deny"}`` for a denying rule.
    Parameter maps are ``None`` when absent; their keys are lower-cased. TTLs are seconds (0 = unset);
    ``expiration`` is seconds since the epoch or ``None``. ``templated`` marks ``{{identity...}}`` paths.
    """

    path: str
    capabilities: frozenset[str]
    glob: bool = False
    has_segment_wildcards: bool = False
    allowed_parameters: ParamMap | None = field(default=None, hash=False)
    denied_parameters: ParamMap | None = field(default=None, hash=False)
    required_parameters: tuple[str, ...] = ()
    min_wrapping_ttl: float = 0.0
    max_wrapping_ttl: float = 0.0
    expiration: float | None = None
    templated: bool = False


@dataclass(frozen=True)
class Policy:
    """A parsed policy: its (normalised) name, the raw text as written, and its rules in document order."""

    name: str
    raw: str
    rules: tuple[PathRule, ...]


def normalize_policy_name(name: str) -> str:
    """Return ``name`` as Vault stores it (trimmed, lower-cased) for a policy write.

    Raises:
        InvalidRequest: the name is empty, or names an immutable policy (``root``, ``response-wrapping``).
    """
    clean = name.strip().lower()
    if not clean:
        raise InvalidRequest("policy name must be provided in the URL")
    if clean in _IMMUTABLE:
        raise InvalidRequest(f'cannot update "{clean}" policy')
    return clean


def parse_policy(raw: str, name: str = "") -> Policy:
    """Parse an HCL or JSON (text starting with ``{``) policy document.

    Raises:
        InvalidRequest: the text is not valid HCL/JSON, has unknown keys, or a rule is invalid.
    """
    try:
        items = read_document(raw)
        return Policy(name=name.strip().lower(), raw=raw, rules=_build_rules(items))
    except HclError as exc:
        raise InvalidRequest(f"failed to parse policy: {exc}") from None
    except RecursionError:
        # The reader is recursive; absurd nesting is the caller's error, not a crash.
        raise InvalidRequest("failed to parse policy: nesting too deep") from None


# --- from items to rules, mirroring OpenBao's ParseACLPolicy/parsePaths -----------------------------------


def _check_keys(items: list[Item], valid: frozenset[str] | set[str]) -> None:
    bad = [f'invalid key "{it.keys[0]}" on line {it.line}' for it in items if it.keys[0] not in valid]
    if bad:
        raise HclError(multierror(bad))


def _go_type(v: Any) -> str:
    return (
        "*ast.ListType"
        if isinstance(v, list)
        else "*ast.ObjectType"
        if isinstance(v, Obj)
        else ("*ast.LiteralType")
    )


def _as_str(v: Any, where: str) -> str:
    if isinstance(v, str):
        return v
    if isinstance(v, int | float) and not isinstance(v, bool):
        return repr(v)
    raise HclError(f"{where}: unknown type for string {_go_type(v)}")


def _values(items: list[Item], key: str) -> list[Any]:
    return [it.value for it in items if it.keys[0] == key]


def _str_list(items: list[Item], key: str) -> list[str]:
    out: list[str] = []
    for v in _values(items, key):
        if not isinstance(v, list):
            raise HclError(f"unknown slice type: {_go_type(v)}")
        out.extend(_as_str(e, f"root.{key}[{n}]") for n, e in enumerate(v))
    return out


def _plain(v: Any) -> Any:
    if isinstance(v, Obj):
        return {it.keys[0]: _plain(it.value) for it in v.items}
    return [_plain(e) for e in v] if isinstance(v, list) else v


def _param_map(items: list[Item], key: str) -> dict[str, tuple[Any, ...]] | None:
    found = _values(items, key)
    if not found:
        return None
    out: dict[str, tuple[Any, ...]] = {}
    for obj in found:
        if not isinstance(obj, Obj):
            raise HclError(f"root.{key}: not an object type for map ({_go_type(obj)})")
        for it in obj.items:
            if not isinstance(it.value, list):
                raise HclError(f"unknown slice type: {_go_type(it.value)}")
            # Vault lower-cases parameter names here and request keys at check time.
            out[it.keys[0].lower()] = tuple(_plain(e) for e in it.value)
    return out


_GO_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_GO_DURATION = re.compile(r"([0-9]*(?:\.[0-9]*)?)(ns|us|µs|μs|ms|s|m|h)")


def _duration(v: Any, key: str) -> float:
    """Seconds from an HCL value, as go-secure-stdlib's ParseDurationSecond reads it."""
    if isinstance(v, int | float) and not isinstance(v, bool):
        return float(v)
    if not isinstance(v, str):
        raise HclError(f"error parsing {key}: could not parse duration from input")
    s = v.strip()
    if s == "" or re.fullmatch(r"[+-]?[0-9]+", s):
        return float(int(s or "0"))
    if re.fullmatch(r"[0-9]+d", s):
        return int(s[:-1]) * 86400.0
    body, sign = (s[1:], -1.0 if s[0] == "-" else 1.0) if s[:1] in "+-" and s else (s, 1.0)
    parts = _GO_DURATION.findall(body)
    if body == "0":
        return 0.0
    if not parts or "".join(n + u for n, u in parts) != body or any(n in ("", ".") for n, _ in parts):
        raise HclError(f'error parsing {key}: time: invalid duration "{s}"')
    return sign * sum(float(n) * _GO_UNITS[u] for n, u in parts)


def _timestamp(v: Any, prefix: str) -> float:
    text = _as_str(v, "root.expiration")
    try:
        return float(int(text))
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise HclError(f"{prefix}invalid expiration time: could not parse string as date and time") from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


def _build_rules(items: list[Item]) -> tuple[PathRule, ...]:
    _check_keys(items, {"name", "path"})
    for v in _values(items, "name"):
        _as_str(v, "root.name")
    rules: list[PathRule] = []
    for item in items:
        if item.keys[0] != "path":
            continue
        key = item.keys[1] if len(item.keys) > 1 else "path"
        try:
            rule = _build_rule(key, item.value)
        except HclError as exc:
            raise HclError(f'path "{key}": {exc}') from None
        rules.append(rule)
    return tuple(rules)


def _build_rule(key: str, body: Any) -> PathRule:
    if not isinstance(body, Obj):
        raise HclError(f"cannot check HCL keys of type {_go_type(body)}")
    items = body.items
    _check_keys(items, _PATH_KEYS)
    inner = f'path "{key}": '
    for unsupported in ("control_group", "list_scan_response_keys_filter_path", "pagination_limit"):
        if any(v not in (0, "") for v in _values(items, unsupported)):
            raise HclError(f"{inner}{unsupported} is not supported by strongroom")
    try:
        caps = _str_list(items, "capabilities")
        legacy = [_as_str(v, "root.policy") for v in _values(items, "policy")][-1:]
        required = tuple(_str_list(items, "required_parameters"))
        _str_list(items, "mfa_methods")  # accepted and ignored, as OpenBao does
        allowed, denied = _param_map(items, "allowed_parameters"), _param_map(items, "denied_parameters")
    except HclError as exc:
        raise HclError(f"{inner}{exc}") from None
    expirations = _values(items, "expiration")
    expiration = _timestamp(expirations[-1], inner) if expirations else None
    path = key[1:] if key.startswith("/") else key
    if "+*" in path:
        raise HclError(f"path \"{path}\": invalid use of wildcards ('+*' is forbidden)")
    segments = path == "+" or "/+" in path or path.startswith("+/")
    glob = path.endswith("*") and not segments
    if glob:
        path = path[:-1]
    if legacy:
        if legacy[0] == "deny":
            caps = ["deny"]
        elif legacy[0] in _LEGACY:
            caps = [*caps, *_LEGACY[legacy[0]]]
        else:
            raise HclError(f'{inner}invalid policy "{legacy[0]}"')
    # The denying form; a granting rule is this with its capabilities and constraints filled in.
    base = PathRule(path, frozenset({"deny"}), glob, segments, expiration=expiration, templated="{{" in path)
    granted: set[str] = set()
    for cap in caps:
        if cap == "deny":
            # Vault stops here: a denying stanza's other settings are neither validated nor kept.
            return base
        if cap not in CAPABILITIES:
            raise HclError(f'{inner}invalid capability "{cap}"')
        granted.add(cap)
    ttl_values = {k: _values(items, k) for k in ("min_wrapping_ttl", "max_wrapping_ttl")}
    ttl = {k: _duration(v[-1], k) if v else 0.0 for k, v in ttl_values.items()}
    lo, hi = ttl["min_wrapping_ttl"], ttl["max_wrapping_ttl"]
    if lo and hi and hi < lo:
        raise HclError("max_wrapping_ttl cannot be less than min_wrapping_ttl")
    return replace(
        base,
        capabilities=frozenset(granted),
        allowed_parameters=None if allowed is None else MappingProxyType(allowed),
        denied_parameters=None if denied is None else MappingProxyType(denied),
        required_parameters=required,
        min_wrapping_ttl=lo,
        max_wrapping_ttl=hi,
    )
