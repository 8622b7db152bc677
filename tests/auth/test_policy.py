"""Parsing ACL policy documents (HCL and JSON) with Vault's rules and error messages."""

from __future__ import annotations

import pytest

from strongroom.auth.default_policies import DEFAULT_POLICY_NAME, DEFAULT_POLICY_TEXT, ROOT_POLICY_NAME
from strongroom.auth.policy import PathRule, normalize_policy_name, parse_policy
from strongroom.errors import InvalidRequest


def rules(text: str) -> dict[str, PathRule]:
    return {r.path + ("*" if r.glob else ""): r for r in parse_policy(text).rules}


def error(text: str) -> str:
    with pytest.raises(InvalidRequest) as info:
        parse_policy(text)
    return info.value.message


def test_hcl_basic_rule() -> None:
    rule = rules('path "secret/data/app" {\n  capabilities = ["read", "list"]\n}\n')["secret/data/app"]
    assert rule.capabilities == {"read", "list"}
    assert not rule.glob
    assert not rule.has_segment_wildcards


def test_json_equivalent_to_hcl() -> None:
    hcl = 'path "a/*" { capabilities = ["read"] }\npath "b/+/c" { capabilities = ["update"] }'
    js = '{"path": {"a/*": {"capabilities": ["read"]}, "b/+/c": {"capabilities": ["update"]}}}'
    assert parse_policy(hcl).rules == parse_policy(js).rules


def test_json_list_form_and_duplicate_keys_are_kept() -> None:
    js = '{"path": [{"a": {"capabilities": ["read"]}}, {"a": {"capabilities": ["list"]}}]}'
    assert [r.capabilities for r in parse_policy(js).rules] == [{"read"}, {"list"}]
    js = '{"path": {"a": {"capabilities": ["read"]}}, "path": {"b": {"capabilities": ["list"]}}}'
    assert [r.path for r in parse_policy(js).rules] == ["a", "b"]


def test_duplicate_blocks_are_all_kept() -> None:
    # pyhcl's own parser would keep only the last; Vault keeps both and merges them in the ACL.
    policy = parse_policy('path "a" { capabilities = ["deny"] }\npath "a" { capabilities = ["read"] }')
    assert [r.capabilities for r in policy.rules] == [{"deny"}, {"read"}]


def test_repeated_capabilities_key_concatenates() -> None:
    assert rules('path "a" {\n capabilities = ["read"]\n capabilities = ["list"] }')["a"].capabilities == {
        "read",
        "list",
    }


@pytest.mark.parametrize(
    ("legacy", "expected"),
    [
        ("read", {"read", "list"}),
        ("write", {"create", "read", "update", "delete", "list"}),
        ("sudo", {"create", "read", "update", "delete", "list", "sudo"}),
        ("deny", {"deny"}),
    ],
)
def test_legacy_policy_shorthand(legacy: str, expected: set[str]) -> None:
    assert rules(f'path "a" {{ policy = "{legacy}" }}')["a"].capabilities == expected


def test_legacy_policy_adds_to_capabilities_and_deny_replaces() -> None:
    got = rules('path "a" {\n policy = "read"\n capabilities = ["update"] }\n'
                'path "b" {\n policy = "deny"\n capabilities = ["update"] }')  # fmt: skip
    assert got["a"].capabilities == {"read", "list", "update"}
    assert got["b"].capabilities == {"deny"}


def test_deny_anywhere_makes_the_rule_deny_only_and_skips_the_rest() -> None:
    # Vault stops reading the list at "deny": a later unknown capability is not even reported.
    rule = rules('path "a" { capabilities = ["read", "deny", "bogus"]\n allowed_parameters = {x = []} }')["a"]
    assert rule.capabilities == {"deny"}
    assert rule.allowed_parameters is None


def test_globs_and_segment_wildcards() -> None:
    got = rules('path "/secret/*" { capabilities = ["read"] }\n'
                'path "kv/+/data/*" { capabilities = ["read"] }\n'
                'path "+" { capabilities = ["read"] }\n'
                'path "x/+y" { capabilities = ["read"] }')  # fmt: skip
    assert got["secret/*"].glob
    assert got["secret/*"].path == "secret/"
    star = got["kv/+/data/*"]
    assert star.has_segment_wildcards
    assert not star.glob
    assert star.path == "kv/+/data/*"
    assert got["+"].has_segment_wildcards
    assert got["x/+y"].has_segment_wildcards  # Vault's test is the substring "/+"


def test_parameters_ttls_and_required() -> None:
    rule = rules(
        'path "a" {\n capabilities = ["update"]\n'
        ' allowed_parameters = { "Foo" = ["x*", 1], bar = [] }\n'
        ' denied_parameters = { baz = ["*"] }\n'
        ' required_parameters = ["Foo"]\n'
        ' min_wrapping_ttl = 60\n max_wrapping_ttl = "1h30m" }'
    )["a"]
    assert dict(rule.allowed_parameters or {}) == {"foo": ("x*", 1), "bar": ()}
    assert dict(rule.denied_parameters or {}) == {"baz": ("*",)}
    assert rule.required_parameters == ("Foo",)
    assert (rule.min_wrapping_ttl, rule.max_wrapping_ttl) == (60.0, 5400.0)


@pytest.mark.parametrize(("raw", "seconds"), [("90", 90), ("1d", 86400), ("1.5s", 1.5), ("250ms", 0.25)])
def test_duration_forms(raw: str, seconds: float) -> None:
    assert (
        rules(f'path "a" {{ capabilities = ["read"]\n max_wrapping_ttl = "{raw}" }}')["a"].max_wrapping_ttl
        == seconds
    )


