"""KV v2 ``metadata/``, ``config``, ``subkeys/`` and non-v2 paths through the real ASGI app."""

from __future__ import annotations

from typing import Any

import pytest

from strongroom.clock import rfc3339
from tests.engines.kv.conftest import merge_patch
from tests.support.vault import InProcessVault

METADATA_KEYS = {
    "cas_required", "created_time", "current_version", "custom_metadata", "delete_version_after",
    "max_versions", "oldest_version", "updated_time", "versions",
}


async def write(kv: InProcessVault, path: str, data: Any) -> None:
    await kv.ok("POST", f"kv2/data/{path}", json={"data": data})


async def test_metadata_read_shape(kv: InProcessVault) -> None:
    t0 = kv.clock.now()
    await write(kv, "m", {"a": 1})
    kv.clock.advance(3)
    await write(kv, "m", {"a": 2})
    meta = (await kv.ok("GET", "kv2/metadata/m"))["data"]
    assert set(meta) == METADATA_KEYS
    assert meta["created_time"] == rfc3339(t0)
    assert meta["updated_time"] == rfc3339(t0 + 3)
    assert meta["current_version"] == 2
    assert meta["oldest_version"] == 0
    assert meta["delete_version_after"] == "0s"
    assert meta["custom_metadata"] is None
    assert meta["versions"] == {
        "1": {"created_time": rfc3339(t0), "deletion_time": "", "destroyed": False},
        "2": {"created_time": rfc3339(t0 + 3), "deletion_time": "", "destroyed": False},
    }
    assert (await kv.call("GET", "kv2/metadata/none")).status_code == 404
    assert (await kv.call("GET", "kv2/metadata/")).status_code == 404


async def test_metadata_write_before_data(kv: InProcessVault) -> None:
    assert await kv.ok("POST", "kv2/metadata/pre", json={
        "max_versions": 3, "cas_required": True, "delete_version_after": "1h30m",
        "custom_metadata": {"owner": "me", "n": 5}}) is None
    meta = (await kv.ok("GET", "kv2/metadata/pre"))["data"]
    assert meta["current_version"] == 0
    assert meta["versions"] == {}
    assert meta["max_versions"] == 3
    assert meta["cas_required"] is True
    assert meta["delete_version_after"] == "1h30m0s"
    assert meta["custom_metadata"] == {"owner": "me", "n": "5"}
    # No version yet: data read is a plain 404, but the path is listed.
    assert (await kv.call("GET", "kv2/data/pre")).status_code == 404
    assert (await kv.ok("LIST", "kv2/metadata"))["data"]["keys"] == ["pre"]
    r = await kv.ok("POST", "kv2/data/pre", json={"data": {"x": 1}, "options": {"cas": 0}})
    assert r["data"]["custom_metadata"] == {"owner": "me", "n": "5"}
    # An empty write changes nothing and creates nothing.
    assert (await kv.call("POST", "kv2/metadata/pre", json={})).status_code == 204
    assert (await kv.call("POST", "kv2/metadata/other", json={})).status_code == 204
    assert (await kv.call("GET", "kv2/metadata/other")).status_code == 404


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"custom_metadata": "x"}, "custom_metadata"),
        ({"custom_metadata": {"a": ""}}, 'length of value for key "a" is 0'),
        ({"custom_metadata": {"a": None}}, "length of value"),
        ({"custom_metadata": {"a": {"b": 1}}}, "custom_metadata validation failed"),
        ({"custom_metadata": {"k" * 129: "v"}}, "length of key"),
        ({"custom_metadata": {"k": "v" * 513}}, "length of value"),
        ({"custom_metadata": {f"k{i}": "v" for i in range(65)}}, "at most 64 keys, provided 65"),
        ({"custom_metadata": {"k": "bell\x07"}}, "unprintable"),
        ({"delete_version_after": "-1s"}, "negative"),
        ({"delete_version_after": "soon"}, "delete_version_after"),
        ({"max_versions": "x"}, "max_versions"),
        ({"max_versions": -1}, "max_versions"),
        ({"max_versions": "9" * 40}, "max_versions"),
        ({"max_versions": 2**32}, "max_versions"),
        ({"delete_version_after": "9" * 40}, "out of range"),
        ({"delete_version_after": "99999999999h"}, "out of range"),
        ({"cas_required": "maybe"}, "cas_required"),
    ],
)
async def test_metadata_write_validation(kv: InProcessVault, body: dict[str, Any], fragment: str) -> None:
    r = await kv.call("POST", "kv2/metadata/v", json=body)
    assert r.status_code == 400, r.text
    assert fragment in r.json()["errors"][0]
    assert (await kv.call("GET", "kv2/metadata/v")).status_code == 404


