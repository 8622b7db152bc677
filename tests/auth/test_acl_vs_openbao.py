"""Differential test: our policy parser and ACL against a real OpenBao dev server.

Every policy below is written to OpenBao; for each policy set a token is created (with ``default`` unless
stated) and ``sys/capabilities`` is asked for every path in ``PATHS``. Our ``ACL(...).capabilities(path)``
must give the same answer for every (policy set, path) pair, and our parser must accept exactly the
documents OpenBao accepts among ``POLICIES`` and ``REJECTED``.

Skipped when the ``bao`` binary is absent, unless ``STRONGROOM_REQUIRE_ALL=1`` (then it fails).
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from strongroom.auth.acl import ACL
from strongroom.auth.default_policies import DEFAULT_POLICY_TEXT
from strongroom.auth.policy import parse_policy
from strongroom.errors import InvalidRequest
from tests.support.server import start_openbao_dev

pytestmark = pytest.mark.slow

POLICIES: dict[str, str] = {
    "exact-glob": """
path "secret/*" { capabilities = ["read"] }
path "secret/a" { capabilities = ["update"] }
path "secret/app/*" { capabilities = ["list"] }
path "secret/app/admin" { capabilities = ["deny"] }
""",
    "plus": """
path "foo/+/bar/baz" { capabilities = ["read"] }
path "foo/bar/+/baz" { capabilities = ["list"] }
path "foo/a*" { capabilities = ["update"] }
path "foo/+" { capabilities = ["create"] }
path "foo/*" { capabilities = ["delete"] }
""",
    "prefix-vs-plus": """
path "foo/+/ba*" { capabilities = ["read"] }
path "foo/+/bar" { capabilities = ["list"] }
path "foo/+/+/baz" { capabilities = ["update"] }
path "foo/+/bar/b*" { capabilities = ["sudo", "read"] }
path "foo/+/bar/ba*" { capabilities = ["patch"] }
path "foo/+/*" { capabilities = ["create"] }
""",
    "lexicographic": """
path "q+/+/z" { capabilities = ["read"] }
path "q+/x/+" { capabilities = ["list"] }
""",
    "legacy": """
path "legacy/*" { policy = "write" }
path "legacy/ro" { policy = "read" }
path "legacy/secret" { policy = "deny" }
path "sys/mounts" { policy = "sudo" }
path "legacy/mix" {
  policy = "read"
  capabilities = ["update"]
}
""",
    "json": """{"path": [
  {"json/a": {"capabilities": ["read"]}},
  {"json/a": {"capabilities": ["list"]}},
  {"json/b*": {"capabilities": ["update"], "allowed_parameters": {"x": ["y", true, 1]}}}
], "name": "ignored"}""",
    "merge-a": """
path "shared/*" { capabilities = ["read"] }
path "shared/x" { capabilities = ["deny"] }
path "kv/+/cfg" { capabilities = ["read"] }
path "dup" { capabilities = ["read"] }
""",
    "merge-b": """
path "shared/*" { capabilities = ["list"] }
path "shared/x" { capabilities = ["read", "update"] }
path "kv/+/cfg" { capabilities = ["update"] }
path "dup" { capabilities = ["deny"] }
""",
    "list-slash": """
path "dir/sub" { capabilities = ["list", "read"] }
path "kv/+/dir" { capabilities = ["list"] }
path "glob/dir*" { capabilities = ["update"] }
""",
    "dup-blocks": """
path "d1" { capabilities = ["read"] }
path "d1" { capabilities = ["list"] }
path "d2" { capabilities = ["deny"] }
path "d2" { capabilities = ["read"] }
path "d3" {
  capabilities = ["read"]
  capabilities = ["create"]
}
""",
    "unicode": """
path "ü/+/x" { capabilities = ["read"] }
path "ü/a*" { capabilities = ["list"] }
""",
    "catchall": """
path "*" { capabilities = ["read"] }
path "+" { capabilities = ["update"] }
path "+/+" { capabilities = ["list"] }
""",
    "oddities": """