def test_expiration_and_templating_flags() -> None:
    got = rules('path "a" { capabilities = ["read"]\n expiration = "2030-01-01T00:00:00Z" }\n'
                'path "id/{{identity.entity.id}}" { capabilities = ["read"] }')  # fmt: skip
    assert got["a"].expiration == 1893456000.0
    assert got["id/{{identity.entity.id}}"].templated


def test_string_escapes_and_heredoc() -> None:
    assert list(rules('path "a\\u00e9" { capabilities = ["read"] }')) == ["aé"]
    assert list(rules('{"path": {"b\\/c": {"capabilities": ["read"]}}}')) == ["b/c"]
    # Go keeps a heredoc's final newline, which makes this capability invalid in Vault too.
    assert 'invalid capability "read\n"' in error('path "h" {\n capabilities = [<<EOF\nread\nEOF\n] }')


def test_name_key_and_empty_documents_are_accepted() -> None:
    assert parse_policy('name = "x"\npath "a" { capabilities = ["read"] }').rules
    assert parse_policy("").rules == ()
    assert parse_policy("# only a comment").rules == ()
    assert parse_policy("{}").rules == ()


def test_unlabelled_path_block_is_the_literal_path_path() -> None:
    assert list(rules('path { capabilities = ["read"] }')) == ["path"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('path "a" { capabilities = ["foo"] }',
         'failed to parse policy: path "a": path "a": invalid capability "foo"'),
        ('path "a" { capabilities = ["READ"] }', 'path "a": path "a": invalid capability "READ"'),
        ('path "a" { capabilities = ["subscribe"] }', 'invalid capability "subscribe"'),
        ('path "a" { policy = "foo" }', 'failed to parse policy: path "a": path "a": invalid policy "foo"'),
        ('path "a" {\n capabilities = ["read"]\n foo = 1 }',
         'failed to parse policy: path "a": 1 error occurred:\n\t* invalid key "foo" on line 3\n\n'),
        ("foo = 1\nbar = 2",
         'failed to parse policy: 2 errors occurred:\n\t* invalid key "foo" on line 1\n'
         '\t* invalid key "bar" on line 2\n\n'),
        ('path "a/+*" { capabilities = ["read"] }',
         'failed to parse policy: path "a/+*": path "a/+*": '
         "invalid use of wildcards ('+*' is forbidden)"),
        ('path "a" { capabilities = ["read"]\n min_wrapping_ttl = "10m"\n max_wrapping_ttl = "1m" }',
         'failed to parse policy: path "a": max_wrapping_ttl cannot be less than min_wrapping_ttl'),
        ('path "a" { capabilities = ["read"]\n min_wrapping_ttl = "zz" }',
         'failed to parse policy: path "a": error parsing min_wrapping_ttl: time: invalid duration "zz"'),
        ('path "a" { capabilities = ["read"]\n expiration = "soon" }',
         'path "a": path "a": invalid expiration time: could not parse string as date and time'),
        ('path "a" { policy = read }', "failed to parse policy: At 1:21: Unknown token: 1:21 IDENT read"),
        ('path "a" = { capabilities = ["read"] }', "nested object expected: LBRACE got: ASSIGN"),
        ('path "a" { capabilities = ["read" }',
         "error parsing list, expected comma or list end, got: RBRACE"),
        ('path "c" { capabilities = ["read"]\n required_parameters = "x" }', "unknown slice type"),
        ('path "a" { capabilities = [true] }', "unknown type for string"),
        ('path = "x"', 'failed to parse policy: path "path": cannot check HCL keys of type *ast.LiteralType'),
        ('{"path": {"a": {"allowed_parameters": {"x": []}}}}', 'invalid key "x"'),  # Go's JSON flattening
        ('{"path": {"a": {"capabilities": ["read"]}}} trailing', "failed to parse policy"),
        ('path "a" { capabilities = ["list"]\n pagination_limit = 5 }', "pagination_limit is not supported"),
        ('path "a" { capabilities = ["list"]\n control_group = { ttl = "1h" } }',
         "control_group is not supported"),
        ("path 'a' { }", "failed to parse policy"),
    ],
)  # fmt: skip
def test_errors_match_vault(text: str, message: str) -> None:
    assert message in error(text)


def test_accepted_oddities() -> None:
    # All of these are accepted by OpenBao 2.7 as well.
    assert rules('path "a" { capabilities = ["read"], comment = "hi" }')["a"].capabilities == {"read"}
    assert rules('path "a" { capabilities = ["read"]\n mfa_methods = ["m"] }')["a"].capabilities == {"read"}
    assert rules('path "a" { capabilities = ["scan"] }')["a"].capabilities == {"scan"}
    assert rules('path "a" { capabilities = [] }')["a"].capabilities == frozenset()


def test_policy_name_normalisation() -> None:
    assert normalize_policy_name(" Ops-Team ") == "ops-team"
    assert parse_policy("", " MyPolicy ").name == "mypolicy"
    forbidden_names = [
        ("root", 'cannot update "root" policy'),
        ("ROOT", 'cannot update "root" policy'),
        ("response-wrapping", 'cannot update "response-wrapping" policy'),
        ("  ", "policy name must be provided in the URL"),
    ]
    for forbidden, message in forbidden_names:
        with pytest.raises(InvalidRequest, match=message):
            normalize_policy_name(forbidden)
    assert normalize_policy_name(DEFAULT_POLICY_NAME) == "default"  # default may be rewritten, as in Vault
    assert ROOT_POLICY_NAME == "root"


def test_default_policy_parses() -> None:
    policy = parse_policy(DEFAULT_POLICY_TEXT, DEFAULT_POLICY_NAME)
    paths = {r.path for r in policy.rules}
    assert {"auth/token/lookup-self", "sys/capabilities-self", "cubbyhole/"} <= paths
    assert sum(r.templated for r in policy.rules) == 2