async def test_custom_metadata_limits_accept_the_maximum(kv: InProcessVault) -> None:
    big = {f"k{i:03d}" + "x" * 124: "v" * 512 for i in range(64)}
    await kv.ok("POST", "kv2/metadata/big", json={"custom_metadata": big})
    assert (await kv.ok("GET", "kv2/metadata/big"))["data"]["custom_metadata"] == big


async def test_cas_required_false_warns_when_mount_requires_it(kv: InProcessVault) -> None:
    await kv.ok("POST", "kv2/config", json={"cas_required": True})
    body = await kv.ok("POST", "kv2/metadata/w", json={"cas_required": False})
    assert body["data"] is None
    assert body["warnings"] == [
        '"cas_required" set to false, but is mandated by backend config. This value will be ignored.'
    ]


async def test_metadata_patch(kv: InProcessVault) -> None:
    await kv.ok("POST", "kv2/metadata/p", json={
        "max_versions": 4, "cas_required": True, "custom_metadata": {"owner": "me", "team": "a"}})
    r = await merge_patch(kv, "kv2/metadata/p", {"cas_required": False,
                                                 "custom_metadata": {"owner": None, "new": "x"}})
    assert r.status_code == 204, r.text
    meta = (await kv.ok("GET", "kv2/metadata/p"))["data"]
    assert meta["cas_required"] is False
    assert meta["max_versions"] == 4
    assert meta["custom_metadata"] == {"team": "a", "new": "x"}
    # null resets a setting.
    assert (await merge_patch(kv, "kv2/metadata/p", {"max_versions": None, "custom_metadata": None})).status_code == 204
    meta = (await kv.ok("GET", "kv2/metadata/p"))["data"]
    assert meta["max_versions"] == 0
    assert meta["custom_metadata"] is None
    assert (await merge_patch(kv, "kv2/metadata/p", {})).status_code == 204
    assert (await merge_patch(kv, "kv2/metadata/none", {"max_versions": 1})).status_code == 404
    r = await merge_patch(kv, "kv2/metadata/p", {"custom_metadata": {"a": {"b": 1}}})
    assert r.status_code == 400


async def test_metadata_delete_removes_everything(kv: InProcessVault) -> None:
    await write(kv, "a/b/c", {"v": 1})
    await write(kv, "a/b/c", {"v": 2})
    await write(kv, "a/keep", {"v": 1})
    assert (await kv.ok("LIST", "kv2/metadata/a"))["data"]["keys"] == ["b/", "keep"]
    assert (await kv.call("DELETE", "kv2/metadata/a/b/c")).status_code == 204
    assert (await kv.call("GET", "kv2/metadata/a/b/c")).status_code == 404
    assert (await kv.call("GET", "kv2/data/a/b/c?version=1")).status_code == 404
    assert (await kv.ok("LIST", "kv2/metadata/a/"))["data"]["keys"] == ["keep"]
    assert (await kv.call("LIST", "kv2/metadata/a/b")).status_code == 404
    assert (await kv.call("DELETE", "kv2/metadata/nothing")).status_code == 204
    # A re-created secret starts again at version 1.
    await write(kv, "a/b/c", {"v": 3})
    assert (await kv.ok("GET", "kv2/data/a/b/c"))["data"]["metadata"]["version"] == 1


async def test_list_keeps_deleted_and_destroyed_secrets(kv: InProcessVault) -> None:
    await write(kv, "gone", {"v": 1})
    await kv.ok("DELETE", "kv2/data/gone")
    await write(kv, "dead", {"v": 1})
    await kv.ok("PUT", "kv2/destroy/dead", json={"versions": [1]})
    assert (await kv.ok("LIST", "kv2/metadata/"))["data"]["keys"] == ["dead", "gone"]
    r = await kv.call("LIST", "kv2/metadata/empty/")
    assert r.status_code == 404
    assert r.json() == {"errors": []}
    assert (await kv.call("LIST", "kv2/data/")).status_code == 405


