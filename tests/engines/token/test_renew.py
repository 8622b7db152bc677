"""``auth/token/renew``, ``renew-self`` and ``renew-accessor``: increments, caps, periods, refusals."""

from __future__ import annotations

from tests.engines.token.helpers import AUTH_KEYS, DEFAULT_TTL, create, error, lookup, new_token
from tests.support.vault import InProcessVault


async def test_renew_with_increment_extends_from_now(vault: InProcessVault) -> None:
    made = (await create(vault, policies=["a"], ttl="1h"))["auth"]
    token = made["client_token"]
    vault.clock.advance(3000)
    body = await vault.ok("POST", "auth/token/renew", json={"token": token, "increment": "2h"})
    assert body["data"] is None and set(body["auth"]) == AUTH_KEYS
    assert body["auth"]["client_token"] == token and body["auth"]["lease_duration"] == 7200
    assert body["auth"]["policies"] == ["a", "default"]
    vault.clock.advance(3600)  # past the original expiry
    data = await lookup(vault, token)
    assert data["ttl"] == 3600 and data["creation_ttl"] == 3600


async def test_renew_self_and_renew_accessor(vault: InProcessVault) -> None:
    made = (await create(vault, policies=["default"], ttl="1h"))["auth"]
    token = made["client_token"]
    # The default policy grants renew-self.
    body = await vault.ok("POST", "auth/token/renew-self", token=token, json={"increment": 60})
    assert body["auth"]["lease_duration"] == 60 and body["auth"]["client_token"] == token
    body = await vault.ok(
        "POST", "auth/token/renew-accessor", json={"accessor": made["accessor"], "increment": "5m"}
    )
    assert body["auth"]["client_token"] == "" and body["auth"]["lease_duration"] == 300
    assert body["auth"]["accessor"] == made["accessor"]


async def test_renew_without_increment_reuses_the_last_ttl(vault: InProcessVault) -> None:
    token = await new_token(vault, policies=["a"], ttl="1h")
    await vault.ok("POST", "auth/token/renew", json={"token": token, "increment": "10m"})
    vault.clock.advance(60)
    body = await vault.ok("POST", "auth/token/renew", json={"token": token})
    assert body["auth"]["lease_duration"] == 600


async def test_renew_is_capped_by_explicit_max_ttl(vault: InProcessVault) -> None:
    token = await new_token(vault, policies=["a"], ttl="1h", explicit_max_ttl="90m")
    body = await vault.ok("POST", "auth/token/renew", json={"token": token, "increment": "2h"})
    assert body["auth"]["lease_duration"] == 5400
    assert body["warnings"] == [
        'TTL of "2h" exceeded the effective max_ttl of "1h30m"; TTL value is capped accordingly'
    ]
    vault.clock.advance(3600)
    body = await vault.ok("POST", "auth/token/renew", json={"token": token, "increment": "2h"})
    assert body["auth"]["lease_duration"] == 1800
    vault.clock.advance(1800)
    assert await error(vault, "POST", "auth/token/renew", 400, json={"token": token}) == "token not found"


async def test_renew_is_capped_by_the_system_max_from_creation(vault: InProcessVault) -> None:
    token = await new_token(vault, policies=["a"])
    vault.clock.advance(DEFAULT_TTL - 100)
    body = await vault.ok("POST", "auth/token/renew", json={"token": token, "increment": "1h"})
    assert body["auth"]["lease_duration"] == 100


async def test_periodic_renewal_resets_to_the_period(vault: InProcessVault) -> None:
    token = await new_token(vault, policies=["a"], period="30m")
    for _ in range(3):
        vault.clock.advance(1700)
        body = await vault.ok("POST", "auth/token/renew", json={"token": token, "increment": "2h"})
        assert body["auth"]["lease_duration"] == 1800
    # Periodic tokens live past the system max as long as they are renewed.
    vault.clock.advance(DEFAULT_TTL)
    await error(vault, "POST", "auth/token/renew", 400, json={"token": token})


async def test_periodic_token_with_explicit_max_ttl(vault: InProcessVault) -> None:
    token = await new_token(vault, policies=["a"], period="30m", explicit_max_ttl="40m")
    assert (await lookup(vault, token))["ttl"] == 1800
    vault.clock.advance(1200)
    body = await vault.ok("POST", "auth/token/renew", json={"token": token})
    assert body["auth"]["lease_duration"] == 1200


async def test_refusals(vault: InProcessVault) -> None:
    assert await error(vault, "POST", "auth/token/renew-self", 400) == "lease is not renewable"
    fixed = await new_token(vault, policies=["a"], renewable=False)
    assert (
        await error(vault, "POST", "auth/token/renew", 400, json={"token": fixed}) == "lease is not renewable"
    )
    assert await error(vault, "POST", "auth/token/renew", 400, json={}) == "missing token ID"
    assert await error(vault, "POST", "auth/token/renew", 400, json={"token": "nope"}) == "token not found"
    assert await error(vault, "POST", "auth/token/renew-accessor", 400, json={}) == "missing accessor"
    msg = await error(vault, "POST", "auth/token/renew-accessor", 400, json={"accessor": "nope"})
    assert msg == "invalid accessor"


async def test_expired_token_cannot_renew_itself(vault: InProcessVault) -> None:
    token = await new_token(vault, policies=["default"], ttl=60)
    vault.clock.advance(60)
    await error(vault, "POST", "auth/token/renew-self", 403, token=token, json={})
