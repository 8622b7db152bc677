"""Who may do what in which namespace (docs/spec/namespaces.md section 7).

* Inside a tenant only the tenant's own tokens count: the platform root token, with ``sudo`` on
  everything, is refused on every route family (sys/mounts, sys/policies, auth/token, KV, transit,
  sys/namespaces, sys/rotate), and so is every other platform token;
* in a plain namespace a parent's token works when its policies grant the child path (prefixed), tokens
  created in the plain namespace work there and only there;
* a tenant's tokens work in the tenant's plain children, never in the platform or in another tenant.
"""

from __future__ import annotations

import pytest

from tests.support.namespaces import Namespaces, Tenant
from tests.support.vault import InProcessVault

KV_MOUNT = {"type": "kv", "options": {"version": "2"}}

# (method, path, body) of one request per route family, valid for a tenant admin.
ROUTE_FAMILIES: list[tuple[str, str, dict[str, object] | None]] = [
    ("GET", "sys/mounts", None),
    ("POST", "sys/mounts/other", {"type": "kv"}),
    ("LIST", "sys/policies/acl", None),
    ("PUT", "sys/policies/acl/p", {"policy": 'path "*" { capabilities = ["read"] }'}),
    ("POST", "auth/token/create", {"policies": ["default"]}),
    ("GET", "auth/token/lookup-self", None),
    ("LIST", "auth/token/accessors", None),
    ("GET", "kv/data/secret", None),
    ("POST", "kv/data/secret", {"data": {"v": "2"}}),
    ("LIST", "kv/metadata", None),
    ("POST", "transit/encrypt/k", {"plaintext": "aGVsbG8="}),
    ("GET", "transit/keys/k", None),
    ("LIST", "sys/namespaces", None),
    ("POST", "sys/namespaces/child", {}),
    ("POST", "sys/rotate", None),
    ("GET", "sys/key-status", None),
]


@pytest.fixture
async def tenant(vault: InProcessVault) -> tuple[Namespaces, Tenant]:
    ns = Namespaces(vault)
    t = await ns.tenant("acme")
    await ns.ok("POST", "sys/mounts/kv", ns="acme", token=t.root_token, json=KV_MOUNT)
    await ns.ok("POST", "kv/data/secret", ns="acme", token=t.root_token, json={"data": {"v": "1"}})
    await ns.ok("POST", "sys/mounts/transit", ns="acme", token=t.root_token, json={"type": "transit"})
    await ns.ok("POST", "transit/keys/k", ns="acme", token=t.root_token)
    await ns.plain("inner", ns="acme", token=t.root_token)
    return ns, t


@pytest.mark.parametrize(("method", "path", "body"), ROUTE_FAMILIES)
async def test_platform_root_token_has_no_authority_in_a_tenant(
    tenant: tuple[Namespaces, Tenant], method: str, path: str, body: dict[str, object] | None
) -> None:
    ns, t = tenant
    platform_root = ns.vault.root_token
    for addressing in ({"ns": "acme"}, {"prefix": "acme/"}):
        full = addressing.get("prefix", "") + path
        errors = await ns.fails(403, method, full, ns=addressing.get("ns", ""), token=platform_root, json=body)
        assert errors == ["permission denied"]
    # The same request with the tenant's own root token is allowed (or at least not a 403).
    r = await ns.call(method, path, ns="acme", token=t.root_token, json=body)
    assert r.status_code != 403, (method, path, r.text)


async def test_platform_sudo_policy_token_has_no_authority_in_a_tenant(tenant: tuple[Namespaces, Tenant]) -> None:
    ns, _ = tenant
    await ns.ok("PUT", "sys/policies/acl/all", json={"policy": 'path "*" { capabilities = ["create", "read", "update", "delete", "list", "sudo"] }'})
    token = await ns.vault.token(["all"])
    for method, path, body in ROUTE_FAMILIES:
        await ns.fails(403, method, path, ns="acme", token=token, json=body)
        await ns.fails(403, method, path, ns="acme/inner", token=token, json=body)


async def test_platform_tokens_cannot_seal_a_tenant_from_inside(tenant: tuple[Namespaces, Tenant]) -> None:
    ns, t = tenant
    await ns.fails(403, "PUT", "sys/seal", ns="acme", token=ns.vault.root_token)
    await ns.fails(403, "PUT", "sys/seal", ns="acme", token="")
    assert (await ns.ok("GET", "sys/seal-status", ns="acme", token=t.root_token))["sealed"] is False
    # A tenant token needs sudo on sys/seal; the tenant's root token has it.
    reader = await ns.token_in("acme", t.root_token, ["default"])
    await ns.fails(403, "PUT", "sys/seal", ns="acme", token=reader)
    await ns.ok("PUT", "sys/seal", ns="acme", token=t.root_token)
    assert (await ns.ok("GET", "sys/seal-status", ns="acme", token=t.admin_token))["sealed"] is True


async def test_tenant_tokens_do_not_leave_their_tenant(tenant: tuple[Namespaces, Tenant]) -> None:
    ns, t = tenant
    other = await ns.tenant("other")
    await ns.fails(403, "GET", "sys/mounts", token=t.root_token)  # platform
    await ns.fails(403, "GET", "sys/mounts", ns="other", token=t.root_token)  # another tenant
    await ns.fails(403, "GET", "sys/mounts", ns="acme", token=other.root_token)
    await ns.fails(403, "LIST", "sys/namespaces", token=t.root_token)


