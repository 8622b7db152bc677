"""KV v1 through the real ASGI app: read/write/delete/list, lease durations, errors, ACL create vs update."""

from __future__ import annotations

from tests.engines.kv.conftest import merge_patch
from tests.support.vault import InProcessVault

THIRTY_TWO_DAYS = 32 * 24 * 3600


async def test_write_read_replace_delete(kv: InProcessVault) -> None:
    assert await kv.ok("PUT", "kv1/app/db", json={"user": "u", "n": 1}) is None
    body = await kv.ok("GET", "kv1/app/db")
    assert body["data"] == {"user": "u", "n": 1}
    assert body["lease_duration"] == THIRTY_TWO_DAYS
    assert body["renewable"] is False
    # A write replaces the whole object, it does not merge.
    await kv.ok("POST", "kv1/app/db", json={"other": True})
    assert (await kv.ok("GET", "kv1/app/db"))["data"] == {"other": True}
    r = await kv.call("DELETE", "kv1/app/db")
    assert r.status_code == 204
    r = await kv.call("GET", "kv1/app/db")
    assert r.status_code == 404
    assert r.json() == {"errors": []}
    # Deleting again is still a 204.
    assert (await kv.call("DELETE", "kv1/app/db")).status_code == 204


async def test_lease_duration_from_ttl_or_lease(kv: InProcessVault) -> None:
    await kv.ok("PUT", "kv1/a", json={"v": 1, "ttl": "1h"})
    assert (await kv.ok("GET", "kv1/a"))["lease_duration"] == 3600
    await kv.ok("PUT", "kv1/b", json={"v": 1, "lease": 30})
    assert (await kv.ok("GET", "kv1/b"))["lease_duration"] == 30
    await kv.ok("PUT", "kv1/c", json={"v": 1, "ttl": "bogus"})
    assert (await kv.ok("GET", "kv1/c"))["lease_duration"] == THIRTY_TWO_DAYS
    # Longer than any Go duration: ignored like an unparsable one, never a 500.
    await kv.ok("PUT", "kv1/d", json={"v": 1, "ttl": "9" * 40})
    assert (await kv.ok("GET", "kv1/d"))["lease_duration"] == THIRTY_TWO_DAYS


async def test_lease_duration_follows_mount_default(kv: InProcessVault) -> None:
    await kv.ok("POST", "sys/mounts/kvt", json={"type": "kv", "options": {"version": "1"},
                                               "config": {"default_lease_ttl": "10m"}})
    await kv.ok("PUT", "kvt/x", json={"v": 1})
    assert (await kv.ok("GET", "kvt/x"))["lease_duration"] == 600


async def test_missing_data_and_bad_paths(kv: InProcessVault) -> None:
    r = await kv.call("PUT", "kv1/x", json={})
    assert r.status_code == 400
    assert r.json() == {"errors": ["missing data fields"]}
    r = await kv.call("PUT", "kv1/x/", json={"a": 1})
    assert r.status_code == 400
    assert r.json() == {"errors": ["cannot write to a path ending in '/'"]}
    for path in ("kv1/", "kv1/nothing", "kv1/dir/"):
        assert (await kv.call("GET", path)).status_code == 404, path
    r = await kv.call("PUT", "kv1/a//b", json={"a": 1})
    assert r.status_code == 400
    r = await merge_patch(kv, "kv1/x", {"a": 1})
    assert r.status_code == 405


async def test_list_sorted_with_folders_and_cleanup(kv: InProcessVault) -> None:
    for path in ("zeta", "alpha", "dir/one", "dir/sub/two", "alpha/inner"):
        await kv.ok("PUT", f"kv1/{path}", json={"v": path})
    assert (await kv.ok("LIST", "kv1/"))["data"]["keys"] == ["alpha", "alpha/", "dir/", "zeta"]
    assert (await kv.ok("LIST", "kv1"))["data"]["keys"] == ["alpha", "alpha/", "dir/", "zeta"]
    assert (await kv.ok("GET", "kv1/dir?list=true"))["data"]["keys"] == ["one", "sub/"]
    assert (await kv.ok("LIST", "kv1/dir/sub/"))["data"]["keys"] == ["two"]
    # Removing the only entry of nested directories removes the directory markers too.
    await kv.ok("DELETE", "kv1/dir/sub/two")
    assert (await kv.call("LIST", "kv1/dir/sub")).status_code == 404
    assert (await kv.ok("LIST", "kv1/dir"))["data"]["keys"] == ["one"]
    await kv.ok("DELETE", "kv1/dir/one")
    assert (await kv.ok("LIST", "kv1/"))["data"]["keys"] == ["alpha", "alpha/", "zeta"]
    await kv.ok("DELETE", "kv1/alpha/inner")
    assert (await kv.ok("LIST", "kv1/"))["data"]["keys"] == ["alpha", "zeta"]
    r = await kv.call("LIST", "kv1/nothing")
    assert r.status_code == 404
    assert r.json() == {"errors": []}


async def test_acl_create_versus_update(kv: InProcessVault) -> None:
    await kv.ok("PUT", "sys/policies/acl/kv1-create", json={"policy": 'path "kv1/*" { capabilities = ["create", "read"] }'})
    await kv.ok("PUT", "sys/policies/acl/kv1-update", json={"policy": 'path "kv1/*" { capabilities = ["update", "read"] }'})
    creator = await kv.token(["kv1-create"])
    updater = await kv.token(["kv1-update"])
    # Only "update": cannot create a new secret.
    assert (await kv.call("PUT", "kv1/s", updater, json={"v": 1})).status_code == 403
    # Only "create": may create it, but not overwrite it afterwards.
    assert (await kv.call("PUT", "kv1/s", creator, json={"v": 1})).status_code == 204
    assert (await kv.call("PUT", "kv1/s", creator, json={"v": 2})).status_code == 403
    assert (await kv.call("PUT", "kv1/s", updater, json={"v": 3})).status_code == 204
    assert (await kv.ok("GET", "kv1/s", creator))["data"] == {"v": 3}
    # Neither grants delete or list.
    assert (await kv.call("DELETE", "kv1/s", creator)).status_code == 403
    assert (await kv.call("LIST", "kv1/", updater)).status_code == 403
