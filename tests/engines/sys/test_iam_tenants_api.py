"""``sys/iam/*`` endpoints in process: tenants, tokens, the public key, revocation, and their bad input.

Every refused call is a clear 4xx and changes nothing (checked by reading the state afterwards).
"""

from __future__ import annotations

from typing import Any

import pytest

from strongroom.auth.iam import IamKey, IamPublicKey, IamVerifier, NothingRevoked, Role, issue_token
from strongroom.core.platform import IAM_SIGNING_KEY
from strongroom.storage.base import Transaction, transactional
from tests.support.namespaces import Namespaces
from tests.support.vault import InProcessVault

HOUR = 3600


@pytest.fixture
def ns(vault: InProcessVault) -> Namespaces:
    return Namespaces(vault)


def _verifier(document: dict[str, Any]) -> IamVerifier:
    public = IamPublicKey.parse(document["public_key"], document["key_id"])
    return IamVerifier([public], NothingRevoked())


async def test_online_init_writes_the_iam_key_and_publishes_it(ns: Namespaces) -> None:
    r = await ns.call("GET", "sys/iam/public-key", token="")  # no token needed
    assert r.status_code == 200, r.text
    doc = r.json()["data"]
    assert doc["algorithm"] == "ed25519" and doc["key_id"] == 1
    assert doc["public_key"].startswith("ed25519/") and doc["keys"] == {"1": doc["public_key"]}
    # The same document with any token, and inside a tenant.
    assert (await ns.ok("GET", "sys/iam/public-key"))["data"] == doc
    await ns.tenant("acme")
    assert (await ns.ok("GET", "sys/iam/public-key", ns="acme", token=""))["data"] == doc


async def test_create_tenant_returns_its_tokens(ns: Namespaces) -> None:
    body = await ns.ok("POST", "sys/iam/tenants/acme", json={"ttl": "48h"})
    data = body["data"]
    assert (data["tenant"], data["path"], data["key_id"]) == ("acme", "acme/", 1)
    now = ns.vault.clock.now()
    assert data["expires_at"] == now + 48 * HOUR and data["expiry"].startswith("2023-11-16T22:13:20")
    doc = (await ns.ok("GET", "sys/iam/public-key"))["data"]
    assert data["public_key"] == doc["public_key"]
    verifier = _verifier(doc)  # what a holder or a third party does with the published key
    admin = verifier.verify(data["admin_token"]).facts
    user = verifier.verify(data["user_token"]).facts
    assert (admin.tenant, admin.role, user.tenant, user.role) == ("acme", Role.ADMIN, "acme", Role.USER)
    # A sealable namespace that is still uninitialised: its administrator runs sys/init.
    status = (await ns.ok("GET", "sys/namespaces/acme/seal-status"))["data"]
    assert (status["initialized"], status["sealed"]) == (False, True)
    read = (await ns.ok("GET", "sys/iam/tenants/acme"))["data"]
    assert (read["path"], read["initialized"], read["sealed"]) == ("acme/", False, True)
    listed = (await ns.ok("LIST", "sys/iam/tenants"))["data"]
    assert listed["keys"] == ["acme/"] and listed["key_info"]["acme/"]["path"] == "acme/"


async def test_default_ttl_is_thirty_days(ns: Namespaces) -> None:
    data = (await ns.ok("POST", "sys/iam/tenants/acme"))["data"]
    assert data["expires_at"] == ns.vault.clock.now() + 720 * HOUR


async def test_plain_namespaces_are_not_listed_as_tenants(ns: Namespaces) -> None:
    await ns.fails(404, "LIST", "sys/iam/tenants")
    await ns.plain("team")
    await ns.tenant("bank")  # an OpenBao-style tenant is a tenant too
    assert (await ns.ok("LIST", "sys/iam/tenants"))["data"]["keys"] == ["bank/"]
    assert await ns.fails(400, "GET", "sys/iam/tenants/team") == [
        'namespace "team/" is not a tenant (it has no seal of its own)'
    ]
    await ns.fails(404, "GET", "sys/iam/tenants/nope")


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("a%2Fb", "namespace name cannot contain /"),
        ("%2E%2E", '"../" is a reserved path and cannot be used as a namespace name'),
        ("%2E", '"./" is a reserved path and cannot be used as a namespace name'),
        ("sys", '"sys/" is a reserved path and cannot be used as a namespace name'),
        ("root", '"root/" is a reserved path and cannot be used as a namespace name'),
        ("a%01b", "contains unicode characters that cannot be used in a namespace name"),
        ("x" * 65, "is longer than 64 bytes"),
    ],
)
async def test_bad_tenant_names_are_refused_and_create_nothing(
    ns: Namespaces, name: str, message: str
) -> None:
    errors = await ns.fails(400, "POST", f"sys/iam/tenants/{name}")
    assert message in errors[0]
    await ns.fails(404, "LIST", "sys/iam/tenants")
    await ns.fails(404, "LIST", "sys/namespaces")


