"""``auth/token/roles`` and ``auth/token/create/:role_name``."""

from __future__ import annotations

from tests.engines.token.helpers import CREATOR, create, error, lookup, new_token, policy
from tests.support.vault import InProcessVault

ROLE_KEYS = {
    "allowed_entity_aliases", "allowed_policies", "allowed_policies_glob", "disallowed_policies",
    "disallowed_policies_glob", "explicit_max_ttl", "name", "orphan", "path_suffix", "period", "renewable",
    "token_explicit_max_ttl", "token_no_default_policy", "token_period", "token_type",
}  # fmt: skip


async def test_role_crud_and_list(vault: InProcessVault) -> None:
    await error(vault, "LIST", "auth/token/roles", 404)
    r = await vault.call("POST", "auth/token/roles/r1", json={"allowed_policies": ["B", "a"], "orphan": True})
    assert r.status_code == 204
    data = (await vault.ok("GET", "auth/token/roles/r1"))["data"]
    assert set(data) == ROLE_KEYS
    assert data["allowed_policies"] == ["a", "b"] and data["orphan"] is True and data["renewable"] is True
    assert data["allowed_entity_aliases"] is None and data["token_type"] == "default-service"
    await vault.ok("POST", "auth/token/roles/r2", json={"renewable": False})
    assert (await vault.ok("LIST", "auth/token/roles"))["data"]["keys"] == ["r1", "r2"]
    assert (await vault.ok("GET", "auth/token/roles?list=true"))["data"]["keys"] == ["r1", "r2"]
    # An update changes only what it is given.
    await vault.ok("POST", "auth/token/roles/r1", json={"path_suffix": "v1x"})
    data = (await vault.ok("GET", "auth/token/roles/r1"))["data"]
    assert data["path_suffix"] == "v1x" and data["orphan"] is True and data["allowed_policies"] == ["a", "b"]
    for _ in range(2):
        assert (await vault.call("DELETE", "auth/token/roles/r2")).status_code == 204
    await error(vault, "GET", "auth/token/roles/r2", 404)
    assert (await vault.ok("LIST", "auth/token/roles"))["data"]["keys"] == ["r1"]


async def test_deprecated_and_token_prefixed_durations(vault: InProcessVault) -> None:
    await vault.ok("POST", "auth/token/roles/old", json={"period": "1h", "explicit_max_ttl": 7200})
    data = (await vault.ok("GET", "auth/token/roles/old"))["data"]
    assert (data["period"], data["token_period"]) == (3600, 3600)
    assert (data["explicit_max_ttl"], data["token_explicit_max_ttl"]) == (7200, 7200)
    body = await vault.ok(
        "POST", "auth/token/roles/both", json={"token_explicit_max_ttl": 600, "explicit_max_ttl": 300}
    )
    assert body["warnings"] == [
        "Both 'token_explicit_max_ttl' and deprecated 'explicit_max_ttl' value supplied, ignoring the deprecated value"
    ]
    data = (await vault.ok("GET", "auth/token/roles/both"))["data"]
    assert (data["explicit_max_ttl"], data["token_explicit_max_ttl"]) == (0, 600)
    await vault.ok("POST", "auth/token/roles/uses", json={"token_num_uses": 2})
    assert (await vault.ok("GET", "auth/token/roles/uses"))["data"]["token_num_uses"] == 2


async def test_invalid_role_writes(vault: InProcessVault) -> None:
    cases = [
        (
            {"path_suffix": "v1"},
            "given role path suffix contains invalid characters; must match \\w[\\w-.]+\\w",
        ),
        ({"token_type": "foo"}, "invalid 'token_type' value \"foo\""),
        ({"token_type": "batch"}, "batch tokens are not supported by strongroom; use 'service'"),
        ({"token_bound_cidrs": ["10.0.0.0/8"]}, "bound CIDRs are not supported by strongroom token roles"),
        ({"token_num_uses": -1}, "'token_num_uses' cannot be negative"),
    ]
    for body, message in cases:
        assert message in await error(vault, "POST", "auth/token/roles/bad", 400, json=body)
    await error(vault, "GET", "auth/token/roles/bad", 404)
    await error(vault, "POST", "auth/token/roles/a%20b", 404, json={})


async def test_create_against_role_with_allowed_policies(vault: InProcessVault) -> None:
    await vault.ok("POST", "auth/token/roles/r1", json={"allowed_policies": ["a", "b"], "orphan": True,
                                                         "token_period": "1h", "path_suffix": "v1x"})  # fmt: skip
    auth = (await create(vault, path="create/r1", policies=["a"]))["auth"]
    assert auth["policies"] == ["a", "default"] and auth["orphan"] is True and auth["lease_duration"] == 3600
    data = await lookup(vault, auth["client_token"])
    assert data["role"] == "r1" and data["path"] == "auth/token/create/r1/v1x"
    assert (await create(vault, path="create/r1"))["auth"]["policies"] == ["a", "b", "default"]
    msg = await error(vault, "POST", "auth/token/create/r1", 400, json={"policies": ["c"]})
    assert msg == (
        'token policies (["c" "default"]) must be subset of the role\'s allowed policies '
        '(["a" "b" "default"]) or glob policies ([])'
    )


