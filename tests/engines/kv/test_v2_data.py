"""KV v2 ``data/``, ``delete/``, ``undelete/``, ``destroy/`` through the real ASGI app."""

from __future__ import annotations

from typing import Any

import pytest

from strongroom.clock import rfc3339
from tests.engines.kv.conftest import merge_patch
from tests.support.vault import InProcessVault

VERSION_KEYS = {"created_time", "custom_metadata", "deletion_time", "destroyed", "version"}
ENVELOPE_KEYS = {"request_id", "lease_id", "renewable", "lease_duration", "data", "wrap_info", "warnings", "auth"}


async def write(kv: InProcessVault, path: str, data: Any, **options: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"data": data}
    if options:
        body["options"] = options
    result: dict[str, Any] = (await kv.ok("POST", f"kv2/data/{path}", json=body))["data"]
    return result


async def test_write_returns_version_metadata(kv: InProcessVault) -> None:
    now = kv.clock.now()
    meta = await write(kv, "app/db", {"password": "pw"})
    assert meta == {"created_time": rfc3339(now), "custom_metadata": None, "deletion_time": "",
                    "destroyed": False, "version": 1}
    kv.clock.advance(5)
    assert (await write(kv, "app/db", {"password": "pw2"}))["version"] == 2
    body = await kv.ok("GET", "kv2/data/app/db")
    assert body["data"]["data"] == {"password": "pw2"}
    assert body["data"]["metadata"]["version"] == 2
    assert body["data"]["metadata"]["created_time"] == rfc3339(now + 5)
    old = await kv.ok("GET", "kv2/data/app/db?version=1")
    assert old["data"]["data"] == {"password": "pw"}
    # version 0 or negative means "current", as in Vault.
    assert (await kv.ok("GET", "kv2/data/app/db?version=0"))["data"]["metadata"]["version"] == 2
    assert (await kv.ok("GET", "kv2/data/app/db?version=-1"))["data"]["metadata"]["version"] == 2


async def test_missing_and_unknown_versions_are_plain_404(kv: InProcessVault) -> None:
    for path in ("kv2/data/nope", "kv2/data/", "kv2/data/dir/"):
        r = await kv.call("GET", path)
        assert r.status_code == 404, path
        assert r.json() == {"errors": []}
    await write(kv, "s", {"a": 1})
    r = await kv.call("GET", "kv2/data/s?version=9")
    assert r.status_code == 404
    assert r.json() == {"errors": []}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"a": 1}, "no data provided"),
        ({"data": "str"}, None),
        ({"data": [1]}, None),
        ({"data": {"a": 1}, "options": "zz"}, None),
        ({"data": {"a": 1}, "options": {"cas": "x"}}, "error parsing check-and-set parameter"),
        ({"data": {"a": 1}, "options": {"cas": 1.5}}, "error parsing check-and-set parameter"),
        ({"data": {"a": 1}, "options": {"cas": [1]}}, "error parsing check-and-set parameter"),
    ],
)
async def test_bad_writes_are_400(kv: InProcessVault, body: dict[str, Any], message: str | None) -> None:
    r = await kv.call("POST", "kv2/data/bad", json=body)
    assert r.status_code == 400, r.text
    if message is not None:
        assert r.json() == {"errors": [message]}
    assert (await kv.call("GET", "kv2/metadata/bad")).status_code == 404


async def test_bad_version_parameter_is_400(kv: InProcessVault) -> None:
    await write(kv, "s", {"a": 1})
    for query in ("abc", "1.5"):
        assert (await kv.call("GET", f"kv2/data/s?version={query}")).status_code == 400


async def test_null_data_is_stored_as_null(kv: InProcessVault) -> None:
    assert (await write(kv, "n", None))["version"] == 1
    assert (await kv.ok("GET", "kv2/data/n"))["data"]["data"] is None


async def test_check_and_set(kv: InProcessVault) -> None:
    r = await kv.call("POST", "kv2/data/c", json={"data": {"v": 1}, "options": {"cas": 1}})
    assert r.status_code == 400
    assert r.json() == {"errors": ["check-and-set parameter did not match the current version"]}
    assert (await write(kv, "c", {"v": 1}, cas=0))["version"] == 1
    r = await kv.call("POST", "kv2/data/c", json={"data": {"v": 2}, "options": {"cas": 0}})
    assert r.json() == {"errors": ["check-and-set parameter did not match the current version"]}
    assert (await write(kv, "c", {"v": 2}, cas="1"))["version"] == 2
    # true decodes to 1 and null to 0, as Go's weak decoding does.
    r = await kv.call("POST", "kv2/data/c", json={"data": {"v": 3}, "options": {"cas": True}})
    assert r.status_code == 400
    assert (await kv.ok("GET", "kv2/data/c"))["data"]["data"] == {"v": 2}


