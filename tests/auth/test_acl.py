"""ACL evaluation: precedence, merging, parameters, wrapping TTLs, sudo, LIST's trailing slash."""

from __future__ import annotations

from typing import Any

import pytest

from strongroom.auth.acl import ACL
from strongroom.auth.default_policies import DEFAULT_POLICY_TEXT
from strongroom.auth.policy import Policy, parse_policy
from strongroom.errors import InvalidRequest, PermissionDenied


def acl(*texts: str, now: float = 1_700_000_000.0) -> ACL:
    return ACL([parse_policy(t, f"p{i}") for i, t in enumerate(texts)], now=now)


def rule(path: str, *caps: str, extra: str = "") -> str:
    quoted = ", ".join(f'"{c}"' for c in caps)
    return f'path "{path}" {{\n capabilities = [{quoted}]\n{extra}\n}}\n'


def allowed(a: ACL, op: str, path: str, params: dict[str, Any] | None = None, **kw: Any) -> bool:
    try:
        a.check(op, path, params, **kw)
    except PermissionDenied:
        return False
    return True


def test_no_rules_means_deny() -> None:
    a = acl("")
    assert a.capabilities("secret/x") == ["deny"]
    assert not allowed(a, "read", "secret/x")


def test_capabilities_are_sorted() -> None:
    a = acl(rule("a", "update", "read", "sudo", "create", "list", "delete", "patch", "scan"))
    assert a.capabilities("a") == ["create", "delete", "list", "patch", "read", "scan", "sudo", "update"]


def test_exact_beats_glob() -> None:
    a = acl(rule("secret/*", "read"), rule("secret/a", "update"))
    assert a.capabilities("secret/a") == ["update"]
    assert a.capabilities("secret/b") == ["read"]


def test_longest_glob_wins() -> None:
    a = acl(rule("secret/*", "read"), rule("secret/app/*", "list"))
    assert a.capabilities("secret/app/x") == ["list"]
    assert a.capabilities("secret/apx") == ["read"]


def test_priority_1_later_first_wildcard_wins() -> None:
    # foo/bar/+/baz (first "+" at 8) beats foo/+/bar/baz (at 4); a glob foo/a* (at 5) beats foo/+ (at 4).
    a = acl(rule("foo/+/bar/baz", "read"), rule("foo/bar/+/baz", "list"))
    assert a.capabilities("foo/bar/bar/baz") == ["list"]
    b = acl(rule("foo/a*", "read"), rule("foo/+", "list"))
    assert b.capabilities("foo/ab") == ["read"]
    c = acl(rule("foo/*", "read"), rule("foo/+/x", "list"))  # glob at 4, "+" at 4: tie goes to rule 2
    assert c.capabilities("foo/y/x") == ["list"]


def test_priority_2_not_ending_in_star_wins() -> None:
    a = acl(rule("foo/+/ba*", "read"), rule("foo/+/bar", "list"))
    assert a.capabilities("foo/x/bar") == ["list"]
    b = acl(rule("foo/*", "read"), rule("foo/+", "list"))
    assert b.capabilities("foo/x") == ["list"]
    assert b.capabilities("foo/x/y") == ["read"]  # foo/+ needs exactly two segments


def test_priority_3_fewer_plus_segments_wins() -> None:
    a = acl(rule("foo/+/+/baz", "read"), rule("foo/+/bar/baz", "list"))
    assert a.capabilities("foo/x/bar/baz") == ["list"]


def test_priority_4_longer_wins() -> None:
    a = acl(rule("foo/+/bar/b*", "read"), rule("foo/+/bar/ba*", "list"))
    assert a.capabilities("foo/x/bar/baz") == ["list"]