async def test_config(kv: InProcessVault) -> None:
    assert (await kv.ok("GET", "kv2/config"))["data"] == {
        "cas_required": False, "delete_version_after": "0s", "max_versions": 0}
    assert (await kv.call("POST", "kv2/config", json={})).status_code == 204
    await kv.ok("POST", "kv2/config", json={"max_versions": 5, "cas_required": True, "delete_version_after": "90s"})
    assert (await kv.ok("GET", "kv2/config"))["data"] == {
        "cas_required": True, "delete_version_after": "1m30s", "max_versions": 5}
    await kv.ok("POST", "kv2/config", json={"delete_version_after": "-5s"})
    assert (await kv.ok("GET", "kv2/config"))["data"]["delete_version_after"] == "-1s"
    await kv.ok("POST", "kv2/config", json={"delete_version_after": 0})
    assert (await kv.ok("GET", "kv2/config"))["data"]["delete_version_after"] == "0s"
    for bad in ({"max_versions": "x"}, {"max_versions": -1}, {"max_versions": "9" * 40},
                {"delete_version_after": "-" + "9" * 40}, {"cas_required": "maybe"}):
        assert (await kv.call("POST", "kv2/config", json=bad)).status_code == 400, bad
    assert (await kv.ok("GET", "kv2/config"))["data"]["max_versions"] == 5
    assert (await kv.call("DELETE", "kv2/config")).status_code == 405


async def test_subkeys(kv: InProcessVault) -> None:
    await write(kv, "s", {"a": 1})
    await write(kv, "s", {"b": "x", "l": [1], "e": {}, "n": {"x": 1, "y": {"w": 3, "z": 2}}})
    body = (await kv.ok("GET", "kv2/subkeys/s"))["data"]
    assert body["subkeys"] == {"b": None, "l": None, "e": None, "n": {"x": None, "y": {"w": None, "z": None}}}
    assert body["metadata"]["version"] == 2
    assert (await kv.ok("GET", "kv2/subkeys/s?depth=1"))["data"]["subkeys"] == {
        "b": None, "l": None, "e": None, "n": None}
    assert (await kv.ok("GET", "kv2/subkeys/s?depth=2"))["data"]["subkeys"]["n"] == {"x": None, "y": None}
    assert (await kv.ok("GET", "kv2/subkeys/s?version=1"))["data"]["subkeys"] == {"a": None}
    assert (await kv.call("GET", "kv2/subkeys/s?version=7")).status_code == 404
    assert (await kv.call("GET", "kv2/subkeys/none")).status_code == 404
    assert (await kv.call("GET", "kv2/subkeys/s?depth=x")).status_code == 400
    await kv.ok("DELETE", "kv2/data/s")
    r = await kv.call("GET", "kv2/subkeys/s")
    assert r.status_code == 404
    assert r.json()["data"]["subkeys"] is None
    assert r.json()["data"]["metadata"]["deletion_time"] != ""


@pytest.mark.parametrize(
    ("method", "path", "command"),
    [("GET", "kv2/foo", "get"), ("PUT", "kv2/foo", "put"), ("DELETE", "kv2/foo", "delete"),
     ("LIST", "kv2/", "list"), ("GET", "kv2/config/", "get"), ("LIST", "kv2/config", "list")],
)
async def test_v1_style_paths_get_vault_hint(kv: InProcessVault, method: str, path: str, command: str) -> None:
    r = await kv.call(method, path, json={"a": 1} if method == "PUT" else None)
    assert r.status_code == 404
    body = r.json()
    assert body["data"] is None
    assert body["warnings"] == [
        "Invalid path for a versioned K/V secrets engine. See the API docs for the appropriate API "
        f"endpoints to use. If using the Vault CLI, use 'vault kv {command}' for this operation."
    ]


@pytest.mark.parametrize("root", ["data", "metadata", "delete", "undelete", "destroy"])
async def test_bare_roots_are_not_supported(kv: InProcessVault, root: str) -> None:
    r = await kv.call("GET", f"kv2/{root}")
    assert r.status_code == 404
    assert r.json()["warnings"] == ["Non-listing operations on the root of a K/V v2 mount are not supported."]