async def test_bad_creations_change_nothing(ns: Namespaces) -> None:
    first = (await ns.ok("POST", "sys/iam/tenants/acme"))["data"]
    assert await ns.fails(400, "POST", "sys/iam/tenants/acme") == ['namespace "acme/" already exists']
    for ttl in ("0s", "-5m", "abc", "87601h"):
        await ns.fails(400, "POST", "sys/iam/tenants/other", json={"ttl": ttl})
    assert (await ns.ok("LIST", "sys/iam/tenants"))["data"]["keys"] == ["acme/"]
    # The first tenant's tokens still work for it (nothing was replaced).
    assert (await ns.ok("GET", "sys/seal-status", ns="acme", token=first["admin_token"]))[
        "initialized"
    ] is False


async def test_only_the_platform_root_token_may_manage_tenants(ns: Namespaces) -> None:
    await ns.ok(
        "PUT",
        "sys/policies/acl/ops",
        json={"policy": 'path "sys/iam/*" { capabilities = ["create", "read", "update", "delete", "list"] }'},
    )
    ops = await ns.vault.token(["ops"])  # every capability but sudo
    await ns.fails(403, "POST", "sys/iam/tenants/acme", token=ops)
    await ns.fails(403, "POST", "sys/iam/tokens", token=ops, json={"tenant": "acme", "role": "user"})
    await ns.fails(403, "POST", "sys/iam/tenants/acme", token="")
    await ns.fails(404, "LIST", "sys/iam/tenants")
    # A tenant's own root token (or its Administrator) is in the wrong namespace for platform endpoints.
    t = await ns.tenant("bank")
    assert await ns.fails(400, "POST", "sys/iam/tenants/x", ns="bank", token=t.root_token) == [
        "sys/iam/tenants/x is a platform endpoint: call it in the root namespace"
    ]
    await ns.fails(
        400,
        "POST",
        "sys/iam/tokens",
        ns="bank",
        token=t.admin_token,
        json={"tenant": "bank", "role": "admin"},
    )


async def test_issue_tokens_for_existing_tenants_only(ns: Namespaces) -> None:
    await ns.ok("POST", "sys/iam/tenants/acme")
    data = (await ns.ok("POST", "sys/iam/tokens", json={"tenant": "acme", "role": "user", "ttl": "2h"}))[
        "data"
    ]
    assert (data["tenant"], data["role"], data["expires_at"]) == (
        "acme",
        "user",
        ns.vault.clock.now() + 2 * HOUR,
    )
    facts = _verifier((await ns.ok("GET", "sys/iam/public-key"))["data"]).verify(data["token"]).facts
    assert facts.revocation_id == data["revocation_id"] and facts.role is Role.USER
    assert (await ns.ok("POST", "sys/iam/tokens", json={"tenant": "/acme/", "role": "admin"}))["data"][
        "tenant"
    ] == "acme"
    await ns.plain("team")
    cases: list[tuple[dict[str, Any], str]] = [
        ({"tenant": "nope", "role": "user"}, 'tenant "nope" does not exist'),
        ({"tenant": "team", "role": "user"}, 'tenant "team" does not exist'),
        ({"tenant": "", "role": "user"}, "tenant is required"),
        ({"tenant": "root", "role": "user"}, 'tenant "root" does not exist'),
        ({"tenant": "acme", "role": "owner"}, "role must be admin or user"),
        ({"tenant": "acme", "role": "user", "ttl": "0"}, "ttl must be a positive duration of at most 87600h"),
        ({"tenant": "a//b", "role": "user"}, "namespace name cannot be empty"),
        (
            {"tenant": "acme/../x", "role": "user"},
            '"../" is a reserved path and cannot be used as a namespace name',
        ),
    ]
    for body, message in cases:
        assert await ns.fails(400, "POST", "sys/iam/tokens", json=body) == [message], body


async def test_nested_tenants_get_tokens_too(ns: Namespaces) -> None:
    outer = await ns.tenant("outer")
    inner = await ns.tenant("inner", ns="outer", token=outer.root_token)
    token = (await ns.ok("POST", "sys/iam/tokens", json={"tenant": "outer/inner", "role": "admin"}))["data"][
        "token"
    ]
    assert (await ns.ok("GET", "sys/mounts", ns="outer/inner", token=token))["data"]["sys/"][
        "type"
    ] == "system"
    # ... and with no header the token's own tenant is addressed, nested path included.
    assert (await ns.ok("GET", "sys/mounts", token=token))["data"]["sys/"]["type"] == "system"
    await ns.fails(403, "GET", "sys/mounts", ns="outer", token=token)
    assert inner.path == "outer/inner/"


