"""sys/policies/acl, legacy sys/policy and sys/capabilities[-self|-accessor] in process."""

from __future__ import annotations

import pytest

from tests.support.vault import InProcessVault

HCL = 'path "secret/*" { capabilities = ["read", "list"] }\npath "secret/admin" { capabilities = ["deny"] }'
JSON_POLICY = '{"path": {"kv/*": {"capabilities": ["update"]}}}'


async def test_acl_crud(vault: InProcessVault) -> None:
    assert (await vault.call("PUT", "sys/policies/acl/app", json={"policy": HCL})).status_code == 204
    body = await vault.ok("GET", "sys/policies/acl/app")
    assert body["data"] == {"name": "app", "policy": HCL}
    await vault.ok("PUT", "sys/policies/acl/json", json={"policy": JSON_POLICY})
    keys = (await vault.ok("LIST", "sys/policies/acl"))["data"]["keys"]
    assert keys == sorted(keys) and {"app", "json", "default", "root"} <= set(keys)
    await vault.ok("PUT", "sys/policies/acl/app", json={"policy": 'path "x" { capabilities = ["read"] }'})
    assert "x" in (await vault.ok("GET", "sys/policies/acl/app"))["data"]["policy"]
    assert await vault.ok("DELETE", "sys/policies/acl/app") is None
    r = await vault.call("GET", "sys/policies/acl/app")
    assert (r.status_code, r.json()) == (404, {"errors": []})
    assert (await vault.call("DELETE", "sys/policies/acl/app")).status_code == 204


async def test_root_and_default_are_protected(vault: InProcessVault) -> None:
    assert (await vault.ok("GET", "sys/policies/acl/root"))["data"] == {"name": "root", "policy": ""}
    assert "sys/capabilities-self" in (await vault.ok("GET", "sys/policies/acl/default"))["data"]["policy"]
    r = await vault.call("PUT", "sys/policies/acl/root", json={"policy": HCL})
    assert r.json() == {"errors": ['cannot update "root" policy']}
    assert (await vault.call("DELETE", "sys/policies/acl/root")).status_code == 400
    assert (await vault.call("DELETE", "sys/policies/acl/default")).status_code == 400


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({}, "'policy' parameter not supplied or empty"),
        ({"policy": ""}, "'policy' parameter not supplied"),
        ({"rules": HCL}, "'policy' parameter not supplied"),
        ({"policy": "path {"}, "failed to parse policy"),
        ({"policy": 'path "a" { capabilities = ["fly"] }'}, ""),
    ],
)
async def test_acl_write_validation(vault: InProcessVault, body: dict[str, str], fragment: str) -> None:
    r = await vault.call("PUT", "sys/policies/acl/bad", json=body)
    assert r.status_code == 400 and fragment in r.json()["errors"][0]
    assert (await vault.call("GET", "sys/policies/acl/bad")).status_code == 404


async def test_legacy_policy_endpoints(vault: InProcessVault) -> None:
    r = await vault.ok("PUT", "sys/policy/old", json={"rules": HCL})
    assert r["warnings"] == ["'rules' is deprecated, please use 'policy' instead"]
    assert (await vault.call("PUT", "sys/policy/new", json={"policy": HCL})).status_code == 204
    one = await vault.ok("GET", "sys/policy/old")
    assert one["data"] == {"name": "old", "rules": HCL} and one["rules"] == HCL
    listing = await vault.ok("GET", "sys/policy")
    assert listing["keys"] == listing["policies"] == listing["data"]["keys"]
    assert {"old", "new", "default", "root"} <= set(listing["keys"])
    assert (await vault.ok("LIST", "sys/policy"))["data"]["keys"] == listing["keys"]
    await vault.ok("DELETE", "sys/policy/old")
    assert (await vault.call("GET", "sys/policy/old")).status_code == 404
    assert (await vault.call("PUT", "sys/policy/x", json={})).status_code == 400


async def test_capabilities(vault: InProcessVault) -> None:
    await vault.ok("PUT", "sys/policies/acl/app", json={"policy": HCL})
    child = await vault.token(["app"])
    lookup = await vault.ok("POST", "auth/token/lookup", json={"token": child})
    accessor = lookup["data"]["accessor"]
    one = await vault.ok("POST", "sys/capabilities", json={"token": child, "path": "secret/a"})
    assert one["data"] == {"secret/a": ["list", "read"], "capabilities": ["list", "read"]}
    assert one["capabilities"] == ["list", "read"]
    many = await vault.ok(
        "POST", "sys/capabilities", json={"token": child, "paths": ["secret/a", "secret/admin", "x"]}
    )
    assert many["data"] == {"secret/a": ["list", "read"], "secret/admin": ["deny"], "x": ["deny"]}
    by_accessor = await vault.ok(
        "POST", "sys/capabilities-accessor", json={"accessor": accessor, "paths": "secret/a,x"}
    )
    assert by_accessor["data"] == {"secret/a": ["list", "read"], "x": ["deny"]}
    own = await vault.ok("POST", "sys/capabilities-self", json={"path": "secret/b"}, token=child)
    assert own["data"]["capabilities"] == ["list", "read"]
    assert (await vault.ok("POST", "sys/capabilities-self", json={"path": "a"}))["data"]["capabilities"] == [
        "root"
    ]


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        ("sys/capabilities-self", {}, "paths must be supplied"),
        ("sys/capabilities", {"path": "a"}, "missing token"),
        ("sys/capabilities", {"token": "nope", "path": "a"}, "invalid token"),
        ("sys/capabilities-accessor", {"path": "a"}, "missing accessor"),
        ("sys/capabilities-accessor", {"accessor": "nope", "path": "a"}, "invalid accessor"),
    ],
)
async def test_capabilities_errors(
    vault: InProcessVault, path: str, body: dict[str, str], message: str
) -> None:
    r = await vault.call("POST", path, json=body)
    assert (r.status_code, r.json()) == (400, {"errors": [message]})


async def test_policy_endpoints_need_permission(vault: InProcessVault) -> None:
    token = await vault.token(["default"])
    assert (
        await vault.call("PUT", "sys/policies/acl/x", json={"policy": HCL}, token=token)
    ).status_code == 403
    assert (await vault.call("LIST", "sys/policies/acl", token=token)).status_code == 403
    # the default policy grants capabilities-self
    assert (
        await vault.call("POST", "sys/capabilities-self", json={"path": "a"}, token=token)
    ).status_code == 200