def test_priority_5_lexicographically_larger_wins() -> None:
    # Ties on rules 1-4 need Vault's quirk that the "first wildcard" is the first "+" character anywhere,
    # here inside the literal segment "q+": both rules then tie at index 1, one "+" segment, length 6.
    a = acl(rule("q+/+/z", "read"), rule("q+/x/+", "list"))
    assert a.capabilities("q+/x/z") == ["list"]  # "q+/x/+" > "q+/+/z"
    b = acl(rule("q+/x/+", "list"), rule("q+/+/z", "read"))
    assert b.capabilities("q+/x/z") == ["list"]  # independent of order


def test_segment_wildcard_with_trailing_glob() -> None:
    a = acl(rule("kv/+/data/*", "read"))
    assert a.capabilities("kv/team/data/app/x") == ["read"]
    assert a.capabilities("kv/team/data/") == ["read"]
    assert a.capabilities("kv/team/meta/x") == ["deny"]
    assert a.capabilities("kv/team") == ["deny"]


def test_plus_inside_a_segment_is_literal() -> None:
    a = acl(rule("p/+q/r", "read"))
    assert a.capabilities("p/+q/r") == ["read"]
    assert a.capabilities("p/xq/r") == ["deny"]


def test_star_in_the_middle_is_literal() -> None:
    a = acl(rule("m/*/n", "read"))
    assert a.capabilities("m/*/n") == ["read"]
    assert a.capabilities("m/x/n") == ["deny"]


def test_merge_same_path_unions_and_deny_wins_in_any_order() -> None:
    assert acl(rule("a", "read"), rule("a", "list")).capabilities("a") == ["list", "read"]
    assert acl(rule("a", "read"), rule("a", "deny")).capabilities("a") == ["deny"]
    assert acl(rule("a", "deny"), rule("a", "read")).capabilities("a") == ["deny"]


def test_exact_and_glob_rules_do_not_merge() -> None:
    a = acl(rule("secret/a", "deny"), rule("secret/a*", "read"))
    assert a.capabilities("secret/a") == ["deny"]
    assert a.capabilities("secret/ab") == ["read"]


def test_deny_glob_does_not_override_a_more_specific_allow() -> None:
    a = acl(rule("secret/*", "deny"), rule("secret/public/*", "read"))
    assert a.capabilities("secret/public/x") == ["read"]
    assert a.capabilities("secret/private") == ["deny"]


def test_leading_slashes_are_ignored() -> None:
    a = acl(rule("/x/y", "read"))
    assert a.capabilities("x/y") == ["read"]
    assert a.capabilities("//x/y") == ["read"]


def test_list_tries_path_without_trailing_slash() -> None:
    a = acl(rule("secret/dir", "list", "read"))
    assert allowed(a, "list", "secret/dir/")
    assert not allowed(a, "read", "secret/dir/")  # only LIST falls back
    assert a.capabilities("secret/dir/") == ["list", "read"]  # capabilities use LIST's lookup


def test_list_retries_wildcards_without_trailing_slash() -> None:
    a = acl(rule("kv/+/dir", "list"))
    assert allowed(a, "list", "kv/x/dir/")
    assert not allowed(a, "read", "kv/x/dir/")


def test_operations_map_to_capabilities() -> None:
    a = acl(rule("a", "create", "read"))
    assert allowed(a, "create", "a")
    assert allowed(a, "read", "a")
    for op in ("update", "patch", "delete", "list", "scan", "help", "bogus", "renew", "sudo", "deny"):
        assert not allowed(a, op, "a"), op
    assert allowed(acl(rule("a", "update")), "renew", "a")  # revoke/renew/rollback need update


def test_sudo() -> None:
    a = acl(rule("sys/audit", "update"), rule("sys/mounts", "update", "sudo"))
    assert allowed(a, "update", "sys/audit")
    assert not allowed(a, "update", "sys/audit", requires_sudo=True)
    assert allowed(a, "update", "sys/mounts", requires_sudo=True)
    assert not allowed(acl(rule("x", "sudo")), "read", "x")  # sudo alone grants no operation