async def test_delete_only_a_sealed_tenant(ns: Namespaces) -> None:
    t = await ns.tenant("acme")
    assert await ns.fails(400, "DELETE", "sys/iam/tenants/acme") == ["namespace is not sealed"]
    assert (await ns.ok("GET", "sys/iam/tenants/acme"))["data"]["sealed"] is False  # nothing changed
    await ns.ok("GET", "sys/mounts", ns="acme", token=t.root_token)
    await ns.ok("PUT", "sys/seal", ns="acme", token=t.admin_token)
    assert (await ns.ok("DELETE", "sys/iam/tenants/acme"))["data"] == {"status": "in-progress"}
    await ns.fails(404, "GET", "sys/iam/tenants/acme")
    assert (await ns.ok("DELETE", "sys/iam/tenants/acme"))["warnings"] == [
        "requested namespace does not exist"
    ]
    # An uninitialised tenant holds nothing yet: it is sealed, so it may go.
    await ns.ok("POST", "sys/iam/tenants/fresh")
    await ns.ok("DELETE", "sys/iam/tenants/fresh")
    await ns.plain("team")
    assert "is not a tenant" in (await ns.fails(400, "DELETE", "sys/iam/tenants/team"))[0]
    assert (await ns.ok("GET", "sys/namespaces/team"))["data"]["path"] == "team/"


async def test_a_recreated_name_refuses_the_old_names_tokens(ns: Namespaces) -> None:
    old = (await ns.ok("POST", "sys/iam/tenants/acme"))["data"]
    await ns.ok("DELETE", "sys/iam/tenants/acme")
    # A token of a deleted tenant: refused (403), not "sealed".
    await ns.fails(403, "GET", "sys/seal-status", ns="acme", token=old["admin_token"])
    await ns.fails(403, "GET", "sys/mounts", token=old["user_token"])
    ns.vault.clock.advance(1)
    new = (await ns.ok("POST", "sys/iam/tenants/acme"))["data"]
    await ns.fails(403, "GET", "sys/seal-status", ns="acme", token=old["admin_token"])
    await ns.fails(
        403,
        "PUT",
        "sys/init",
        ns="acme",
        token=old["admin_token"],
        json={"secret_shares": 1, "secret_threshold": 1},
    )
    assert (await ns.ok("GET", "sys/seal-status", ns="acme", token=new["admin_token"]))[
        "initialized"
    ] is False


async def _revoked_ids(vault: InProcessVault) -> int:
    async def count(tx: Transaction) -> int:
        keys = await vault.node.root.current_keys(tx)
        return len(await keys.records(tx, "sys", "iam-revoked").range())

    return await transactional(vault.node.store, count)


async def test_revoke_by_id_and_by_token(ns: Namespaces) -> None:
    t = await ns.tenant("acme")
    user = (await ns.ok("POST", "sys/iam/tokens", json={"tenant": "acme", "role": "user"}))["data"]
    await ns.ok("GET", "auth/token/lookup-self", token=user["token"])
    body = await ns.ok("POST", "sys/iam/revoke", json={"revocation_id": user["revocation_id"].upper()})
    assert body["data"] == {"revocation_id": user["revocation_id"]}
    await ns.fails(403, "GET", "auth/token/lookup-self", token=user["token"])
    # By token: the token's last revocation id; the answer says whose it was.
    other = (await ns.ok("POST", "sys/iam/tokens", json={"tenant": "acme", "role": "user"}))["data"]
    body = await ns.ok("POST", "sys/iam/revoke", json={"token": other["token"]})
    assert body["data"] == {"revocation_id": other["revocation_id"], "tenant": "acme", "role": "user"}
    await ns.fails(403, "GET", "auth/token/lookup-self", token=other["token"])
    assert await _revoked_ids(ns.vault) == 2
    # The tenant's Administrator revokes tokens of its own tenant, by token (inside the tenant).
    third = (await ns.ok("POST", "sys/iam/tokens", json={"tenant": "acme", "role": "user"}))["data"]
    await ns.ok("POST", "sys/iam/revoke", ns="acme", token=t.admin_token, json={"token": third["token"]})
    await ns.fails(403, "GET", "auth/token/lookup-self", token=third["token"])
    # ... and so does a tenant token with sudo on the path (the tenant's root token).
    fourth = (await ns.ok("POST", "sys/iam/tokens", json={"tenant": "acme", "role": "user"}))["data"]
    await ns.ok("POST", "sys/iam/revoke", ns="acme", token=t.root_token, json={"token": fourth["token"]})
    await ns.fails(403, "GET", "auth/token/lookup-self", token=fourth["token"])
    assert await _revoked_ids(ns.vault) == 4