async def test_cas_required_by_mount_and_by_key(kv: InProcessVault) -> None:
    await kv.ok("POST", "kv2/config", json={"cas_required": True})
    r = await kv.call("POST", "kv2/data/m", json={"data": {"v": 1}})
    assert r.status_code == 400
    assert r.json() == {"errors": ["check-and-set parameter required for this call"]}
    await write(kv, "m", {"v": 1}, cas=0)
    await kv.ok("POST", "kv2/config", json={"cas_required": False})
    await write(kv, "k", {"v": 1})
    await kv.ok("POST", "kv2/metadata/k", json={"cas_required": True})
    r = await kv.call("POST", "kv2/data/k", json={"data": {"v": 2}})
    assert r.json() == {"errors": ["check-and-set parameter required for this call"]}
    r = await merge_patch(kv, "kv2/data/k", {"data": {"v": 2}})
    assert r.json() == {"errors": ["check-and-set parameter required for this call"]}
    assert (await write(kv, "k", {"v": 2}, cas=1))["version"] == 2


async def test_patch_merges_per_rfc7396(kv: InProcessVault) -> None:
    await write(kv, "p", {"a": 2, "n": {"x": 1, "y": {"z": 2}}, "l": [1, 2]})
    r = await merge_patch(kv, "kv2/data/p", {"data": {"a": None, "n": {"y": {"w": 3}}, "b": "new", "l": [3]}})
    assert r.status_code == 200, r.text
    assert set(r.json()["data"]) == VERSION_KEYS
    assert r.json()["data"]["version"] == 2
    data = (await kv.ok("GET", "kv2/data/p"))["data"]["data"]
    assert data == {"b": "new", "l": [3], "n": {"x": 1, "y": {"w": 3, "z": 2}}}
    r = await merge_patch(kv, "kv2/data/p", {"data": {"c": 1}, "options": {"cas": 1}})
    assert r.status_code == 400
    assert (await merge_patch(kv, "kv2/data/p", {"data": {"c": 1}, "options": {"cas": 2}})).status_code == 200


async def test_patch_errors(kv: InProcessVault) -> None:
    r = await merge_patch(kv, "kv2/data/none", {"data": {"a": 1}})
    assert r.status_code == 404
    await write(kv, "p", {"a": 1})
    r = await merge_patch(kv, "kv2/data/p", {"a": 1})
    assert r.status_code == 400
    assert r.json() == {"errors": ["no data provided"]}
    assert (await merge_patch(kv, "kv2/data/p", {"data": "x"})).status_code == 400
    await kv.ok("DELETE", "kv2/data/p")
    r = await merge_patch(kv, "kv2/data/p", {"data": {"a": 2}})
    assert r.status_code == 404
    assert set(r.json()) == ENVELOPE_KEYS
    assert r.json()["data"]["version"] == 1
    assert r.json()["data"]["deletion_time"] != ""


async def test_soft_delete_latest_then_undelete(kv: InProcessVault) -> None:
    await write(kv, "d", {"v": 1})
    await write(kv, "d", {"v": 2})
    kv.clock.advance(1)
    when = kv.clock.now()
    r = await kv.call("DELETE", "kv2/data/d")
    assert r.status_code == 204
    r = await kv.call("GET", "kv2/data/d")
    assert r.status_code == 404
    body = r.json()
    assert set(body) == ENVELOPE_KEYS
    assert body["data"]["data"] is None
    assert body["data"]["metadata"]["deletion_time"] == rfc3339(when)
    assert body["data"]["metadata"]["version"] == 2
    # Other versions are untouched and the secret still lists.
    assert (await kv.ok("GET", "kv2/data/d?version=1"))["data"]["data"] == {"v": 1}
    assert (await kv.ok("LIST", "kv2/metadata/"))["data"]["keys"] == ["d"]
    # Deleting again (and deleting something absent) is a quiet 204.
    assert (await kv.call("DELETE", "kv2/data/d")).status_code == 204
    assert (await kv.call("DELETE", "kv2/data/absent")).status_code == 204
    await kv.ok("POST", "kv2/undelete/d", json={"versions": [2, 99]})
    assert (await kv.ok("GET", "kv2/data/d"))["data"]["data"] == {"v": 2}
    # A new write after a delete is simply the next version.
    await kv.ok("DELETE", "kv2/data/d")
    assert (await write(kv, "d", {"v": 3}))["version"] == 3


async def test_delete_versions(kv: InProcessVault) -> None:
    for i in range(3):
        await write(kv, "dv", {"v": i})
    await kv.ok("POST", "kv2/delete/dv", json={"versions": "1,2"})
    for v in (1, 2):
        assert (await kv.call("GET", f"kv2/data/dv?version={v}")).status_code == 404
    assert (await kv.ok("GET", "kv2/data/dv"))["data"]["data"] == {"v": 2}
    await kv.ok("POST", "kv2/undelete/dv", json={"versions": ["1"]})
    assert (await kv.ok("GET", "kv2/data/dv?version=1"))["data"]["data"] == {"v": 0}
    for route in ("delete", "undelete"):
        for body in ({}, {"versions": []}):
            r = await kv.call("POST", f"kv2/{route}/dv", json=body)
            assert r.status_code == 400
            assert r.json() == {"errors": ["No version number provided"]}
        assert (await kv.call("POST", f"kv2/{route}/dv", json={"versions": ["x"]})).status_code == 400
        assert (await kv.call("POST", f"kv2/{route}/nope", json={"versions": [1]})).status_code == 204