def test_root() -> None:
    root = ACL.root()
    assert root.is_root
    assert root.capabilities("anything") == ["root"]
    root.check("delete", "sys/seal", {"x": 1}, requires_sudo=True)
    assert ACL([Policy("root", "", ())]).is_root
    with pytest.raises(InvalidRequest, match="other policies present along with root"):
        ACL([Policy("root", "", ()), parse_policy("", "x")])


def test_allowed_parameters() -> None:
    a = acl(rule("a", "update", extra='allowed_parameters = { "name" = [], "env" = ["prod-*", "dev"] }'))
    assert allowed(a, "update", "a", {"name": "anything", "env": "prod-eu"})
    assert allowed(a, "update", "a", {"NAME": "x"})  # request keys are lower-cased
    assert allowed(a, "update", "a", {})  # no data, nothing to check
    assert not allowed(a, "update", "a", {"env": "staging"})
    assert not allowed(a, "update", "a", {"other": "x"})
    assert allowed(a, "delete", "a", {"other": "x"}) is False  # no delete capability at all


def test_allowed_parameters_star_key() -> None:
    only_star = acl(rule("a", "update", extra='allowed_parameters = { "*" = ["ignored"] }'))
    assert allowed(only_star, "update", "a", {"anything": "goes"})
    star_and_key = acl(rule("a", "update", extra='allowed_parameters = { "*" = [], "env" = ["dev"] }'))
    assert allowed(star_and_key, "update", "a", {"other": 1, "env": "dev"})
    assert not allowed(star_and_key, "update", "a", {"env": "prod"})


def test_denied_parameters_take_precedence() -> None:
    extra = 'allowed_parameters = { "*" = [] }\ndenied_parameters = { "admin" = ["true", "yes*"] }'
    a = acl(rule("a", "update", extra=extra))
    assert allowed(a, "update", "a", {"admin": "no", "x": 1})
    assert not allowed(a, "update", "a", {"admin": "yes-please"})
    deny_all = acl(rule("a", "update", extra='denied_parameters = { "*" = [] }'))
    assert not allowed(deny_all, "update", "a", {"x": 1})
    assert allowed(deny_all, "update", "a", {})


def test_parameters_not_checked_for_list_and_delete() -> None:
    a = acl(
        rule("a", "list", "delete", extra='denied_parameters = { "*" = [] }\nrequired_parameters = ["x"]')
    )
    assert allowed(a, "list", "a", {"y": 1})
    assert allowed(a, "delete", "a", {"y": 1})


def test_parameters_checked_for_read() -> None:
    a = acl(rule("a", "read", extra='allowed_parameters = { "version" = ["1"] }'))
    assert allowed(a, "read", "a", {"version": "1"})
    assert not allowed(a, "read", "a", {"version": "2"})


def test_required_parameters() -> None:
    a = acl(rule("a", "create", extra='required_parameters = ["Owner"]'))
    assert allowed(a, "create", "a", {"owner": "me"})
    # Vault lower-cases the policy's name but not the request's key.
    assert not allowed(a, "create", "a", {"Owner": "me"})
    assert not allowed(a, "create", "a", {})


def test_value_matching_follows_vault() -> None:
    a = acl(rule("a", "update", extra='allowed_parameters = { "n" = [1], "b" = [true], "s" = ["*"] }'))
    assert not allowed(a, "update", "a", {"n": 1})  # JSON numbers never equal policy numbers in Vault
    assert allowed(a, "update", "a", {"b": True})
    assert not allowed(a, "update", "a", {"b": 1})
    assert allowed(a, "update", "a", {"s": "*"})
    assert not allowed(a, "update", "a", {"s": "x"})
    g = acl(rule("a", "update", extra='allowed_parameters = { "s" = ["*mid*", "*end", "start*"] }'))
    assert all(allowed(g, "update", "a", {"s": v}) for v in ("xmidx", "the-end", "start-here"))
    assert not allowed(g, "update", "a", {"s": "nothing"})
    lists = acl(rule("a", "update", extra='allowed_parameters = { "l" = [["x", "y"]] }'))
    assert allowed(lists, "update", "a", {"l": ["x", "y"]})
    assert not allowed(lists, "update", "a", {"l": ["x"]})


