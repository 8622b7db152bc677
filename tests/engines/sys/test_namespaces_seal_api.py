"""Tenant seals in process: sys/init|unseal|seal|seal-status inside a tenant, the parent's
sys/namespaces/NAME/{seal,unseal,seal-status,delete-sealed}, rotation, and bad input (each a clear 4xx
with nothing changed). Rekey and generate-root: test_namespaces_rekey_api.py."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from strongroom.core.namespace_purge import pending_purges
from strongroom.core.tenant_seal import DUPLICATE_SHARE, UNSEAL_FAILED
from strongroom.storage.base import Transaction, transactional
from strongroom.storage.subspace import ROOT, ROOT_NAMESPACE_ID
from strongroom.storage.tuple import unpack
from tests.support.gpg import gpg_home
from tests.support.namespaces import Namespaces
from tests.support.vault import InProcessVault

SEAL_STATUS_DATA = {"type", "initialized", "sealed", "t", "n", "progress", "nonce"}


@pytest.fixture
def ns(vault: InProcessVault) -> Namespaces:
    return Namespaces(vault)


async def _status(ns: Namespaces, name: str, parent: str = "") -> dict[str, Any]:
    data: dict[str, Any] = (await ns.ok("GET", f"sys/namespaces/{name}/seal-status", ns=parent))["data"]
    return data


async def test_create_returns_shares_and_the_tenant_stays_sealed(ns: Namespaces) -> None:
    body = await ns.ok("POST", "sys/namespaces/acme", json={"seal": 'seal "shamir" { shares = 3 threshold = 2 }'})
    data = body["data"]
    assert data["key_threshold"] == 2 and len(data["key_shares"]) == 3
    assert all(len(bytes.fromhex(k)) == 33 for k in data["key_shares"])
    assert "root_token" not in data  # as OpenBao: the shareholders make one with generate-root
    status = await _status(ns, "acme")
    assert set(status) == SEAL_STATUS_DATA
    assert status == {"type": "shamir", "initialized": True, "sealed": True, "t": 2, "n": 3, "progress": 0, "nonce": ""}
    inside = await ns.ok("GET", "sys/seal-status", ns="acme", token=await ns.admin("acme"))
    assert {k: inside[k] for k in SEAL_STATUS_DATA} == status
    assert await ns.fails(503, "GET", "sys/mounts", ns="acme", token="hvs.anything") == ["Vault is sealed"]


async def test_json_seal_config_and_a_single_share(ns: Namespaces) -> None:
    seal = '{"seal": {"shamir": {"shares": 1, "threshold": 1}}}'
    data = (await ns.ok("POST", "sys/namespaces/solo", json={"seal": seal}))["data"]
    assert len(bytes.fromhex(data["key_shares"][0])) == 32
    body = await ns.ok("PUT", "sys/namespaces/solo/unseal", json={"key": base64.b64encode(bytes.fromhex(data["key_shares"][0])).decode()})
    assert body["data"]["sealed"] is False


async def test_unseal_through_the_parent_and_seal_through_it(ns: Namespaces) -> None:
    t = await ns.tenant("acme", unseal=False)
    first = (await ns.ok("PUT", "sys/namespaces/acme/unseal", json={"key": t.keys[0]}))["data"]
    assert set(first) == SEAL_STATUS_DATA and first["progress"] == 1 and first["nonce"]
    reset = (await ns.ok("PUT", "sys/namespaces/acme/unseal", json={"reset": True}))["data"]
    assert (reset["progress"], reset["nonce"]) == (0, "")
    await ns.ok("PUT", "sys/namespaces/acme/unseal", json={"key": t.keys[1]})
    done = (await ns.ok("PUT", "sys/namespaces/acme/unseal", json={"key": t.keys[2]}))["data"]
    assert done["sealed"] is False
    again = (await ns.ok("PUT", "sys/namespaces/acme/unseal", json={"key": t.keys[0]}))["data"]
    assert again["sealed"] is False  # already unsealed: the key is ignored
    t.root_token = await ns.generate_root(t)
    await ns.ok("GET", "sys/mounts", ns="acme", token=t.root_token)
    assert await ns.call("PUT", "sys/namespaces/acme/seal") is not None
    assert (await _status(ns, "acme"))["sealed"] is True
    assert (await ns.call("PUT", "sys/namespaces/acme/seal")).status_code == 204  # idempotent
    await ns.fails(503, "GET", "sys/mounts", ns="acme", token=t.root_token)


async def test_init_inside_an_uninitialised_tenant_with_pgp_keys(ns: Namespaces) -> None:
    created = await ns.ok("POST", "sys/namespaces/fresh", json={"seal": 'seal "shamir" {}', "initialize": False})
    assert "key_shares" not in created["data"]
    admin = await ns.admin("fresh")  # the tenant's Administrator biscuit: what init and unseal need inside
    assert (await ns.ok("GET", "sys/init", ns="fresh", token=admin))["initialized"] is False
    with gpg_home() as gpg:
        custodians = [gpg.generate(f"c{i}@tenant.test") for i in range(2)]
        holder = gpg.generate("admin@tenant.test")
        init = await ns.ok(
            "PUT", "sys/init", ns="fresh", token=admin,
            json={"secret_shares": 2, "secret_threshold": 2, "pgp_keys": [k.vault_entry for k in custodians],
                  "root_token_pgp_key": holder.vault_entry},
        )  # fmt: skip
        shares = [gpg.decrypt(base64.b64decode(m)).decode() for m in init["keys_base64"]]
        token = gpg.decrypt(base64.b64decode(init["root_token"])).decode()
    assert (await ns.ok("GET", "sys/init", ns="fresh", token=admin))["initialized"] is True
    await ns.fails(400, "PUT", "sys/init", ns="fresh", token=admin, json={"secret_shares": 1, "secret_threshold": 1})
    await ns.fails(403, "PUT", "sys/unseal", ns="fresh", token="", json={"key": shares[0]})
    for share in shares:
        body = await ns.ok("PUT", "sys/unseal", ns="fresh", token=admin, json={"key": share})
    assert body["sealed"] is False
    assert "sys/" in (await ns.ok("GET", "sys/mounts", ns="fresh", token=token))["data"]
    await ns.fails(403, "GET", "sys/mounts", ns="fresh")  # the platform root token has no say


async def test_seal_of_a_tenant_seals_its_descendant_tenants(ns: Namespaces) -> None:
    outer = await ns.tenant("outer")
    inner = await ns.tenant("inner", ns="outer", token=outer.root_token)
    assert inner.path == "outer/inner/"
    await ns.ok("GET", "sys/mounts", ns="outer/inner", token=inner.root_token)
    await ns.ok("PUT", "sys/seal", ns="outer", token=outer.root_token)
    await ns.unseal(outer)
    # The inner tenant stayed sealed: its key copy went with the outer seal.
    await ns.fails(503, "GET", "sys/mounts", ns="outer/inner", token=inner.root_token)
    await ns.unseal(inner)
    await ns.ok("GET", "sys/mounts", ns="outer/inner", token=inner.root_token)


async def test_rotate_and_key_status_in_a_tenant_and_refusals_in_plain_namespaces(ns: Namespaces) -> None:
    t = await ns.tenant("acme")
    before = (await ns.ok("GET", "sys/key-status", ns="acme", token=t.root_token))["data"]["term"]
    await ns.ok("POST", "sys/mounts/kv", ns="acme", token=t.root_token, json={"type": "kv"})
    await ns.ok("PUT", "kv/x", ns="acme", token=t.root_token, json={"v": "old"})
    await ns.ok("PUT", "sys/rotate", ns="acme", token=t.root_token)
    after = (await ns.ok("GET", "sys/key-status", ns="acme", token=t.root_token))["data"]["term"]
    assert after == before + 1
    assert (await ns.ok("GET", "kv/x", ns="acme", token=t.root_token))["data"] == {"v": "old"}
    platform_term = (await ns.ok("GET", "sys/key-status"))["data"]["term"]
    assert platform_term == 1  # the platform keyring is untouched
    # A seal and unseal keep the rotated keyring.
    await ns.ok("PUT", "sys/seal", ns="acme", token=t.root_token)
    await ns.unseal(t)
    assert (await ns.ok("GET", "sys/key-status", ns="acme", token=t.root_token))["data"]["term"] == after
    await ns.plain("team")
    assert await ns.fails(400, "PUT", "sys/rotate", ns="team") == ["namespace is not sealable"]
    assert await ns.fails(400, "GET", "sys/key-status", ns="team") == ["namespace is not sealable"]


async def test_delete_rules_for_tenants(ns: Namespaces, vault: InProcessVault) -> None:
    t = await ns.tenant("acme")
    errors = await ns.fails(400, "DELETE", "sys/namespaces/acme")
    assert errors == ["cannot delete an unsealed namespace: seal it, then use delete-sealed"]
    assert (await _status(ns, "acme"))["sealed"] is False  # nothing changed
    assert await ns.fails(400, "DELETE", "sys/namespaces/acme/delete-sealed") == ["namespace is not sealed"]
    await ns.ok("PUT", "sys/seal", ns="acme", token=t.root_token)
    assert await ns.fails(503, "DELETE", "sys/namespaces/acme") == ["namespace is sealed"]
    body = await ns.ok("DELETE", "sys/namespaces/acme/delete-sealed")
    assert body["data"] == {"status": "in-progress"}
    await pending_purges()
    await ns.fails(404, "GET", "sys/namespaces/acme")
    # An uninitialised tenant holds nothing: the plain delete takes it.
    await ns.ok("POST", "sys/namespaces/fresh", json={"seal": 'seal "shamir" {}', "initialize": False})
    await ns.ok("DELETE", "sys/namespaces/fresh")
    await ns.plain("team")
    assert await ns.fails(400, "DELETE", "sys/namespaces/team/delete-sealed") == ["namespace is not sealed"]
    missing = await ns.ok("DELETE", "sys/namespaces/nope/delete-sealed")
    assert missing["warnings"] == ["requested namespace does not exist"]


async def test_delete_sealed_with_descendants_needs_force(ns: Namespaces, vault: InProcessVault) -> None:
    outer = await ns.tenant("outer")
    await ns.plain("mid", ns="outer", token=outer.root_token)
    deep = await ns.tenant("deep", ns="outer/mid", token=outer.root_token)
    assert deep.path == "outer/mid/deep/"
    await ns.ok("PUT", "sys/seal", ns="outer", token=outer.root_token)
    errors = await ns.fails(400, "DELETE", "sys/namespaces/outer/delete-sealed")
    assert errors[0].startswith("sealed namespace has leftover child namespaces")
    await ns.ok("DELETE", "sys/namespaces/outer/delete-sealed", params={"force": "true"})
    await pending_purges()

    async def count(tx: Transaction) -> tuple[int, int, int]:
        keys = await vault.node.root.current_keys(tx)
        return (
            len(await keys.records(tx, "sys", "ns-registry").range()),
            len(await keys.records(tx, "sys", "ns-deleted").range()),
            len(await keys.records(tx, "sys", "tenant-keys").range()),
        )

    assert await transactional(vault.node.store, count) == (0, 0, 0)

    async def namespaces_left(tx: Transaction) -> set[bytes]:
        begin, end = ROOT.sub("ns").range()
        return {unpack(k)[1] for k, _ in await tx.range(begin, end)} - {ROOT_NAMESPACE_ID}

    assert await transactional(vault.node.store, namespaces_left) == set()


async def test_bad_unseal_input_changes_nothing(ns: Namespaces) -> None:
    t = await ns.tenant("acme", unseal=False)
    other = await ns.tenant("other", unseal=False)
    first = (await ns.ok("PUT", "sys/namespaces/acme/unseal", json={"key": t.keys[0]}))["data"]
    cases: list[tuple[dict[str, Any], str]] = [
        ({"key": t.keys[0]}, DUPLICATE_SHARE),
        ({"key": "zz-not-a-key"}, "'key' must be a valid hex or base64 string"),
        ({"key": "ab" * 17}, "invalid key: expected 33 bytes, got 17"),
        ({"key": "ab" * 40}, "invalid key: key is longer than maximum 33 bytes"),
        ({}, "provided key is empty"),
    ]
    for body, message in cases:
        assert await ns.fails(400, "PUT", "sys/namespaces/acme/unseal", json=body) == [message]
        status = await _status(ns, "acme")
        assert (status["progress"], status["nonce"]) == (1, first["nonce"]), body
    # A share of another tenant completes the threshold with a wrong key: error, and progress reset.
    r = await ns.call("PUT", "sys/namespaces/acme/unseal", json={"key": other.keys[0]})
    assert r.status_code == 400 and r.json() == {"errors": [UNSEAL_FAILED]}
    status = await _status(ns, "acme")
    assert (status["sealed"], status["progress"], status["nonce"]) == (True, 0, "")
    for path in ("nope", "nope/unseal"):
        name = path.split("/")[0]
        assert await ns.fails(400, "PUT", f"sys/namespaces/{name}/unseal", json={"key": t.keys[0]}) == [
            'namespace "nope/" doesn\'t exist'
        ]
    await ns.plain("team")
    assert await ns.fails(400, "PUT", "sys/namespaces/team/unseal", json={"key": t.keys[0]}) == ["namespace is not sealable"]
    assert await ns.fails(400, "GET", "sys/namespaces/team/seal-status") == ["namespace is not sealable"]
    assert await ns.fails(400, "PUT", "sys/namespaces/team/seal") == ["namespace is not sealable"]
    assert await ns.fails(400, "PUT", "sys/namespaces/nope/seal") == ["namespace doesn't exist"]
    assert await ns.fails(400, "GET", "sys/namespaces/nope/seal-status") == ['namespace "nope/" doesn\'t exist']


@pytest.mark.parametrize(
    ("seal", "message"),
    [
        ('seal "shamir" { shares = 0 threshold = 0 }', "invalid seal config: shares must be at least one"),
        ('seal "shamir" { }', "invalid seal config: shares must be at least one"),
        ('seal "shamir" { shares = 2 threshold = 3 }', "invalid seal config: threshold cannot be larger than shares"),
        ('seal "shamir" { shares = 3 threshold = 1 }', "invalid seal config: threshold must be greater than one for multiple shares"),
        ('seal "shamir" { shares = 300 threshold = 2 }', "invalid seal config: shares must be less than 256"),
        ('seal "pkcs11" { shares = 3 threshold = 2 }', "namespaces currently only support shamir seals"),
        ('seal "shamir" { shares = 3 threshold = 2 }\nseal "shamir" { shares = 3 threshold = 2 }',
         "seal config must contain exactly one seal stanza"),
        ("", "seal config must contain exactly one seal stanza"),
        ('seal "shamir" { shares = "x" threshold = 1 }', "value of shares parameter must be integer"),
        ("garbage {", "unable to parse seal config"),
    ],
)  # fmt: skip
async def test_bad_seal_configs_are_400_and_create_nothing(ns: Namespaces, seal: str, message: str) -> None:
    errors = await ns.fails(400, "POST", "sys/namespaces/s1", json={"seal": seal})
    assert errors[0].startswith(message), errors
    await ns.fails(404, "GET", "sys/namespaces/s1")


async def test_pgp_key_count_mismatch(ns: Namespaces) -> None:
    errors = await ns.fails(
        400, "POST", "sys/namespaces/s1",
        json={"seal": 'seal "shamir" { shares = 2 threshold = 2 }', "pgp_keys": ["abc"]},
    )  # fmt: skip
    assert errors == ["invalid seal config: count mismatch between number of provided PGP keys and number of shares"]
