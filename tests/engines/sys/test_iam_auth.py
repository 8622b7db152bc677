"""Biscuit tokens in the request pipeline, in process (docs/spec/tokens.md sections 1-7).

The managed flow end to end, the roles against every route family, tenant selection by the token,
create-vs-update and LIST/PATCH as authorizer operations, attenuation, revocation seen by another node at
its next request, and every refusal a 403 with no detail.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from strongroom.api.app import VaultApp
from strongroom.auth.iam import IamKey, IamPublicKey, attenuate, issue_token
from strongroom.core.node import Node
from strongroom.storage.memory import MemoryStore
from tests.support.namespaces import Namespaces
from tests.support.vault import InProcessVault, start_vault

HOUR = 3600
DENIED = {"errors": ["permission denied"]}
KV2 = {"type": "kv", "options": {"version": "2"}}


@dataclass
class Managed:
    """A tenant made by the managed flow: created by the platform, initialised by its administrator."""

    name: str
    admin: str
    user: str
    keys: list[str]
    root: str


async def managed(ns: Namespaces, name: str, *, ttl: str = "24h") -> Managed:
    data = (await ns.ok("POST", f"sys/iam/tenants/{name}", json={"ttl": ttl}))["data"]
    admin, user = data["admin_token"], data["user_token"]
    init = await ns.ok(
        "PUT", "sys/init", ns=name, token=admin, json={"secret_shares": 1, "secret_threshold": 1}
    )
    body = await ns.ok("PUT", "sys/unseal", ns=name, token=admin, json={"key": init["keys"][0]})
    assert body["sealed"] is False
    return Managed(name, admin, user, init["keys"], init["root_token"])


@pytest.fixture
def ns(vault: InProcessVault) -> Namespaces:
    return Namespaces(vault)


@pytest.fixture
async def acme(ns: Namespaces) -> Managed:
    t = await managed(ns, "acme")
    await ns.ok("POST", "sys/mounts/secret", ns="acme", token=t.admin, json=KV2)
    await ns.ok(
        "POST", "sys/mounts/kv1", ns="acme", token=t.admin, json={"type": "kv", "options": {"version": "1"}}
    )
    await ns.ok("POST", "sys/mounts/transit", ns="acme", token=t.admin, json={"type": "transit"})
    await ns.ok("POST", "transit/keys/orders", ns="acme", token=t.admin, json={})
    return t


async def public_key(ns: Namespaces) -> IamPublicKey:
    doc = (await ns.ok("GET", "sys/iam/public-key", token=""))["data"]
    return IamPublicKey.parse(doc["public_key"], doc["key_id"])


async def send(
    ns: Namespaces, method: str, path: str, token: str, body: dict[str, Any] | None
) -> httpx.Response:
    headers = {"Content-Type": "application/merge-patch+json"} if method == "PATCH" else {}
    return await ns.call(method, path, token=token, json=body, headers=headers)


async def denied(ns: Namespaces, method: str, path: str, token: str, **kw: Any) -> None:
    r = await ns.call(method, path, token=token, **kw)
    assert (r.status_code, r.json()) == (403, DENIED), (method, path, r.status_code, r.text)


async def test_the_managed_flow_user_reads_kv_and_encrypts(ns: Namespaces, acme: Managed) -> None:
    # No namespace header: the token selects its tenant.
    await ns.ok("POST", "secret/data/app/db", token=acme.user, json={"data": {"password": "p1"}})
    assert (await ns.ok("GET", "secret/data/app/db", token=acme.user))["data"]["data"] == {"password": "p1"}
    ct = (await ns.ok("POST", "transit/encrypt/orders", token=acme.user, json={"plaintext": "aGVsbG8="}))[
        "data"
    ]
    back = await ns.ok(
        "POST", "transit/decrypt/orders", token=acme.user, json={"ciphertext": ct["ciphertext"]}
    )
    assert back["data"]["plaintext"] == "aGVsbG8="
    # With the header, or the path prefix, the same tenant.
    assert (await ns.ok("GET", "secret/data/app/db", ns="acme", token=acme.user))["data"]["data"][
        "password"
    ] == "p1"
    assert (await ns.ok("GET", "acme/secret/data/app/db", token=acme.user))["data"]["data"][
        "password"
    ] == "p1"
    # The data is the tenant's: its own root token reads it, the platform's does not.
    assert (await ns.ok("GET", "secret/data/app/db", ns="acme", token=acme.root))["data"]["data"][
        "password"
    ] == "p1"
    await ns.fails(403, "GET", "secret/data/app/db", ns="acme")


# Requests a User biscuit may make (data plane) and may not (everything else), with their bodies.
USER_ALLOWED: list[tuple[str, str, dict[str, Any] | None]] = [
    ("POST", "secret/data/x", {"data": {"v": "1"}}),
    ("GET", "secret/data/x", None),
    ("LIST", "secret/metadata/", None),
    ("PATCH", "secret/data/x", {"data": {"w": "2"}}),
    ("GET", "secret/config", None),
    ("PUT", "kv1/y", {"v": "1"}),
    ("GET", "kv1/y", None),
    ("POST", "transit/encrypt/orders", {"plaintext": "aGVsbG8="}),
    ("POST", "transit/hmac/orders", {"input": "aGVsbG8="}),
    ("POST", "transit/random/16", {}),
    ("GET", "transit/keys/orders", None),
    ("LIST", "transit/keys", None),
    ("GET", "sys/internal/ui/mounts", None),
    ("GET", "auth/token/lookup-self", None),
    ("DELETE", "secret/metadata/x", None),
]
USER_REFUSED: list[tuple[str, str, dict[str, Any] | None]] = [
    ("POST", "secret/config", {"max_versions": 3}),
    ("POST", "transit/keys/new", {}),
    ("POST", "transit/keys/orders/rotate", {}),
    ("POST", "transit/keys/orders/config", {"deletion_allowed": True}),
    ("GET", "transit/export/encryption-key/orders", None),
    ("GET", "sys/mounts", None),
    ("POST", "sys/mounts/other", {"type": "kv"}),
    ("PUT", "sys/policies/acl/p", {"policy": 'path "*" { capabilities = ["read"] }'}),
    ("POST", "auth/token/create", {"policies": ["default"]}),
    ("LIST", "auth/token/accessors", None),
    ("POST", "sys/rotate", None),
    ("GET", "sys/key-status", None),
    ("POST", "sys/namespaces/child", {}),
    ("GET", "sys/iam/config", None),
    ("GET", "cubbyhole/x", None),
]


async def test_user_is_the_data_plane_only(ns: Namespaces, acme: Managed) -> None:
    for method, path, body in USER_ALLOWED:
        r = await send(ns, method, path, acme.user, body)
        assert r.status_code in (200, 204), (method, path, r.status_code, r.text)
    for method, path, body in USER_REFUSED:
        await denied(ns, method, path, acme.user, json=body)
    # Nothing the refused calls asked for happened.
    mounts = (await ns.ok("GET", "sys/mounts", token=acme.admin))["data"]
    assert "other/" not in mounts
    await ns.fails(404, "GET", "transit/keys/new", token=acme.admin)
    # Mount discovery shows the User only KV and transit mounts; the Administrator sees all.
    user_view = (await ns.ok("GET", "sys/internal/ui/mounts", token=acme.user))["data"]
    assert set(user_view["secret"]) == {"secret/", "kv1/", "transit/"} and user_view["auth"] == {}
    admin_view = (await ns.ok("GET", "sys/internal/ui/mounts", token=acme.admin))["data"]
    assert "sys/" in admin_view["secret"] and "token/" in admin_view["auth"]


async def test_administrator_is_the_tenants_root(ns: Namespaces, acme: Managed) -> None:
    for method, path, body in USER_ALLOWED + USER_REFUSED:
        if path in ("cubbyhole/x", "transit/export/encryption-key/orders"):
            continue  # no cubbyhole engine; the key is not exportable (a 400 about the key, not a 403)
        r = await send(ns, method, path, acme.admin, body)
        assert r.status_code in (200, 204, 404), (method, path, r.status_code, r.text)
    # Tokens with any policy, the caller counting as root for the subset rule; they are orphans.
    await ns.ok(
        "PUT",
        "sys/policies/acl/app",
        ns="acme",
        token=acme.admin,
        json={"policy": 'path "secret/*" { capabilities = ["read"] }'},
    )
    created = (
        await ns.ok("POST", "auth/token/create", token=acme.admin, json={"policies": ["app"], "ttl": "1h"})
    )["auth"]
    assert created["policies"] == ["app", "default"]
    looked = (await ns.ok("GET", "auth/token/lookup-self", ns="acme", token=created["client_token"]))["data"]
    assert looked["policies"] == ["app", "default"]
    root = (
        await ns.ok("POST", "auth/token/create", token=acme.admin, json={"policies": ["root"], "ttl": "1h"})
    )["auth"]
    assert root["policies"] == ["root"]
    # capabilities-self answers from the biscuit's authorizer.
    caps = (
        await ns.ok("POST", "sys/capabilities-self", token=acme.admin, json={"paths": ["secret/data/x"]})
    )["data"]
    assert caps["secret/data/x"] == ["create", "delete", "list", "patch", "read", "sudo", "update"]
    caps = await ns.ok("POST", "sys/capabilities-self", token=acme.admin, json={"paths": ["cubbyhole/x"]})
    assert caps["data"]["cubbyhole/x"] == ["create", "delete", "list", "patch", "read", "sudo", "update"]
    await denied(
        ns, "POST", "sys/capabilities-self", acme.user, json={"paths": ["secret/data/x"]}
    )  # sys/: not the User's


async def test_lookup_renew_and_revoke_self(ns: Namespaces, acme: Managed) -> None:
    looked = (await ns.ok("GET", "auth/token/lookup-self", token=acme.user))["data"]
    now = int(ns.vault.clock.now())
    assert looked["policies"] == ["tenant-user"] and looked["id"] == acme.user and looked["accessor"] == ""
    assert (looked["display_name"], looked["path"], looked["type"], looked["renewable"]) == (
        "iam-acme-user", "sys/iam/tokens", "service", False)  # fmt: skip
    assert (looked["creation_time"], looked["ttl"], looked["meta"]["tenant"]) == (now, 24 * HOUR, "acme")
    assert (await ns.ok("POST", "auth/token/lookup-self", token=acme.admin))["data"]["policies"] == [
        "tenant-admin"
    ]
    assert await ns.fails(400, "PUT", "auth/token/renew-self", token=acme.user) == ["lease is not renewable"]
    r = await ns.call("PUT", "auth/token/revoke-self", token=acme.user)
    assert r.status_code == 204
    await denied(ns, "GET", "auth/token/lookup-self", acme.user)
    await denied(ns, "GET", "secret/data/x", acme.user)
    await ns.ok("GET", "auth/token/lookup-self", token=acme.admin)  # the Administrator is not affected


async def test_tenant_selection_and_wrong_tenants(ns: Namespaces, acme: Managed) -> None:
    bank = await managed(ns, "bank")
    await ns.ok("POST", "sys/mounts/secret", ns="bank", token=bank.admin, json=KV2)
    await ns.ok("POST", "secret/data/x", token=bank.user, json={"data": {"v": "bank"}})
    for headers in ({"X-Vault-Namespace": "bank"}, {"X-Vault-Namespace": "root"}, {"X-Vault-Namespace": "/"},
                    {"X-Vault-Namespace": "acme/team"}):  # fmt: skip
        r = await ns.call("GET", "secret/data/x", token=acme.user, headers=headers)
        assert (r.status_code, r.json()) == (403, DENIED), headers
    # A path prefix naming another tenant stays inside the token's own tenant (no such child there).
    await ns.fails(404, "GET", "bank/secret/data/x", token=acme.admin)
    await denied(ns, "GET", "bank/secret/data/x", acme.user)
    # The platform's own paths are not the tenant's: sys/iam/tenants there is a 400, never the platform's.
    assert (await ns.fails(400, "LIST", "sys/iam/tenants", token=acme.admin))[0].startswith("sys/iam/tenants")
    # A plain child of the tenant is another namespace.
    await ns.ok("POST", "sys/namespaces/team", token=acme.admin, json={})
    await denied(ns, "GET", "sys/mounts", acme.admin, headers={"X-Vault-Namespace": "acme/team"})
    await denied(ns, "GET", "team/sys/mounts", acme.admin)


async def test_every_bad_token_is_the_same_403(ns: Namespaces, acme: Managed) -> None:
    now = ns.vault.clock.now()
    other_key = IamKey.generate(1)  # another platform's key, same key id
    forged = issue_token(other_key, tenant="acme", role="admin", ttl=HOUR, now=now)
    raw = base64.urlsafe_b64decode(acme.user[3:] + "==")
    tampered = "sb." + base64.urlsafe_b64encode(raw[:-3] + bytes([raw[-3] ^ 1]) + raw[-2:]).decode()
    bad = [
        forged,
        tampered,
        "sb.",
        "sb.!!!!",
        "sb." + "A" * 9000,
        "sb." + acme.user,  # no double prefix
        acme.user[3:],  # a raw biscuit without the prefix is not accepted (a store-token lookup fails)
    ]
    for token in bad:
        for method, path in (("GET", "secret/data/x"), ("GET", "sys/seal-status"), ("PUT", "sys/seal")):
            r = await ns.call(method, path, token=token, headers={"X-Vault-Namespace": "acme"})
            assert (r.status_code, r.json()) == (403, DENIED), (token[:20], path, r.text)
    # Expired: refused at once, for data and ceremonies alike.
    short = (await ns.ok("POST", "sys/iam/tokens", json={"tenant": "acme", "role": "admin", "ttl": "10m"}))[
        "data"
    ]
    await ns.ok("GET", "sys/mounts", token=short["token"])
    ns.vault.clock.advance(601)
    await denied(ns, "GET", "sys/mounts", short["token"])
    await denied(ns, "GET", "sys/seal-status", short["token"])
    await ns.ok("GET", "sys/mounts", token=acme.admin)


async def test_create_and_update_are_decided_after_the_existence_check(ns: Namespaces, acme: Managed) -> None:
    key = await public_key(ns)
    now = ns.vault.clock.now()
    create_only = attenuate(acme.user, key, operations=["create", "read"], now=now)
    await ns.ok("PUT", "kv1/new", token=create_only, json={"v": "1"})  # does not exist yet: create
    await denied(ns, "PUT", "kv1/new", create_only, json={"v": "2"})  # exists now: update
    assert (await ns.ok("GET", "kv1/new", token=create_only))["data"] == {"v": "1"}
    update_only = attenuate(acme.user, key, operations=["update"], now=now)
    await ns.ok("PUT", "kv1/new", token=update_only, json={"v": "3"})
    await denied(ns, "PUT", "kv1/other", update_only, json={"v": "1"})
    await ns.fails(404, "GET", "kv1/other", token=acme.user)
    # LIST and PATCH are operations of their own.
    lister = attenuate(acme.user, key, operations=["list"], now=now)
    assert "new" in (await ns.ok("LIST", "kv1/", token=lister))["data"]["keys"]
    assert "new" in (await ns.ok("GET", "kv1/", token=lister, params={"list": "true"}))["data"]["keys"]
    await denied(ns, "GET", "kv1/new", lister)
    await ns.ok("POST", "secret/data/doc", token=acme.user, json={"data": {"a": "1"}})
    patcher = attenuate(acme.user, key, operations=["patch"], now=now)
    await ns.ok("PATCH", "secret/data/doc", token=patcher, json={"data": {"b": "2"}},
                headers={"Content-Type": "application/merge-patch+json"})  # fmt: skip
    await denied(ns, "POST", "secret/data/doc", patcher, json={"data": {"c": "3"}})
    assert (await ns.ok("GET", "secret/data/doc", token=acme.user))["data"]["data"] == {"a": "1", "b": "2"}


async def test_attenuated_token_limited_to_one_path(ns: Namespaces, acme: Managed) -> None:
    key = await public_key(ns)
    await ns.ok("POST", "secret/data/app/db", token=acme.user, json={"data": {"v": "1"}})
    await ns.ok("POST", "secret/data/other", token=acme.user, json={"data": {"v": "2"}})
    app = attenuate(acme.user, key, paths=["secret/data/app/", "secret/metadata/app/"],
                    operations=["read", "list"], ttl=HOUR, now=ns.vault.clock.now())  # fmt: skip
    assert (await ns.ok("GET", "secret/data/app/db", token=app))["data"]["data"] == {"v": "1"}
    assert (await ns.ok("LIST", "secret/metadata/app/", token=app))["data"]["keys"] == ["db"]
    await denied(ns, "GET", "secret/data/other", app)
    await denied(ns, "POST", "secret/data/app/db", app, json={"data": {"v": "x"}})
    await denied(ns, "POST", "transit/encrypt/orders", app, json={"plaintext": "aGVsbG8="})
    await denied(ns, "GET", "secret/data/app/../other", app)  # not canonical: refused before Datalog
    # Self-service stays available, and shows the shorter lifetime.
    assert (await ns.ok("GET", "auth/token/lookup-self", token=app))["data"]["ttl"] == HOUR
    ns.vault.clock.advance(HOUR)
    await denied(ns, "GET", "secret/data/app/db", app)
    await ns.ok("GET", "secret/data/app/db", token=acme.user)  # the parent lives on


@pytest.fixture
async def two_nodes() -> AsyncIterator[tuple[Namespaces, Namespaces]]:
    first = await start_vault(MemoryStore())
    node = Node(first.node.store, clock=first.clock)
    app = VaultApp(node)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://node-b.test")
    for key in first.keys[:2]:
        assert (await client.put("/v1/sys/unseal", json={"key": key})).status_code == 200
    second = InProcessVault(node, app, client, first.clock, first.keys, first.root_token)
    try:
        yield Namespaces(first), Namespaces(second)
    finally:
        await client.aclose()
        await first.client.aclose()
        await first.node.close()


async def test_revoking_a_parent_revokes_its_children_on_every_node(
    two_nodes: tuple[Namespaces, Namespaces],
) -> None:
    a, b = two_nodes
    t = await managed(a, "acme")
    await a.ok("POST", "sys/mounts/secret", ns="acme", token=t.admin, json=KV2)
    await a.ok("POST", "secret/data/app/x", token=t.user, json={"data": {"v": "1"}})
    key = await public_key(a)
    child = attenuate(t.user, key, paths=["secret/data/app/"], now=a.vault.clock.now())
    grandchild = attenuate(child, key, operations=["read"], now=a.vault.clock.now())
    sibling = (await a.ok("POST", "sys/iam/tokens", json={"tenant": "acme", "role": "user"}))["data"]["token"]
    for side in (a, b):  # both nodes serve (and cache the verification of) every token
        for token in (t.user, child, grandchild, sibling):
            await side.ok("GET", "secret/data/app/x", token=token)
    # Revoking the child (its own, last revocation id) revokes the grandchild, never the parent.
    await b.ok("PUT", "auth/token/revoke-self", token=child)
    for side in (a, b):
        await denied(side, "GET", "secret/data/app/x", child)
        await denied(side, "GET", "secret/data/app/x", grandchild)
        await side.ok("GET", "secret/data/app/x", token=t.user)
    # Revoking the issued token through node A: node B refuses it at its next request.
    await a.ok("POST", "sys/iam/revoke", json={"token": t.user})
    await denied(b, "GET", "secret/data/app/x", t.user)
    await denied(a, "GET", "secret/data/app/x", t.user)
    await b.ok("GET", "secret/data/app/x", token=sibling)  # another issued token of the tenant


async def test_platform_sealed_means_503_for_biscuits(ns: Namespaces, acme: Managed) -> None:
    await ns.ok("PUT", "sys/seal")
    for token in (acme.user, acme.admin):
        r = await ns.call("GET", "secret/data/x", token=token)
        assert r.status_code == 503


async def test_sealed_tenant_503_and_admin_may_unseal_it(ns: Namespaces, acme: Managed) -> None:
    await ns.ok("PUT", "sys/seal", token=acme.admin)  # no header: the token's tenant
    assert await ns.fails(503, "GET", "secret/data/x", token=acme.user) == ["Vault is sealed"]
    assert (await ns.ok("GET", "sys/seal-status", token=acme.admin))["sealed"] is True
    await denied(ns, "PUT", "sys/unseal", acme.user, json={"key": acme.keys[0]})
    assert (await ns.ok("PUT", "sys/unseal", token=acme.admin, json={"key": acme.keys[0]}))["sealed"] is False
    await ns.ok("GET", "secret/config", token=acme.user)


async def test_tenant_may_stop_accepting_platform_tokens_for_data(ns: Namespaces, acme: Managed) -> None:
    assert (await ns.ok("GET", "sys/iam/config", token=acme.admin))["data"] == {
        "accept_platform_tokens": "all"
    }
    for value in ("none", "", None, 1):
        await ns.fails(
            400, "POST", "sys/iam/config", ns="acme", token=acme.root, json={"accept_platform_tokens": value}
        )
    await ns.ok("POST", "sys/iam/config", ns="acme", token=acme.root,
                json={"accept_platform_tokens": "admin-ceremony-only"})  # fmt: skip
    # Data and administration: refused for every biscuit, the Administrator's included.
    for token in (acme.user, acme.admin):
        await denied(ns, "GET", "secret/config", token)
        await denied(ns, "GET", "auth/token/lookup-self", token)
        await denied(ns, "POST", "sys/iam/config", token, json={"accept_platform_tokens": "all"})
    # Ceremonies: still the Administrator's (they need the tenant's shares anyway, seal aside).
    await ns.ok("PUT", "sys/seal", token=acme.admin)
    await ns.ok("PUT", "sys/unseal", token=acme.admin, json={"key": acme.keys[0]})
    await denied(ns, "GET", "secret/config", acme.admin)
    # The tenant's own tokens are unaffected, and only they can switch back.
    await ns.ok("GET", "secret/config", ns="acme", token=acme.root)
    assert (await ns.ok("GET", "sys/iam/config", ns="acme", token=acme.root))["data"]["accept_platform_tokens"] == (
        "admin-ceremony-only")  # fmt: skip
    await ns.ok("POST", "sys/iam/config", ns="acme", token=acme.root, json={"accept_platform_tokens": "all"})
    await ns.ok("GET", "secret/config", token=acme.user)
    # The platform has no say in it, and the root namespace has no such setting.
    await ns.fails(403, "POST", "sys/iam/config", ns="acme", json={"accept_platform_tokens": "all"})
    assert (await ns.fails(400, "GET", "sys/iam/config"))[0].startswith(
        "sys/iam/config is a tenant's setting"
    )


async def test_node_paths_ignore_the_token(ns: Namespaces, acme: Managed) -> None:
    """sys/health, sys/leader: the node's, whatever the token (a load balancer may send any)."""
    for token in (acme.user, acme.admin, "sb.garbage"):
        r = await ns.call("GET", "sys/health", token=token)
        assert r.status_code == 200 and r.json()["sealed"] is False, r.text
        assert (await ns.call("GET", "sys/leader", token=token)).status_code == 200
    # sys/seal-status with no header is the token's tenant's (the Administrator's to read).
    assert (await ns.ok("GET", "sys/seal-status", token=acme.admin))["n"] == 1
    await denied(ns, "GET", "sys/seal-status", acme.user)
