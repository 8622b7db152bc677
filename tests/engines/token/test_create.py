"""``auth/token/create`` and ``create-orphan``: shapes, policies, TTLs and every refusal."""

from __future__ import annotations

import pytest

from tests.engines.token.helpers import (
    AUTH_KEYS,
    CREATOR,
    DEFAULT_TTL,
    SUDO,
    create,
    error,
    lookup,
    new_token,
    policy,
)
from tests.support.vault import InProcessVault


async def test_create_response_shape(vault: InProcessVault) -> None:
    body = await create(vault, policies=["b", "a"], ttl="1h", meta={"k": "v"})
    assert body["data"] is None
    auth = body["auth"]
    assert set(auth) == AUTH_KEYS
    assert auth["client_token"].startswith("hvs.") and len(auth["client_token"]) == 28
    assert len(auth["accessor"]) == 24
    assert auth["policies"] == auth["token_policies"] == ["a", "b", "default"]
    assert auth["metadata"] == {"k": "v"}
    assert auth["lease_duration"] == 3600 and auth["renewable"] is True
    assert (auth["entity_id"], auth["token_type"], auth["orphan"], auth["num_uses"]) == (
        "",
        "service",
        False,
        0,
    )
    assert auth["mfa_requirement"] is None
    assert body["warnings"] == ['Policy "a" does not exist', 'Policy "b" does not exist']


async def test_default_ttl_and_cap_at_system_max(vault: InProcessVault) -> None:
    assert (await create(vault, policies=["x"]))["auth"]["lease_duration"] == DEFAULT_TTL
    body = await create(vault, policies=["x"], ttl="800h")
    assert body["auth"]["lease_duration"] == DEFAULT_TTL
    assert (
        body["warnings"][0]
        == 'TTL of "800h" exceeded the effective max_ttl of "768h"; TTL value is capped accordingly'
    )


@pytest.mark.parametrize(("ttl", "seconds"), [(90, 90), ("90", 90), ("5m", 300), ("1h30m", 5400)])
async def test_ttl_forms(vault: InProcessVault, ttl: object, seconds: int) -> None:
    assert (await create(vault, policies=["x"], ttl=ttl))["auth"]["lease_duration"] == seconds


async def test_explicit_max_ttl_caps_ttl(vault: InProcessVault) -> None:
    body = await create(vault, policies=["x"], ttl="2h", explicit_max_ttl="1h")
    assert body["auth"]["lease_duration"] == 3600
    assert 'TTL of "2h" exceeded the effective max_ttl of "1h"' in body["warnings"][0]
    assert (await lookup(vault, body["auth"]["client_token"]))["explicit_max_ttl"] == 3600


async def test_period_sets_the_lease(vault: InProcessVault) -> None:
    body = await create(vault, policies=["x"], period="10m", ttl="1h")
    assert body["auth"]["lease_duration"] == 600
    assert (await lookup(vault, body["auth"]["client_token"]))["period"] == 600


async def test_root_child_without_ttl_never_expires(vault: InProcessVault) -> None:
    auth = (await create(vault))["auth"]
    assert auth["policies"] == ["root"] and auth["lease_duration"] == 0 and auth["renewable"] is False
    data = await lookup(vault, auth["client_token"])
    assert data["expire_time"] is None and data["ttl"] == 0
    # An explicit max TTL still bounds a root token.
    assert (await create(vault, explicit_max_ttl="1h"))["auth"]["lease_duration"] == 3600


async def test_expiring_root_cannot_create_non_expiring_root(vault: InProcessVault) -> None:
    expiring = await new_token(vault, ttl="1h")
    msg = await error(vault, "POST", "auth/token/create", 400, token=expiring, json={})
    assert msg == "expiring root tokens cannot create non-expiring root tokens"


async def test_policy_normalisation(vault: InProcessVault) -> None:
    assert (await create(vault, policies=[" Foo ", "", "foo"]))["auth"]["policies"] == ["default", "foo"]
    # A string is one policy name, never split on commas (Vault's TypeStringSlice).
    assert (await create(vault, policies="x,y"))["auth"]["policies"] == ["default", "x,y"]
    assert (await create(vault, policies=["a"], no_default_policy=True))["auth"]["policies"] == ["a"]
    assert (await create(vault, policies=["default"]))["auth"]["policies"] == ["default"]
    msg = await error(vault, "POST", "auth/token/create", 400, json={"policies": ["response-wrapping"]})
    assert msg == 'cannot assign policy "response-wrapping"'


async def test_display_name_and_meta_forms(vault: InProcessVault) -> None:
    token = await new_token(vault, display_name="My App!!", meta="a=b")
    data = await lookup(vault, token)
    assert data["display_name"] == "token-My-App-"
    assert data["meta"] == {"a": "b"}
    assert (await create(vault, meta={}))["auth"]["metadata"] == {}
    assert (await create(vault))["auth"]["metadata"] is None
    assert "invalid key pair" in await error(vault, "POST", "auth/token/create", 400, json={"meta": 5})


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"type": "batch"}, "batch tokens are not supported by strongroom; use 'service'"),
        ({"type": "foo"}, "invalid 'token_type' value"),
        ({"entity_alias": "x"}, "'entity_alias' is only allowed in combination with token role"),
        ({"num_uses": -1}, "number of uses cannot be negative"),
        ({"ttl": "-1h"}, "ttl must be positive"),
        ({"ttl": "abc"}, 'time: invalid duration "abc"'),
        ({"explicit_max_ttl": "-5s"}, "explicit_max_ttl must be positive"),
        ({"period": "-5s"}, "period must be positive"),
        ({"id": "hvs.abc"}, "custom token ID cannot have the 'hvs.' prefix"),
        ({"id": "s.abc"}, "custom token ID cannot have the 's.' prefix"),
        ({"id": "a.b"}, "custom token ID cannot have a '.' in the value"),
        ({"renewable": "nope"}, "renewable"),
    ],
)
async def test_invalid_create_requests(vault: InProcessVault, body: dict[str, object], message: str) -> None:
    assert message in await error(vault, "POST", "auth/token/create", 400, json=body)


