"""``auth/token/lookup``, ``lookup-self``, ``lookup-accessor`` and ``accessors``."""

from __future__ import annotations

from tests.engines.token.helpers import CREATOR, LOOKUP_KEYS, SUDO, create, error, lookup, new_token, policy
from tests.support.vault import InProcessVault


async def test_lookup_variants_agree(vault: InProcessVault) -> None:
    made = (await create(vault, policies=["a"], ttl="1h"))["auth"]
    token = made["client_token"]
    by_post = (await vault.ok("POST", "auth/token/lookup", json={"token": token}))["data"]
    by_query = (await vault.ok("GET", f"auth/token/lookup?token={token}"))["data"]
    by_self = (await vault.ok("GET", "auth/token/lookup-self", token=token))["data"]
    assert by_post == by_query == by_self
    assert set(by_post) == LOOKUP_KEYS
    assert by_post["id"] == token and by_post["accessor"] == made["accessor"]
    assert by_post["policies"] == ["a", "default"]
    assert (by_post["ttl"], by_post["creation_ttl"], by_post["renewable"]) == (3600, 3600, True)
    assert (by_post["path"], by_post["display_name"], by_post["type"]) == (
        "auth/token/create",
        "token",
        "service",
    )
    assert by_post["expire_time"].endswith("Z") and by_post["issue_time"].endswith("Z")
    assert by_post["creation_time"] == int(vault.clock.now())


async def test_lookup_without_token_looks_up_the_caller(vault: InProcessVault) -> None:
    for method in ("GET", "POST"):
        data = (await vault.ok(method, "auth/token/lookup"))["data"]
        assert data["id"] == vault.root_token and data["policies"] == ["root"]
        assert data["expire_time"] is None and data["ttl"] == 0 and data["orphan"] is True


async def test_lookup_of_an_invalid_token_is_403_bad_token(vault: InProcessVault) -> None:
    assert await error(vault, "POST", "auth/token/lookup", 403, json={"token": "nope"}) == "bad token"


async def test_ttl_counts_down_with_the_clock(vault: InProcessVault) -> None:
    token = await new_token(vault, policies=["a"], ttl="1h")
    vault.clock.advance(600)
    assert (await lookup(vault, token))["ttl"] == 3000
    vault.clock.advance(3000)
    assert await error(vault, "POST", "auth/token/lookup", 403, json={"token": token}) == "bad token"
    await error(vault, "GET", "auth/token/lookup-self", 403, token=token)


async def test_default_policy_grants_lookup_self_read_only(vault: InProcessVault) -> None:
    token = await new_token(vault, policies=["default"])
    assert (await vault.ok("GET", "auth/token/lookup-self", token=token))["data"]["id"] == token
    # Vault's default policy grants only "read" there, so a POST is denied as in Vault.
    await error(vault, "POST", "auth/token/lookup-self", 403, token=token)
    await error(vault, "POST", "auth/token/lookup", 403, token=token, json={"token": token})
    assert (await vault.ok("POST", "auth/token/lookup-self"))["data"]["id"] == vault.root_token


async def test_lookup_accessor(vault: InProcessVault) -> None:
    made = (await create(vault, policies=["a"]))["auth"]
    data = (await vault.ok("POST", "auth/token/lookup-accessor", json={"accessor": made["accessor"]}))["data"]
    assert data["id"] == "" and data["accessor"] == made["accessor"] and set(data) == LOOKUP_KEYS
    assert await error(vault, "POST", "auth/token/lookup-accessor", 400, json={}) == "missing accessor"
    msg = await error(vault, "POST", "auth/token/lookup-accessor", 400, json={"accessor": "nope"})
    assert msg == "invalid accessor"


async def test_num_uses_counts_down_and_the_last_use_shows_minus_one(vault: InProcessVault) -> None:
    token = await new_token(vault, policies=["default"], num_uses=3)
    seen = [
        (await vault.ok("GET", "auth/token/lookup-self", token=token))["data"]["num_uses"] for _ in range(3)
    ]
    assert seen == [2, 1, -1]
    await error(vault, "GET", "auth/token/lookup-self", 403, token=token)
    assert await error(vault, "POST", "auth/token/lookup", 403, json={"token": token}) == "bad token"


async def test_lookup_by_another_token_does_not_show_a_use(vault: InProcessVault) -> None:
    token = await new_token(vault, policies=["default"], num_uses=3)
    assert (await lookup(vault, token))["num_uses"] == 3


async def test_optional_lookup_keys(vault: InProcessVault) -> None:
    token = await new_token(vault, policies=["a"], period="30m")
    await vault.ok("POST", "auth/token/renew", json={"token": token})
    data = await lookup(vault, token)
    assert data["period"] == 1800
    assert data["last_renewal_time"] == int(vault.clock.now()) and data["last_renewal"].endswith("Z")
    assert "role" not in data


async def test_accessors_list_needs_sudo(vault: InProcessVault) -> None:
    made = (await create(vault, policies=["a"]))["auth"]
    expired = (await create(vault, policies=["a"], ttl=10))["auth"]
    vault.clock.advance(11)
    keys = (await vault.ok("LIST", "auth/token/accessors"))["data"]["keys"]
    assert made["accessor"] in keys and expired["accessor"] not in keys
    assert keys == sorted(keys)
    assert (await vault.ok("GET", "auth/token/accessors?list=true"))["data"]["keys"] == keys
    await policy(vault, "creator", CREATOR)
    await policy(vault, "sudoer", SUDO)
    await error(
        vault, "LIST", "auth/token/accessors", 403, token=await new_token(vault, policies=["creator"])
    )
    sudo_keys = await vault.ok(
        "LIST", "auth/token/accessors", token=await new_token(vault, policies=["sudoer"])
    )
    assert made["accessor"] in sudo_keys["data"]["keys"]
