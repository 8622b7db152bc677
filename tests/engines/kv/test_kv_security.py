"""KV v2 ACL create-vs-update and patch, the v1 -> v2 upgrade, and that storage never shows names or values."""

from __future__ import annotations

from strongroom.engines.kv.v2.upgrade import upgrade_v1_to_v2
from tests.engines.kv.conftest import merge_patch
from tests.support.vault import InProcessVault


async def policy(kv: InProcessVault, name: str, rules: str) -> str:
    await kv.ok("PUT", f"sys/policies/acl/{name}", json={"policy": rules})
    return await kv.token([name])


async def test_data_acl_create_versus_update(kv: InProcessVault) -> None:
    creator = await policy(kv, "c", 'path "kv2/data/*" { capabilities = ["create"] }')
    updater = await policy(kv, "u", 'path "kv2/data/*" { capabilities = ["update"] }')
    body = {"data": {"v": 1}}
    assert (await kv.call("POST", "kv2/data/s", updater, json=body)).status_code == 403
    assert (await kv.call("POST", "kv2/data/s", creator, json=body)).status_code == 200
    assert (await kv.call("POST", "kv2/data/s", creator, json=body)).status_code == 403
    assert (await kv.call("POST", "kv2/data/s", updater, json=body)).status_code == 200
    # Neither may read, and neither may patch: PATCH needs the "patch" capability.
    assert (await kv.call("GET", "kv2/data/s", creator)).status_code == 403
    assert (await merge_patch(kv, "kv2/data/s", {"data": {"v": 2}}, updater)).status_code == 403
    patcher = await policy(kv, "p", 'path "kv2/data/*" { capabilities = ["patch"] }')
    assert (await merge_patch(kv, "kv2/data/s", {"data": {"v": 2}}, patcher)).status_code == 200


async def test_metadata_acl_create_versus_update(kv: InProcessVault) -> None:
    creator = await policy(kv, "mc", 'path "kv2/metadata/*" { capabilities = ["create"] }')
    body = {"max_versions": 2}
    assert (await kv.call("POST", "kv2/metadata/s", creator, json=body)).status_code == 204
    assert (await kv.call("POST", "kv2/metadata/s", creator, json=body)).status_code == 403
    # A data write creates the metadata too, so metadata on an existing secret is an update.
    await kv.ok("POST", "kv2/data/t", json={"data": {"v": 1}})
    assert (await kv.call("POST", "kv2/metadata/t", creator, json=body)).status_code == 403


async def test_list_needs_list_capability_on_metadata(kv: InProcessVault) -> None:
    reader = await policy(kv, "r", 'path "kv2/data/*" { capabilities = ["read", "list"] }')
    await kv.ok("POST", "kv2/data/s", json={"data": {"v": 1}})
    assert (await kv.call("LIST", "kv2/metadata/", reader)).status_code == 403
    lister = await policy(kv, "l", 'path "kv2/metadata/*" { capabilities = ["list"] }')
    assert (await kv.ok("LIST", "kv2/metadata/", lister))["data"]["keys"] == ["s"]


async def raw_dump(kv: InProcessVault) -> list[tuple[bytes, bytes]]:
    async with kv.node.store.transaction() as tx:
        return await tx.range(b"", b"\xff")


async def test_no_name_or_value_in_storage(kv: InProcessVault) -> None:
    names = ["topsecretdir", "passwordentry", "v1secretname", "metadatakey", "customvalue"]
    values = ["hunter2-correct-horse", "v1-value-battery-staple", "patched-value-zebra"]
    await kv.ok("POST", "kv2/data/topsecretdir/passwordentry", json={"data": {"pw": values[0]}})
    await merge_patch(kv, "kv2/data/topsecretdir/passwordentry", {"data": {"extra": values[2]}})
    await kv.ok("POST", "kv2/metadata/topsecretdir/passwordentry",
                json={"custom_metadata": {"metadatakey": "customvalue"}})
    await kv.ok("PUT", "kv1/topsecretdir/v1secretname", json={"k": values[1]})
    dump = await raw_dump(kv)
    assert dump, "the store should not be empty"
    blob = b"\n".join(k + b"\x00" + v for k, v in dump)
    for text in names + values:
        assert text.encode() not in blob, text
    # The same secrets read back fine, so the check above is not vacuous.
    assert (await kv.ok("GET", "kv2/data/topsecretdir/passwordentry"))["data"]["data"]["pw"] == values[0]


async def test_version_data_is_gone_after_destroy_and_pruning(kv: InProcessVault) -> None:
    await kv.ok("POST", "kv2/metadata/pr", json={"max_versions": 1})
    await kv.ok("POST", "kv2/data/pr", json={"data": {"v": 1}})
    before = len(await raw_dump(kv))
    await kv.ok("POST", "kv2/data/pr", json={"data": {"v": 2}})
    # The pruned version's record was removed in the same write: same number of records.
    assert len(await raw_dump(kv)) == before
    await kv.ok("PUT", "kv2/destroy/pr", json={"versions": [2]})
    assert len(await raw_dump(kv)) == before - 1
    await kv.ok("DELETE", "kv2/metadata/pr")
    after = len(await raw_dump(kv))
    # Metadata and the directory marker are gone as well.
    assert after == before - 3


async def test_upgrade_v1_mount_to_v2(kv: InProcessVault) -> None:
    await kv.ok("PUT", "kv1/a", json={"v": "a"})
    await kv.ok("PUT", "kv1/dir/b", json={"v": "b"})
    mounts = (await kv.ok("GET", "sys/mounts"))["data"]
    uuid = mounts["kv1/"]["uuid"]
    vault = kv.node.vault("")
    assert vault.keys is not None
    async with kv.node.store.transaction() as tx:
        records = vault.keys.records(tx, "m", uuid)
        assert await upgrade_v1_to_v2(records, kv.clock.now()) == 2
        assert await upgrade_v1_to_v2(records, kv.clock.now()) == 0
    await kv.ok("POST", "sys/mounts/kv1/tune", json={"options": {"version": "2"}})
    mount = (await kv.ok("GET", "sys/mounts"))["data"]["kv1/"]
    assert (mount.get("options") or {}).get("version") == "2"
    body = await kv.ok("GET", "kv1/data/dir/b")
    assert body["data"]["data"] == {"v": "b"}
    assert body["data"]["metadata"]["version"] == 1
    meta = (await kv.ok("GET", "kv1/metadata/a"))["data"]
    assert (meta["current_version"], meta["oldest_version"]) == (1, 1)
    assert (await kv.ok("LIST", "kv1/metadata/"))["data"]["keys"] == ["a", "dir/"]
