"""Tuning a KV v1 mount to version 2 migrates its data in the same transaction."""

from __future__ import annotations

from tests.support.vault import InProcessVault


async def test_tune_v1_to_v2_keeps_every_secret(vault: InProcessVault) -> None:
    await vault.ok("POST", "sys/mounts/legacy", json={"type": "kv", "options": {"version": "1"}})
    await vault.ok("POST", "legacy/app/db", json={"user": "u", "password": "p"})
    await vault.ok("POST", "legacy/top", json={"k": "v"})
    body = await vault.ok("POST", "sys/mounts/legacy/tune", json={"options": {"version": "2"}})
    assert body is not None and "Upgrading mount from version 1 to version 2" in body["warnings"][0]
    read = await vault.ok("GET", "legacy/data/app/db")
    assert read["data"]["data"] == {"user": "u", "password": "p"}
    assert read["data"]["metadata"]["version"] == 1
    listing = await vault.ok("LIST", "legacy/metadata/")
    assert listing["data"]["keys"] == ["app/", "top"]
    meta = await vault.ok("GET", "legacy/metadata/top")
    assert meta["data"]["current_version"] == 1
    # The old v1 paths are gone: v2 answers only its own API.
    r = await vault.call("GET", "legacy/top")
    assert r.status_code == 404


async def test_nested_mounts_use_vaults_wording(vault: InProcessVault) -> None:
    await vault.ok("POST", "sys/mounts/outer", json={"type": "kv"})
    r = await vault.call("POST", "sys/mounts/outer/inner", json={"type": "kv"})
    assert r.status_code == 400
    assert r.json()["errors"] == ["path is already in use at outer/"]