async def test_destroy_removes_data_for_good(kv: InProcessVault) -> None:
    await write(kv, "x", {"v": 1})
    await write(kv, "x", {"v": 2})
    assert (await kv.call("PUT", "kv2/destroy/x", json={"versions": [1]})).status_code == 204
    r = await kv.call("GET", "kv2/data/x?version=1")
    assert r.status_code == 404
    assert r.json()["data"]["metadata"]["destroyed"] is True
    # Undelete cannot bring a destroyed version back.
    await kv.ok("POST", "kv2/undelete/x", json={"versions": [1]})
    assert (await kv.call("GET", "kv2/data/x?version=1")).status_code == 404
    meta = (await kv.ok("GET", "kv2/metadata/x"))["data"]
    assert meta["versions"]["1"]["destroyed"] is True
    assert meta["versions"]["2"]["destroyed"] is False
    r = await kv.call("PUT", "kv2/destroy/x", json={})
    assert r.json() == {"errors": ["no version number provided"]}
    assert (await kv.call("PUT", "kv2/destroy/nope", json={"versions": [1]})).status_code == 204
    assert (await kv.call("GET", "kv2/destroy/x")).status_code == 405


async def test_delete_version_after_mount_and_key(kv: InProcessVault) -> None:
    await kv.ok("POST", "kv2/config", json={"delete_version_after": "20s"})
    now = kv.clock.now()
    meta = await write(kv, "t", {"v": 1})
    assert meta["deletion_time"] == rfc3339(now + 20)
    # The smaller non-zero of mount and key settings wins.
    await kv.ok("POST", "kv2/metadata/t", json={"delete_version_after": "10s"})
    meta = await write(kv, "t", {"v": 2})
    assert meta["deletion_time"] == rfc3339(now + 10)
    kv.clock.advance(9)
    assert (await kv.ok("GET", "kv2/data/t"))["data"]["data"] == {"v": 2}
    kv.clock.advance(2)
    r = await kv.call("GET", "kv2/data/t")
    assert r.status_code == 404
    assert r.json()["data"]["metadata"]["deletion_time"] == rfc3339(now + 10)
    assert (await kv.ok("GET", "kv2/data/t?version=1"))["data"]["data"] == {"v": 1}
    # Undelete restarts the clock from now.
    await kv.ok("POST", "kv2/undelete/t", json={"versions": [2]})
    assert (await kv.ok("GET", "kv2/data/t"))["data"]["metadata"]["deletion_time"] == rfc3339(now + 11 + 10)
    # A negative mount setting disables the feature for every key.
    await kv.ok("POST", "kv2/config", json={"delete_version_after": "-1h"})
    assert (await write(kv, "t", {"v": 3}))["deletion_time"] == ""


async def test_max_versions_prunes_oldest(kv: InProcessVault) -> None:
    for i in range(12):
        await write(kv, "mv", {"v": i})
    meta = (await kv.ok("GET", "kv2/metadata/mv"))["data"]
    # Default window of 10 versions: 3..12 kept.
    assert meta["oldest_version"] == 3
    assert sorted(int(v) for v in meta["versions"]) == list(range(3, 13))
    assert (await kv.call("GET", "kv2/data/mv?version=2")).status_code == 404
    await kv.ok("POST", "kv2/metadata/mv", json={"max_versions": 2})
    await write(kv, "mv", {"v": 12})
    meta = (await kv.ok("GET", "kv2/metadata/mv"))["data"]
    assert meta["oldest_version"] == 12
    assert sorted(meta["versions"]) == ["12", "13"]
    assert (await kv.call("GET", "kv2/data/mv?version=11")).status_code == 404
    assert (await kv.ok("GET", "kv2/data/mv?version=12"))["data"]["data"] == {"v": 11}


async def test_max_versions_uses_larger_of_mount_and_key(kv: InProcessVault) -> None:
    # Vault keeps max(key, mount) versions when both are set (AddVersion); checked against OpenBao.
    await kv.ok("POST", "kv2/config", json={"max_versions": 3})
    await kv.ok("POST", "kv2/metadata/w", json={"max_versions": 2})
    for i in range(5):
        await write(kv, "w", {"v": i})
    meta = (await kv.ok("GET", "kv2/metadata/w"))["data"]
    assert sorted(meta["versions"]) == ["3", "4", "5"]
    assert meta["oldest_version"] == 3
