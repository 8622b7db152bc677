"""sys/auth: the token method is listed; other methods are refused like a missing plugin."""

from __future__ import annotations

from tests.support.vault import InProcessVault


async def test_list_shows_the_token_method(vault: InProcessVault) -> None:
    body = await vault.ok("GET", "sys/auth")
    assert list(body["data"]) == ["token/"]
    assert body["data"]["token/"]["type"] == "token"
    assert body["token/"]["config"]["token_type"] == "default-service"  # also at the top level


async def test_enable_unknown_method_is_refused(vault: InProcessVault) -> None:
    r = await vault.call("POST", "sys/auth/userpass", json={"type": "userpass"})
    assert r.status_code == 400
    assert r.json()["errors"] == ["plugin not found in the catalog: userpass"]
    r = await vault.call("DELETE", "sys/auth/token")
    assert r.status_code == 400


async def test_enabling_needs_sudo(vault: InProcessVault) -> None:
    await vault.ok("PUT", "sys/policies/acl/auth-admin",
                   json={"policy": 'path "sys/auth/*" { capabilities = ["create", "update", "read"] }'})
    token = await vault.token(["auth-admin"])
    r = await vault.call("POST", "sys/auth/userpass", token=token, json={"type": "userpass"})
    assert r.status_code == 403