async def test_role_lets_a_limited_caller_create_what_the_role_allows(vault: InProcessVault) -> None:
    await policy(vault, "creator", CREATOR)
    await vault.ok("POST", "auth/token/roles/r1", json={"allowed_policies": ["other"], "orphan": True,
                                                         "token_period": "10m"})  # fmt: skip
    caller = await new_token(vault, policies=["creator"])
    auth = (await create(vault, caller, path="create/r1"))["auth"]
    # Roles may grant policies the caller lacks, orphans and periods without sudo, as in Vault.
    assert (
        auth["policies"] == ["default", "other"] and auth["orphan"] is True and auth["lease_duration"] == 600
    )


async def test_disallowed_policies_glob_and_inheritance(vault: InProcessVault) -> None:
    await vault.ok(
        "POST", "auth/token/roles/r2", json={"disallowed_policies": "x", "disallowed_policies_glob": "adm*"}
    )
    msg = await error(vault, "POST", "auth/token/create/r2", 400, json={"policies": ["x"]})
    assert msg == 'token policy "x" is disallowed by this role'
    msg = await error(vault, "POST", "auth/token/create/r2", 400, json={"policies": ["admins"]})
    assert msg == 'token policy "admins" is disallowed by this role'
    assert (await create(vault, path="create/r2", policies=["q"]))["auth"]["policies"] == ["default", "q"]
    await vault.ok("POST", "auth/token/roles/glob", json={"allowed_policies_glob": ["team-*"]})
    assert (await create(vault, path="create/glob", policies=["team-a"]))["auth"]["policies"] == [
        "default",
        "team-a",
    ]


async def test_role_limits_renewability_ttl_and_uses(vault: InProcessVault) -> None:
    await vault.ok("POST", "auth/token/roles/r", json={"renewable": False, "token_explicit_max_ttl": 600,
                                                        "token_num_uses": 2})  # fmt: skip
    body = await create(vault, path="create/r", policies=["q"], num_uses=5)
    auth = body["auth"]
    assert auth["renewable"] is False and auth["lease_duration"] == 600 and auth["num_uses"] == 2
    assert (
        body["warnings"][0]
        == 'TTL of "768h" exceeded the effective max_ttl of "10m"; TTL value is capped accordingly'
    )
    msg = await error(vault, "POST", "auth/token/renew", 400, json={"token": auth["client_token"]})
    assert msg == "lease is not renewable"


async def test_role_token_renews_with_the_role_period(vault: InProcessVault) -> None:
    await vault.ok("POST", "auth/token/roles/p", json={"token_period": "10m"})
    token = (await create(vault, path="create/p", policies=["q"]))["auth"]["client_token"]
    await vault.ok("POST", "auth/token/roles/p", json={"token_period": "20m"})
    body = await vault.ok("POST", "auth/token/renew", json={"token": token, "increment": "1h"})
    assert body["auth"]["lease_duration"] == 1200
    await vault.ok("DELETE", "auth/token/roles/p")
    msg = await error(vault, "POST", "auth/token/renew", 400, json={"token": token})
    assert msg == 'original token role "p" could not be found, not renewing'


async def test_unknown_role_and_entity_alias(vault: InProcessVault) -> None:
    assert await error(vault, "POST", "auth/token/create/zz", 400, json={}) == "unknown role zz"
    await vault.ok("POST", "auth/token/roles/e", json={"allowed_entity_aliases": ["x"]})
    assert (await vault.ok("GET", "auth/token/roles/e"))["data"]["allowed_entity_aliases"] == ["x"]
    msg = await error(vault, "POST", "auth/token/create/e", 400, json={"entity_alias": "y"})
    assert msg == "invalid 'entity_alias' value"
    msg = await error(vault, "POST", "auth/token/create/e", 400, json={"entity_alias": "X"})
    assert msg == "entity aliases are not supported: strongroom has no identity store yet"


async def test_role_names_never_reach_storage(vault: InProcessVault) -> None:
    name = "very-distinctive-role-name"
    await vault.ok("POST", f"auth/token/roles/{name}", json={})
    async with vault.node.store.transaction() as tx:
        rows = await tx.range(b"", b"\xff" * 64)
    assert not any(name.encode() in k or name.encode() in v for k, v in rows)
    assert (await vault.ok("LIST", "auth/token/roles"))["data"]["keys"] == [name]