async def test_tenant_tokens_work_in_its_plain_children(tenant: tuple[Namespaces, Tenant]) -> None:
    ns, t = tenant
    await ns.ok("POST", "sys/mounts/kv", ns="acme/inner", token=t.root_token, json=KV_MOUNT)
    await ns.ok("POST", "kv/data/x", ns="acme/inner", token=t.root_token, json={"data": {"v": "in"}})
    assert (await ns.ok("GET", "inner/kv/data/x", ns="acme", token=t.root_token))["data"]["data"] == {"v": "in"}
    await ns.fails(403, "GET", "kv/data/x", ns="acme/inner", token=ns.vault.root_token)


async def test_parent_token_in_a_plain_child_uses_prefixed_policy_paths(vault: InProcessVault) -> None:
    ns = Namespaces(vault)
    await ns.plain("team")
    await ns.ok("POST", "sys/mounts/kv", ns="team", json=KV_MOUNT)
    await ns.ok("POST", "kv/data/app", ns="team", json={"data": {"v": "1"}})
    await ns.ok(
        "PUT", "sys/policies/acl/team-reader",
        json={"policy": 'path "team/kv/data/*" { capabilities = ["read"] }'},
    )  # fmt: skip
    await ns.ok("PUT", "sys/policies/acl/plain-reader", json={"policy": 'path "kv/data/*" { capabilities = ["read"] }'})
    team_reader = await vault.token(["team-reader"])
    plain_reader = await vault.token(["plain-reader"])
    assert (await ns.ok("GET", "kv/data/app", ns="team", token=team_reader))["data"]["data"] == {"v": "1"}
    assert (await ns.ok("GET", "team/kv/data/app", token=team_reader))["data"]["data"] == {"v": "1"}
    await ns.fails(403, "POST", "kv/data/app", ns="team", token=team_reader, json={"data": {"v": "2"}})
    # An unprefixed rule of the parent does not reach into the child.
    await ns.fails(403, "GET", "kv/data/app", ns="team", token=plain_reader)
    # lookup-self of a parent token in the child namespace shows that token.
    me = await ns.ok("GET", "auth/token/lookup-self", ns="team", token=team_reader)
    assert me["data"]["policies"] == ["default", "team-reader"]


async def test_tokens_created_in_a_plain_namespace_work_only_there(vault: InProcessVault) -> None:
    ns = Namespaces(vault)
    await ns.plain("team")
    await ns.ok("POST", "sys/mounts/kv", ns="team", json=KV_MOUNT)
    await ns.ok("POST", "kv/data/app", ns="team", json={"data": {"v": "1"}})
    reader = 'path "kv/data/*" { capabilities = ["read"] }\npath "auth/token/create" { capabilities = ["update"] }'
    await ns.ok("PUT", "sys/policies/acl/reader", ns="team", json={"policy": reader})
    local = await ns.token_in("team", vault.root_token, ["reader"])
    assert (await ns.ok("GET", "kv/data/app", ns="team", token=local))["data"]["data"] == {"v": "1"}
    me = (await ns.ok("GET", "auth/token/lookup-self", ns="team", token=local))["data"]
    assert me["orphan"] is True  # created by a parent's token: an orphan in the child's store
    await ns.fails(403, "GET", "sys/mounts", token=local)  # not in the parent
    await ns.plain("other")
    await ns.fails(403, "GET", "sys/mounts", ns="other", token=local)  # nor in a sibling
    # A token created by a child token is its child: revoking the parent revokes it.
    grandchild = await ns.token_in("team", local, ["reader"])
    await ns.ok("POST", "auth/token/revoke-self", ns="team", token=local)
    await ns.fails(403, "GET", "kv/data/app", ns="team", token=grandchild)


async def test_revoke_self_of_a_parent_token_through_a_child_revokes_it(vault: InProcessVault) -> None:
    ns = Namespaces(vault)
    await ns.plain("team")
    token = await vault.token(["default"])
    await ns.ok("POST", "auth/token/revoke-self", ns="team", token=token)
    await ns.fails(403, "GET", "auth/token/lookup-self", token=token)


async def test_limited_use_parent_token_pays_in_its_own_store(vault: InProcessVault) -> None:
    ns = Namespaces(vault)
    await ns.plain("team")
    await ns.ok("PUT", "sys/policies/acl/team-all", json={"policy": 'path "team/*" { capabilities = ["read", "list"] }'})
    token = await vault.token(["team-all"], num_uses=2)
    await ns.ok("GET", "sys/mounts", ns="team", token=token)
    await ns.ok("GET", "sys/mounts", ns="team", token=token)
    await ns.fails(403, "GET", "sys/mounts", ns="team", token=token)


async def test_anonymous_requests_in_namespaces(tenant: tuple[Namespaces, Tenant]) -> None:
    ns, _ = tenant
    await ns.fails(403, "GET", "kv/data/secret", ns="acme", token="")
    await ns.fails(403, "GET", "sys/mounts", ns="acme/inner", token="")