async def test_bad_revocations_are_refused_and_revoke_nothing(ns: Namespaces) -> None:
    t = await ns.tenant("acme")
    bank = await ns.tenant("bank")
    user = (await ns.ok("POST", "sys/iam/tokens", json={"tenant": "bank", "role": "user"}))["data"]
    forged = issue_token(IamKey.generate(1), tenant="acme", role="admin", ttl=HOUR, now=ns.vault.clock.now())
    platform: list[tuple[dict[str, Any], str]] = [
        ({}, "give exactly one of revocation_id or token"),
        ({"revocation_id": "ab", "token": user["token"]}, "give exactly one of revocation_id or token"),
        ({"revocation_id": "xyz"}, "revocation_id must be the hex revocation id of a token block"),
        ({"revocation_id": ""}, "revocation_id must be the hex revocation id of a token block"),
        ({"revocation_id": "a" * 258}, "revocation_id must be the hex revocation id of a token block"),
        ({"revocation_id": 12}, "revocation_id must be the hex revocation id of a token block"),
        ({"token": forged}, "token is not a valid IAM token of this platform"),
        ({"token": "sb.garbage"}, "token is not a valid IAM token of this platform"),
        ({"token": "hvs.notabiscuit"}, "token is not a valid IAM token of this platform"),
        ({"token": 5}, "token must be a string"),
    ]
    for body, message in platform:
        assert await ns.fails(400, "POST", "sys/iam/revoke", json=body) == [message], body
    inside: list[tuple[dict[str, Any], str]] = [
        (
            {"revocation_id": user["revocation_id"]},
            "inside a tenant, revoke by token: a revocation id does not say whose it is",
        ),
        ({"token": user["token"]}, "token is not a token of this tenant"),
    ]
    for body, message in inside:
        assert await ns.fails(400, "POST", "sys/iam/revoke", ns="acme", token=t.admin_token, json=body) == [
            message
        ]
    # A User token may not revoke anything there, nor the platform's non-sudo tokens.
    acme_user = (await ns.ok("POST", "sys/iam/tokens", json={"tenant": "acme", "role": "user"}))["data"][
        "token"
    ]
    await ns.fails(403, "POST", "sys/iam/revoke", token=acme_user, json={"token": acme_user})
    assert await _revoked_ids(ns.vault) == 0
    await ns.ok("GET", "auth/token/lookup-self", token=user["token"])
    assert bank.path == "bank/"


async def test_a_platform_without_an_iam_key_gets_one_at_the_first_issue(ns: Namespaces) -> None:
    """Platforms initialised before the IAM existed have no key: biscuits are refused until one exists."""

    async def drop(tx: Transaction) -> None:
        keys = await ns.vault.node.root.current_keys(tx)
        keys.records(tx, "sys").clear(*IAM_SIGNING_KEY)

    await transactional(ns.vault.node.store, drop)
    assert await ns.fails(400, "GET", "sys/iam/public-key", token="") == [
        "the platform has no IAM signing key yet"
    ]
    data = (await ns.ok("POST", "sys/iam/tenants/acme"))["data"]
    doc = (await ns.ok("GET", "sys/iam/public-key", token=""))["data"]
    assert doc["public_key"] == data["public_key"]
    assert (await ns.ok("GET", "sys/seal-status", ns="acme", token=data["admin_token"]))[
        "initialized"
    ] is False


async def test_a_new_iam_key_is_used_at_the_next_request(ns: Namespaces) -> None:
    """The node caches the verifier but reads the key record in every biscuit request's transaction."""
    data = (await ns.ok("POST", "sys/iam/tenants/acme"))["data"]
    await ns.ok("GET", "sys/seal-status", ns="acme", token=data["admin_token"])
    replacement = IamKey.generate(1)

    async def replace(tx: Transaction) -> None:
        keys = await ns.vault.node.root.current_keys(tx)
        keys.records(tx, "sys").put(IAM_SIGNING_KEY, replacement.to_bytes().reveal())

    await transactional(ns.vault.node.store, replace)
    await ns.fails(403, "GET", "sys/seal-status", ns="acme", token=data["admin_token"])
    fresh = issue_token(replacement, tenant="acme", role="admin", ttl=HOUR, now=ns.vault.clock.now())
    assert (await ns.ok("GET", "sys/seal-status", ns="acme", token=fresh))["initialized"] is False
    doc = (await ns.ok("GET", "sys/iam/public-key", token=""))["data"]
    assert doc["public_key"] == replacement.public_key.to_text()