async def test_custom_id_for_root(vault: InProcessVault) -> None:
    auth = (await create(vault, id="custom-id"))["auth"]
    assert auth["client_token"] == "custom-id"
    assert (await vault.ok("GET", "auth/token/lookup-self", token="custom-id"))["data"]["id"] == "custom-id"
    msg = await error(vault, "POST", "auth/token/create", 400, json={"id": "custom-id"})
    assert msg == "cannot create a token with a duplicate ID"


async def test_non_root_caller_gets_a_subset_of_its_policies(vault: InProcessVault) -> None:
    await policy(vault, "creator", CREATOR)
    parent = await new_token(vault, policies=["creator", "a"])
    msg = await error(vault, "POST", "auth/token/create", 400, token=parent, json={"policies": ["b"]})
    assert msg == "child policies must be subset of parent"
    msg = await error(vault, "POST", "auth/token/create", 400, token=parent, json={"policies": ["root"]})
    assert msg == "child policies must be subset of parent"
    assert (await create(vault, parent, policies=["a"]))["auth"]["policies"] == ["a", "default"]
    assert (await create(vault, parent))["auth"]["policies"] == ["a", "creator", "default"]
    child = await create(vault, parent, policies=["a"], no_default_policy=True)
    assert child["auth"]["policies"] == ["a"] and child["auth"]["orphan"] is False


async def test_default_policy_is_added_only_if_the_parent_has_it(vault: InProcessVault) -> None:
    await policy(vault, "creator", CREATOR)
    parent = await new_token(vault, policies=["creator", "a"], no_default_policy=True)
    assert (await create(vault, parent, policies=["a"]))["auth"]["policies"] == ["a"]


async def test_root_or_sudo_is_needed_for_id_orphan_and_period(vault: InProcessVault) -> None:
    await policy(vault, "creator", CREATOR)
    parent = await new_token(vault, policies=["creator"])
    for body, message in [
        ({"id": "mine"}, "root or sudo privileges required to specify token id"),
        ({"no_parent": True}, "root or sudo privileges required to create orphan token"),
        ({"period": "1h"}, "root or sudo privileges required to create periodic token"),
    ]:
        assert await error(vault, "POST", "auth/token/create", 400, token=parent, json=body) == message


async def test_sudo_caller_may_assign_any_policy_but_not_root(vault: InProcessVault) -> None:
    await policy(vault, "sudoer", SUDO)
    parent = await new_token(vault, policies=["sudoer"])
    assert (await create(vault, parent, policies=["other"]))["auth"]["policies"] == ["default", "other"]
    assert (await create(vault, parent, id="sudo-chosen"))["auth"]["client_token"] == "sudo-chosen"
    assert (await create(vault, parent, no_parent=True))["auth"]["orphan"] is True
    msg = await error(vault, "POST", "auth/token/create", 400, token=parent, json={"policies": ["root"]})
    assert msg == "root tokens may not be created without parent token being root"


async def test_create_orphan_is_governed_by_the_acl(vault: InProcessVault) -> None:
    await policy(vault, "creator", CREATOR)
    await policy(vault, "onlycreate", 'path "auth/token/create" { capabilities = ["update"] }')
    parent = await new_token(vault, policies=["creator"])
    assert (await create(vault, parent, path="create-orphan"))["auth"]["orphan"] is True
    limited = await new_token(vault, policies=["onlycreate"])
    await error(vault, "POST", "auth/token/create-orphan", 403, token=limited, json={})
    assert (await create(vault, path="create-orphan", policies=["x"]))["auth"]["orphan"] is True


async def test_default_policy_alone_cannot_create_tokens(vault: InProcessVault) -> None:
    plain = await new_token(vault, policies=["default"])
    assert await error(vault, "POST", "auth/token/create", 403, token=plain, json={}) == "permission denied"


async def test_limited_use_token_cannot_create_children(vault: InProcessVault) -> None:
    await policy(vault, "creator", CREATOR)
    limited = await new_token(vault, policies=["creator"], num_uses=5)
    msg = await error(vault, "POST", "auth/token/create", 400, token=limited, json={})
    assert msg == "restricted use token cannot generate child tokens"


async def test_num_uses_is_reported(vault: InProcessVault) -> None:
    auth = (await create(vault, policies=["x"], num_uses=3))["auth"]
    assert auth["num_uses"] == 3
    assert (await lookup(vault, auth["client_token"]))["num_uses"] == 3


async def test_renewable_false_is_kept(vault: InProcessVault) -> None:
    auth = (await create(vault, policies=["x"], renewable=False))["auth"]
    assert auth["renewable"] is False and auth["lease_duration"] == DEFAULT_TTL
    assert (await lookup(vault, auth["client_token"]))["renewable"] is False


async def test_unknown_paths_and_methods(vault: InProcessVault) -> None:
    await error(vault, "POST", "auth/token/bogus", 404)
    await error(vault, "DELETE", "auth/token/create", 405)
    await error(vault, "GET", "auth/token/lookup-accessor", 405)
