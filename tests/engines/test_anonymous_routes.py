"""Requests without a token: only routes declared unauthenticated answer, and they reveal only what Vault
reveals to anyone (mounts tuned with listing_visibility=unauth)."""

from __future__ import annotations

from tests.support.vault import InProcessVault


async def test_ui_mounts_without_token_lists_only_unauth_visible(vault: InProcessVault) -> None:
    await vault.ok("POST", "sys/mounts/hidden", json={"type": "kv"})
    await vault.ok("POST", "sys/mounts/public", json={"type": "kv", "config": {"listing_visibility": "unauth"}})
    body = await vault.ok("GET", "sys/internal/ui/mounts", token="")
    assert list(body["data"]["secret"]) == ["public/"]
    r = await vault.call("GET", "sys/internal/ui/mounts/hidden/x", token="")
    assert r.status_code == 403
    r = await vault.call("GET", "sys/internal/ui/mounts/public/x", token="")
    assert r.status_code == 200


async def test_token_sees_the_mounts_it_can_reach(vault: InProcessVault) -> None:
    await vault.ok("POST", "sys/mounts/team", json={"type": "kv", "options": {"version": "2"}})
    await vault.ok("POST", "sys/mounts/other", json={"type": "kv"})
    await vault.ok("PUT", "sys/policies/acl/team", json={"policy": 'path "team/data/app" { capabilities = ["read"] }'})
    token = await vault.token(["team"])
    body = await vault.ok("GET", "sys/internal/ui/mounts", token=token)
    assert "team/" in body["data"]["secret"]
    assert "other/" not in body["data"]["secret"]


async def test_anonymous_requests_elsewhere_are_all_the_same_403(vault: InProcessVault) -> None:
    for path in ["secret/data/x", "sys/mounts", "nope/at/all", "auth/token/lookup-self", "sys/nonexistent"]:
        r = await vault.call("GET", path, token="")
        assert r.status_code == 403, path
        assert r.json() == {"errors": ["permission denied"]}