path { capabilities = ["read"] }
path "a" "b" { capabilities = ["update"] }
path "/lead/slash" { capabilities = ["read"] }
path "m/*/n" { capabilities = ["read"] }
path "p/+q/r" { capabilities = ["read"] }
path "e" { capabilities = [] }
path "bools" {
  capabilities = ["update"]
  allowed_parameters = { flag = [true, false, "maybe", 2] }
}
path "scan/*" { capabilities = ["scan", "list"], comment = "scan is OpenBao's" }
path "tmpl/{{identity.entity.id}}/*" { capabilities = ["read"] }
path "wrapped" {
  capabilities = ["read"]
  min_wrapping_ttl = "1m"
  max_wrapping_ttl = 3600
  required_parameters = ["a"]
  denied_parameters = { b = [] }
}
path "later" {
  capabilities = ["read"]
  expiration = "2999-01-01T00:00:00Z"
}
path "heredoc" {
  policy = "read"
  allowed_parameters = {
    x = [<<EOT
value
EOT
    ]
  }
}
""",
}

REJECTED: dict[str, str] = {
    "bad-cap": 'path "a" { capabilities = ["foo"] }',
    "upper-cap": 'path "a" { capabilities = ["READ"] }',
    "subscribe": 'path "a" { capabilities = ["subscribe"] }',
    "bad-legacy": 'path "a" { policy = "admin" }',
    "plus-star": 'path "a/+*" { capabilities = ["read"] }',
    "bad-path-key": 'path "a" {\n capabilities = ["read"]\n foo = 1\n}',
    "bad-top-key": 'foo = 1\npath "a" { capabilities = ["read"] }',
    "bad-ttl": 'path "a" {\n capabilities = ["read"]\n max_wrapping_ttl = "soon"\n}',
    "min-over-max": 'path "a" {\n capabilities = ["read"]\n min_wrapping_ttl = "2h"\n'
    ' max_wrapping_ttl = "1h"\n}',
    "ident-value": 'path "a" { policy = read }',
    "json-flattened": '{"path": {"a": {"allowed_parameters": {"x": []}}}}',
    "caps-string": 'path "a" { capabilities = "read" }',
    "caps-bool": 'path "a" { capabilities = [true] }',
    "heredoc-cap": 'path "a" {\n capabilities = [<<EOT\nread\nEOT\n ]\n}',
    "assign-block": 'path "a" = { capabilities = ["read"] }',
    "path-string": 'path = "x"',
    "bad-expiration": 'path "a" {\n capabilities = ["read"]\n expiration = "tomorrow"\n}',
    "single-quotes": "path 'a' { capabilities = ['read'] }",
}

# (policies, include the default policy)
POLICY_SETS: list[tuple[tuple[str, ...], bool]] = [
    *(((name,), True) for name in POLICIES),
    (("merge-a", "merge-b"), True),
    (("exact-glob", "plus"), True),
    (("plus", "prefix-vs-plus"), True),
    (("legacy", "json", "list-slash"), True),
    (("catchall", "exact-glob", "unicode"), True),
    (tuple(POLICIES), True),
    (("exact-glob",), False),
    (("oddities",), False),
]

PATHS = [
    "secret/a", "secret/b", "secret/app/x", "secret/app/admin", "secret/apx", "secret/", "secret",
    "foo/bar/bar/baz", "foo/ab", "foo/x", "foo/x/y", "foo/x/bar", "foo/x/barn", "foo/x/bar/baz",
    "foo/x/y/baz", "foo/x/bar/bz", "foo/x/bar/", "foo/x/", "foo/bar/x/baz", "q+/x/z", "q+/y/z",
    "legacy/x", "legacy/ro", "legacy/secret", "legacy/mix", "sys/mounts", "sys/mounts/",
    "json/a", "json/bee", "shared/x", "shared/y", "dup", "kv/t/cfg", "kv/t/dir/", "kv/t/dir", "kv/t/dir/x",
    "dir/sub/", "dir/sub", "dir/sub/x", "glob/dir/", "glob/dirt", "d1", "d2", "d3",
    "ü/ab/x", "ü/a/x", "ü/b/x",
    "path", "a", "b", "a/b", "lead/slash", "/lead/slash", "//lead/slash", "m/*/n", "m/x/n", "p/+q/r",
    "p/xq/r", "e", "scan/x", "tmpl/abc/x", "wrapped", "later", "heredoc", "x", "x/y", "x/y/z",
    "cubbyhole/x", "cubbyhole/", "cubbyhole", "auth/token/lookup-self", "sys/capabilities-self",
    "identity/oidc/provider/p/authorize", "identity/entity/id/abc", "sys/tools/hash/sha2-256",
    "sys/leases/renew", "sys/wrapping/unwrap",
]  # fmt: skip


@pytest.fixture(scope="module")
def bao(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """A root-token client for a fresh ``bao server -dev``; the server is stopped by PID afterwards."""
    server = start_openbao_dev(tmp_path_factory.mktemp("bao"))
    client = server.client()
    try:
        yield client
    finally:
        client.close()
        server.kill()


def _bao_accepts(bao: httpx.Client, name: str, text: str) -> bool:
    response = bao.put(f"/v1/sys/policies/acl/{name}", json={"policy": text})
    assert response.status_code in (204, 400), response.text
    if response.status_code == 400:
        print(f"OpenBao rejects {name}: {response.json()['errors']}")
    return response.status_code == 204


def _we_accept(text: str) -> bool:
    try:
        parse_policy(text)
    except InvalidRequest:
        return False
    return True


@pytest.fixture(scope="module")
def written(bao: httpx.Client) -> None:
    for name, text in POLICIES.items():
        assert _bao_accepts(bao, name, text), f"OpenBao rejected {name}"


def test_default_policy_text_is_openbaos(bao: httpx.Client) -> None:
    assert bao.get("/v1/sys/policies/acl/default").json()["data"]["policy"] == DEFAULT_POLICY_TEXT


def test_acceptance_matches(bao: httpx.Client) -> None:
    verdicts = {
        name: (_bao_accepts(bao, f"r-{name}", text), _we_accept(text)) for name, text in REJECTED.items()
    }
    verdicts |= {name: (_bao_accepts(bao, name, text), _we_accept(text)) for name, text in POLICIES.items()}
    assert {n: v for n, v in verdicts.items() if v[0] != v[1]} == {}
    assert all(not v[0] for n, v in verdicts.items() if n in REJECTED)


def test_error_messages_match(bao: httpx.Client) -> None:
    for name in ("bad-cap", "bad-legacy", "plus-star", "bad-path-key", "bad-top-key", "min-over-max"):
        theirs = bao.put(f"/v1/sys/policies/acl/r-{name}", json={"policy": REJECTED[name]}).json()["errors"][
            0
        ]
        with pytest.raises(InvalidRequest) as ours:
            parse_policy(REJECTED[name])
        assert ours.value.message == theirs, name


@pytest.mark.usefixtures("written")
@pytest.mark.parametrize(
    ("names", "with_default"),
    POLICY_SETS,
    ids=lambda v: "+".join(v) if isinstance(v, tuple) else ("default" if v else "no-default"),
)
def test_capabilities_match(bao: httpx.Client, names: tuple[str, ...], with_default: bool) -> None:
    created = bao.post(
        "/v1/auth/token/create", json={"policies": list(names), "no_default_policy": not with_default}
    )
    created.raise_for_status()
    token = created.json()["auth"]["client_token"]
    response = bao.post("/v1/sys/capabilities", json={"token": token, "paths": PATHS})
    response.raise_for_status()
    theirs = {path: response.json()["data"][path] for path in PATHS}
    policies = [parse_policy(POLICIES[n], n) for n in names]
    if with_default:
        policies.append(parse_policy(DEFAULT_POLICY_TEXT, "default"))
    acl = ACL(policies)
    ours = {path: acl.capabilities(path) for path in PATHS}
    assert {p: (ours[p], theirs[p]) for p in PATHS if ours[p] != theirs[p]} == {}
