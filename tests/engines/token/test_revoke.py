"""Revocation endpoints, expiry through the clock, and tidy."""

from __future__ import annotations

from tests.engines.token.helpers import CREATOR, create, error, lookup, new_token, policy
from tests.support.vault import InProcessVault


async def _tree(vault: InProcessVault) -> tuple[str, str, str]:
    await policy(vault, "creator", CREATOR)
    parent = await new_token(vault, policies=["creator"])
    child = await new_token(vault, parent, policies=["creator"])
    grandchild = await new_token(vault, child)
    return parent, child, grandchild


async def test_revoking_a_parent_revokes_all_descendants(vault: InProcessVault) -> None:
    parent, child, grandchild = await _tree(vault)
    accessor = (await lookup(vault, grandchild))["accessor"]
    r = await vault.call("POST", "auth/token/revoke", json={"token": parent})
    assert r.status_code == 204 and r.content == b""
    for token in (parent, child, grandchild):
        assert await error(vault, "POST", "auth/token/lookup", 403, json={"token": token}) == "bad token"
        await error(vault, "GET", "auth/token/lookup-self", 403, token=token)
    await error(vault, "POST", "auth/token/lookup-accessor", 400, json={"accessor": accessor})


async def test_revoke_of_unknown_token_is_a_no_op(vault: InProcessVault) -> None:
    assert (await vault.call("POST", "auth/token/revoke", json={"token": "nope"})).status_code == 204
    assert await error(vault, "POST", "auth/token/revoke", 400, json={}) == "missing token ID"


async def test_revoke_self_through_the_default_policy(vault: InProcessVault) -> None:
    token = await new_token(vault, policies=["default"], num_uses=5)
    assert (await vault.call("POST", "auth/token/revoke-self", token=token)).status_code == 204
    await error(vault, "GET", "auth/token/lookup-self", 403, token=token)
    assert await error(vault, "POST", "auth/token/lookup", 403, json={"token": token}) == "bad token"


async def test_revoke_accessor(vault: InProcessVault) -> None:
    parent, child, _ = await _tree(vault)
    accessor = (await lookup(vault, parent))["accessor"]
    assert (
        await vault.call("POST", "auth/token/revoke-accessor", json={"accessor": accessor})
    ).status_code == 204
    await error(vault, "POST", "auth/token/lookup", 403, json={"token": child})
    body = await vault.ok("POST", "auth/token/revoke-accessor", json={"accessor": "nope"})
    assert body["warnings"] == ["No token found with this accessor"] and body["data"] is None
    assert await error(vault, "POST", "auth/token/revoke-accessor", 400, json={}) == "missing accessor"


async def test_revoke_orphan_keeps_the_children_as_orphans(vault: InProcessVault) -> None:
    parent, child, grandchild = await _tree(vault)
    assert (await vault.call("POST", "auth/token/revoke-orphan", json={"token": parent})).status_code == 204
    await error(vault, "POST", "auth/token/lookup", 403, json={"token": parent})
    assert (await lookup(vault, child))["orphan"] is True
    assert (await lookup(vault, grandchild))["orphan"] is False
    msg = await error(vault, "POST", "auth/token/revoke-orphan", 400, json={"token": parent})
    assert msg == "token to revoke not found"
    assert await error(vault, "POST", "auth/token/revoke-orphan", 400, json={}) == "missing token ID"


async def test_revoke_orphan_needs_sudo(vault: InProcessVault) -> None:
    _, child, grandchild = await _tree(vault)
    # The ACL lets the call through; the handler then asks for sudo, as Vault's does.
    msg = await error(vault, "POST", "auth/token/revoke-orphan", 400, token=child, json={"token": grandchild})
    assert msg == "root or sudo privileges required to revoke and orphan"
    plain = await new_token(vault, policies=["default"])
    await error(vault, "POST", "auth/token/revoke-orphan", 403, token=plain, json={"token": grandchild})
    assert (await lookup(vault, grandchild))["orphan"] is False


async def test_expiry_of_a_parent_invalidates_its_children(vault: InProcessVault) -> None:
    await policy(vault, "creator", CREATOR)
    parent = await new_token(vault, policies=["creator"], ttl=600)
    child = await new_token(vault, parent, ttl=300)
    await vault.ok("POST", "auth/token/renew", json={"token": child, "increment": "1h"})
    vault.clock.advance(600)
    await error(vault, "GET", "auth/token/lookup-self", 403, token=child)
    assert await error(vault, "POST", "auth/token/lookup", 403, json={"token": child}) == "bad token"


async def test_tidy_answers_202_and_removes_expired_tokens(vault: InProcessVault) -> None:
    made = (await create(vault, policies=["a"], ttl=10))["auth"]
    vault.clock.advance(11)
    r = await vault.call("POST", "auth/token/tidy")
    assert r.status_code == 202
    body = r.json()
    assert body["data"] is None and body["auth"] is None
    assert body["warnings"] == ["Tidy operation completed: removed 1 expired or invalid token records."]
    again = (await vault.call("POST", "auth/token/tidy")).json()
    assert "removed 0" in again["warnings"][0]
    await error(vault, "POST", "auth/token/lookup-accessor", 400, json={"accessor": made["accessor"]})