def test_parameter_maps_merge_across_policies() -> None:
    one = rule("a", "update", extra='allowed_parameters = { "env" = ["dev"] }')
    two = rule("a", "update", extra='allowed_parameters = { "env" = ["prod"], "x" = [] }')
    anyval = rule("a", "update", extra='allowed_parameters = { "env" = [] }')
    merged = acl(one, two)
    assert allowed(merged, "update", "a", {"env": "prod"})
    assert allowed(merged, "update", "a", {"env": "dev"})
    assert allowed(acl(one, anyval), "update", "a", {"env": "whatever"})  # empty list absorbs
    # A policy without constraints does not lift another's constraints on the same path (Vault does this).
    assert not allowed(acl(one, rule("a", "update")), "update", "a", {"env": "prod"})
    # deny clears everything
    assert not allowed(acl(one, rule("a", "deny")), "update", "a", {"env": "dev"})


def test_required_parameters_merge_as_union() -> None:
    a = acl(rule("a", "create", extra='required_parameters = ["x"]'),
            rule("a", "create", extra='required_parameters = ["y"]'))  # fmt: skip
    assert allowed(a, "create", "a", {"x": 1, "y": 2})
    assert not allowed(a, "create", "a", {"x": 1})


def test_wrapping_ttls() -> None:
    a = acl(rule("a", "read", extra='min_wrapping_ttl = "1m"\nmax_wrapping_ttl = "1h"'))
    assert not allowed(a, "read", "a")  # must be wrapped
    assert allowed(a, "read", "a", wrap_ttl=300)
    assert not allowed(a, "read", "a", wrap_ttl=30)
    assert not allowed(a, "read", "a", wrap_ttl=7200)


def test_wrapping_ttls_merge_to_the_smaller_value_and_can_contradict() -> None:
    a = acl(
        rule("a", "read", extra='max_wrapping_ttl = "1h"'),
        rule("a", "read", extra='max_wrapping_ttl = "10m"'),
    )
    assert allowed(a, "read", "a", wrap_ttl=300)
    assert not allowed(a, "read", "a", wrap_ttl=1800)
    b = acl(
        rule("a", "read", extra='min_wrapping_ttl = "30m"'),
        rule("a", "read", extra='max_wrapping_ttl = "10m"'),
    )
    assert not allowed(b, "read", "a", wrap_ttl=600)  # min 30m > max 10m after merging: nothing passes


def test_expired_rules_are_dropped_and_expiry_reported() -> None:
    text = rule("a", "read", extra='expiration = "2030-01-01T00:00:00Z"')
    assert acl(text, now=1_800_000_000).capabilities("a") == ["read"]
    assert acl(text, now=1_800_000_000).expires_at == 1893456000.0
    assert acl(text, now=1_900_000_000).capabilities("a") == ["deny"]


def test_default_policy() -> None:
    a = acl(DEFAULT_POLICY_TEXT)
    assert a.capabilities("auth/token/lookup-self") == ["read"]
    assert a.capabilities("cubbyhole/mine") == ["create", "delete", "list", "read", "update"]
    assert a.capabilities("identity/oidc/provider/p/authorize") == ["read", "update"]
    assert a.capabilities("identity/entity/id/") == ["deny"]  # templated paths need an entity
    assert a.capabilities("secret/data/x") == ["deny"]


def test_has_access_under_sees_rules_inside_a_mount() -> None:
    inside = acl(rule("kv/data/team/app", "read"))
    assert inside.has_access_under("kv/")
    assert not inside.has_access_under("other/")
    glob = acl(rule("kv/metadata/*", "list"))
    assert glob.has_access_under("kv/")
    wildcard = acl(rule("+/data/app", "read"))
    assert wildcard.has_access_under("kv/")
    denied = acl(rule("kv/data/x", "deny"))
    assert not denied.has_access_under("kv/")
    assert ACL.root().has_access_under("anything/")
