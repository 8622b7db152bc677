"""``sys/storage/raft/snapshot`` and ``snapshot-force`` in process: sudo, round trips, refusals that write
nothing, sealing after a restore, and restores across clusters."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from strongroom.storage.memory import MemoryStore
from tests.storage.support_migrate import dump
from tests.support.namespaces import Namespaces, Tenant
from tests.support.vault import InProcessVault, start_vault

SNAP = "sys/storage/raft/snapshot"
FORCE = "sys/storage/raft/snapshot-force"


@pytest.fixture
async def kv_vault(vault: InProcessVault) -> InProcessVault:
    """The shared vault fixture with KV v2 at ``secret/`` and two secrets."""
    await vault.ok("POST", "sys/mounts/secret", json={"type": "kv", "options": {"version": "2"}})
    await vault.ok("POST", "secret/data/a", json={"data": {"v": "1"}})
    await vault.ok("POST", "secret/data/b", json={"data": {"v": "2"}})
    return vault


async def unseal(vault: InProcessVault, keys: list[str] | None = None) -> None:
    for key in (keys or vault.keys)[:2]:
        body = await vault.ok("PUT", "sys/unseal", json={"key": key})
    assert body["sealed"] is False


async def take(vault: InProcessVault, token: str | None = None) -> bytes:
    r = await vault.call("GET", SNAP, token)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/octet-stream"
    assert r.headers["cache-control"] == "no-store"
    return r.content


async def test_round_trip_restores_the_data_and_seals(kv_vault: InProcessVault) -> None:
    v = kv_vault
    data = await take(v)
    assert data.startswith(b"\x93SRSNP\r\n")
    assert b"secret/data" not in data and b'"v"' not in data  # nothing in clear
    await v.ok("POST", "secret/data/a", json={"data": {"v": "changed"}})
    await v.ok("POST", "secret/data/c", json={"data": {"v": "new"}})
    before = await dump(v.node.store)
    r = await v.call("POST", SNAP, content=data)
    assert r.status_code == 204, r.text
    assert v.node.root.sealed
    assert (await v.call("GET", "secret/data/a")).status_code == 503
    assert await dump(v.node.store) != before
    await unseal(v)
    assert (await v.ok("GET", "secret/data/a"))["data"]["data"] == {"v": "1"}
    assert (await v.ok("GET", "secret/data/b"))["data"]["data"] == {"v": "2"}
    assert (await v.call("GET", "secret/data/c")).status_code == 404
    # and a snapshot of the restored store is the same contents (same records, same digest)
    again = await take(v)
    assert again[-72:-32] == data[-72:-32]  # count and pair digest in the trailer


async def test_put_also_restores(kv_vault: InProcessVault) -> None:
    data = await take(kv_vault)
    assert (await kv_vault.call("PUT", SNAP, content=data)).status_code == 204


async def test_refusals_write_nothing_and_keep_serving(kv_vault: InProcessVault) -> None:
    v = kv_vault
    data = await take(v)
    before = await dump(v.node.store)
    bad = bytearray(data)
    bad[len(bad) // 2] ^= 0x10
    cases = {
        "tampered": bytes(bad),
        "truncated": data[:-1],
        "truncated-half": data[: len(data) // 2],
        "trailing": data + b"x",
        "empty": b"",
        "json": b'{"snapshot": "x"}',
    }
    for name, body in cases.items():
        r = await v.call("POST", SNAP, content=body)
        assert r.status_code == 400, (name, r.text)
        assert r.json()["errors"], name
        r = await v.call("POST", FORCE, content=body)
        assert r.status_code == 400, (name, r.text)
    assert await dump(v.node.store) == before
    assert not v.node.root.sealed
    assert (await v.ok("GET", "secret/data/a"))["data"]["data"] == {"v": "1"}


async def test_sudo_is_required(kv_vault: InProcessVault) -> None:
    v = kv_vault
    plain = f'path "{SNAP}" {{ capabilities = ["read", "update"] }}\npath "{FORCE}" {{ capabilities = ["update"] }}'
    sudo = plain.replace('"update"]', '"update", "sudo"]')
    await v.ok("PUT", "sys/policies/acl/plain", json={"policy": plain})
    await v.ok("PUT", "sys/policies/acl/sudo", json={"policy": sudo})
    plain_token = await v.token(["plain"])
    sudo_token = await v.token(["sudo"])
    assert (await v.call("GET", SNAP, plain_token)).status_code == 403
    assert (await v.call("GET", SNAP, "")).status_code == 403
    data = await take(v, sudo_token)
    assert (await v.call("POST", SNAP, plain_token, content=data)).status_code == 403
    assert (await v.call("POST", FORCE, plain_token, content=data)).status_code == 403
    assert not v.node.root.sealed
    assert (await v.call("GET", FORCE)).status_code == 405
    assert (await v.call("POST", SNAP, sudo_token, content=data)).status_code == 204


async def test_other_cluster_needs_force(kv_vault: InProcessVault) -> None:
    v = kv_vault
    other = await start_vault(MemoryStore())
    try:
        await other.ok("POST", "sys/mounts/kv", json={"type": "kv", "options": {"version": "2"}})
        await other.ok("POST", "kv/data/theirs", json={"data": {"from": "other"}})
        theirs = await take(other)
        r = await v.call("POST", SNAP, content=theirs)
        assert r.status_code == 400
        assert "snapshot-force" in r.json()["errors"][0]
        assert not v.node.root.sealed
        r = await v.call("POST", FORCE, content=theirs)
        assert r.status_code == 204, r.text
        assert v.node.root.sealed
        # our keys no longer open anything; the other cluster's keys do, and its data is there
        r = await v.call("PUT", "sys/unseal", json={"key": v.keys[0]}, token="")
        r = await v.call("PUT", "sys/unseal", json={"key": v.keys[1]}, token="")
        assert r.status_code == 400
        await unseal(v, other.keys)
        assert (await v.ok("GET", "kv/data/theirs", token=other.root_token))["data"]["data"] == {
            "from": "other"
        }
        assert (await v.call("GET", "secret/data/a", token=other.root_token)).status_code in (403, 404)
    finally:
        await other.client.aclose()
        await other.node.close()


async def test_forcing_never_waives_authentication_of_this_clusters_snapshot(
    kv_vault: InProcessVault,
) -> None:
    v = kv_vault
    data = bytearray(await take(v))
    data[-1] ^= 1  # only the HMAC changes: structure, count and digest are intact
    r = await v.call("POST", FORCE, content=bytes(data))
    assert r.status_code == 400
    assert "authentication" in r.json()["errors"][0]
    assert not v.node.root.sealed


async def test_restore_body_is_streamed_in_chunks(kv_vault: InProcessVault) -> None:
    v = kv_vault
    data = await take(v)

    async def chunks() -> AsyncIterator[bytes]:
        for i in range(0, len(data), 7):
            yield data[i : i + 7]

    r = await v.client.post("/v1/" + SNAP, content=chunks(), headers=v.headers())
    assert r.status_code == 204, r.text


async def test_large_store_streams_in_many_chunks(kv_vault: InProcessVault) -> None:
    v = kv_vault
    for i in range(40):
        await v.ok("POST", f"secret/data/big{i}", json={"data": {"blob": "z" * 8000}})
    async with v.client.stream("GET", "/v1/" + SNAP, headers=v.headers()) as r:
        assert r.status_code == 200
        parts = [part async for part in r.aiter_raw()]
    data = b"".join(parts)
    assert len(data) > 300_000
    r = await v.call("POST", SNAP, content=data)
    assert r.status_code == 204
    await unseal(v)
    assert len((await v.ok("GET", "secret/data/big39"))["data"]["data"]["blob"]) == 8000


async def test_snapshot_of_a_sealed_node_is_refused(kv_vault: InProcessVault) -> None:
    await kv_vault.ok("PUT", "sys/seal")
    assert (await kv_vault.call("GET", SNAP)).status_code == 503
    assert (await kv_vault.call("POST", SNAP, content=b"x")).status_code == 503


async def test_request_size_limit_does_not_apply_to_restore_bodies() -> None:
    from strongroom.core.node import NodeSettings

    v = await start_vault(settings=NodeSettings(max_request_bytes=2048))
    try:
        await v.ok("POST", "sys/policies/acl/p", json={"policy": 'path "x" { capabilities = ["read"] }'})
        data = await take(v)
        assert len(data) > 2048
        r = await v.call("POST", SNAP, content=data)
        assert r.status_code == 204, r.text
        r = await v.call("POST", "sys/policies/acl/q", content=b"{" + b" " * 4096 + b"}")
        assert r.status_code == 413  # every other path keeps the limit
    finally:
        await v.client.aclose()
        await v.node.close()


def test_routes_are_declared_root_protected() -> None:
    from strongroom.engines.sys.snapshot import ROUTES

    assert {r.pattern: r.sudo for r in ROUTES} == {
        "storage/raft/snapshot": True,
        "storage/raft/snapshot-force": True,
    }


async def test_namespaces_and_tenants_are_restored(vault: InProcessVault) -> None:
    v = vault
    assert (await v.call("POST", "sys/namespaces/team", json={})).status_code == 200
    made = await v.ok(
        "POST", "sys/namespaces/acme", json={"seal": 'seal "shamir" {\n shares = 1\n threshold = 1\n}'}
    )
    acme_key = made["data"]["key_shares"][0]
    tenant = Namespaces(v)
    admin = await tenant.admin("acme")  # the tenant's Administrator biscuit: what its ceremonies need inside
    r = await v.client.put("/v1/sys/unseal", json={"key": acme_key}, headers={"X-Vault-Namespace": "acme", "X-Vault-Token": admin})
    assert r.json()["sealed"] is False
    # A tenant's first root token comes from generate-root inside it (creation makes none, as OpenBao).
    acme_token = await tenant.generate_root(Tenant("acme/", [acme_key], "", 1, admin))
    team = {"X-Vault-Namespace": "team", "X-Vault-Token": v.root_token}
    acme = {"X-Vault-Namespace": "acme", "X-Vault-Token": acme_token}
    kv2 = {"type": "kv", "options": {"version": "2"}}
    for headers, value in ((team, "team-1"), (acme, "acme-1")):
        assert (await v.client.post("/v1/sys/mounts/secret", json=kv2, headers=headers)).status_code == 204
        r = await v.client.post("/v1/secret/data/x", json={"data": {"v": value}}, headers=headers)
        assert r.status_code == 200, r.text
    # only the platform may take or restore a snapshot, even with the root token
    assert (await v.client.get("/v1/" + SNAP, headers=team)).status_code == 404
    assert (await v.client.get("/v1/" + SNAP, headers=acme)).status_code in (403, 404)
    data = await take(v)
    for headers, value in ((team, "team-2"), (acme, "acme-2")):
        await v.client.post("/v1/secret/data/x", json={"data": {"v": value}}, headers=headers)
    r = await v.client.put("/v1/sys/seal", headers=acme)  # sealed after the snapshot was taken
    assert r.status_code == 204, r.text
    assert (await v.client.get("/v1/secret/data/x", headers=acme)).status_code == 503
    assert (await v.call("POST", SNAP, content=data)).status_code == 204
    await unseal(v)
    for headers, value in ((team, "team-1"), (acme, "acme-1")):
        r = await v.client.get("/v1/secret/data/x", headers=headers)
        assert r.status_code == 200, r.text
        assert r.json()["data"]["data"] == {"v": value}
