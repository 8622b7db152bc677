"""sys/mounts (enable, read, disable), sys/mounts/:path/tune and sys/internal/ui/mounts in process."""

from __future__ import annotations

from typing import Any

import pytest

from strongroom.storage.base import Transaction, transactional
from tests.support.vault import InProcessVault

VIEW_KEYS = {
    "type",
    "description",
    "accessor",
    "uuid",
    "config",
    "options",
    "local",
    "seal_wrap",
    "external_entropy_access",
    "plugin_version",
    "running_plugin_version",
    "running_sha256",
}


async def _all_keys(vault: InProcessVault) -> set[bytes]:
    async def read(tx: Transaction) -> set[bytes]:
        return {k for k, _ in await tx.range(b"", b"\xff" * 64)}

    return await transactional(vault.node.store, read)


async def test_list_shape_and_injection(vault: InProcessVault) -> None:
    body = await vault.ok("GET", "sys/mounts")
    assert set(body["data"]) == {"sys/"}
    sys_view = body["data"]["sys/"]
    assert set(sys_view) == VIEW_KEYS  # built-in mounts carry no deprecation_status (Vault's omitempty)
    assert sys_view["type"] == "system" and sys_view["options"] is None
    assert body["sys/"] == sys_view


async def test_enable_read_disable(vault: InProcessVault) -> None:
    assert (
        await vault.call(
            "POST",
            "sys/mounts/app",
            json={"type": "kv", "description": "d", "config": {"default_lease_ttl": "1h"}},
        )
    ).status_code == 204
    view = (await vault.ok("GET", "sys/mounts/app"))["data"]
    assert set(view) == VIEW_KEYS | {"deprecation_status"}
    assert (view["type"], view["description"], view["options"]) == ("kv", "d", {})
    assert view["config"]["default_lease_ttl"] == 3600
    assert (await vault.ok("GET", "sys/mounts"))["data"]["app/"]["uuid"] == view["uuid"]
    for alias, version in (("kv-v1", "1"), ("kv-v2", "2")):
        await vault.ok("POST", f"sys/mounts/{alias}", json={"type": alias})
        assert (await vault.ok("GET", f"sys/mounts/{alias}"))["data"]["options"] == {"version": version}
    assert await vault.ok("DELETE", "sys/mounts/app") is None
    assert await vault.ok("DELETE", "sys/mounts/app") is None  # idempotent, as Vault
    r = await vault.call("GET", "sys/mounts/app")
    assert r.json() == {"errors": ["No secret engine mount at app/"]}


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        ("x", {}, "backend type must be specified as a string"),
        ("x", {"type": "nope"}, "plugin not found in the catalog: nope"),
        ("sys/x", {"type": "kv"}, 'cannot mount "sys/x/"'),
        ("auth/x", {"type": "kv"}, 'cannot mount "auth/x/"'),
        ("cubbyhole", {"type": "kv"}, 'cannot mount "cubbyhole/"'),
        (
            "x",
            {"type": "kv", "options": {"version": "3"}},
            "invalid KV version '3'; supported versions are 1 and 2",
        ),
        (
            "x",
            {"type": "kv", "config": {"default_lease_ttl": "2h", "max_lease_ttl": "1h"}},
            "given default lease TTL greater than given max lease TTL",
        ),
        (
            "x",
            {"type": "kv", "config": {"default_lease_ttl": "999h"}},
            "given default lease TTL greater than system max lease TTL of 2764800",
        ),
        (
            "x",
            {"type": "kv", "config": {"default_lease_ttl": "abc"}},
            "unable to parse default TTL of abc: invalid duration",
        ),
        ("x", {"type": "kv", "config": {"listing_visibility": "loud"}}, "invalid listing_visibility loud"),
        ("a//b", {"type": "kv"}, "invalid mount path 'a//b'"),
    ],
)
async def test_enable_validation(
    vault: InProcessVault, path: str, body: dict[str, Any], message: str
) -> None:
    r = await vault.call("POST", f"sys/mounts/{path}", json=body)
    assert (r.status_code, r.json()) == (400, {"errors": [message]})


async def test_conflicting_paths(vault: InProcessVault) -> None:
    await vault.ok("POST", "sys/mounts/a", json={"type": "kv"})
    assert (await vault.call("POST", "sys/mounts/a", json={"type": "kv"})).json() == {
        "errors": ["path is already in use at a/"]
    }
    assert (await vault.call("POST", "sys/mounts/a/b", json={"type": "kv"})).status_code == 400
    await vault.ok("POST", "sys/mounts/c/d", json={"type": "kv"})
    assert (await vault.call("POST", "sys/mounts/c", json={"type": "kv"})).status_code == 400
    r = await vault.call("DELETE", "sys/mounts/sys")
    assert r.json() == {"errors": ['cannot unmount "sys/"']}


async def test_disabled_mount_data_is_gone_from_storage(vault: InProcessVault) -> None:
    await vault.ok("GET", "sys/mounts")  # the first request reserves the node's encryption block
    before = await _all_keys(vault)
    await vault.ok("POST", "sys/mounts/gone", json={"type": "kv", "options": {"version": "1"}})
    for i in range(5):
        await vault.ok("PUT", f"gone/dir/s{i}", json={"v": i})
    with_data = await _all_keys(vault)
    assert len(with_data - before) >= 5
    await vault.ok("DELETE", "sys/mounts/gone")
    assert await _all_keys(vault) <= before
    # A new mount at the same path starts empty.
    await vault.ok("POST", "sys/mounts/gone", json={"type": "kv", "options": {"version": "1"}})
    assert (await vault.call("GET", "gone/dir/s1")).status_code == 404


async def test_tune_read_and_write(vault: InProcessVault) -> None:
    await vault.ok("POST", "sys/mounts/t", json={"type": "kv"})
    tune = (await vault.ok("GET", "sys/mounts/t/tune"))["data"]
    assert tune == {
        "default_lease_ttl": 2764800,
        "max_lease_ttl": 2764800,
        "force_no_cache": False,
        "description": "",
    }
    assert (
        await vault.ok(
            "POST",
            "sys/mounts/t/tune",
            json={
                "default_lease_ttl": "1h",
                "max_lease_ttl": 7200,
                "description": "tuned",
                "options": {"x": "y"},
            },
        )
        is None
    )
    tune = (await vault.ok("GET", "sys/mounts/t/tune"))["data"]
    assert (tune["default_lease_ttl"], tune["max_lease_ttl"], tune["description"]) == (3600, 7200, "tuned")
    assert tune["options"] == {"x": "y"}
    await vault.ok("POST", "sys/mounts/t/tune", json={"options": {"x": ""}, "default_lease_ttl": "system"})
    tune = (await vault.ok("GET", "sys/mounts/t/tune"))["data"]
    assert "options" not in tune and tune["default_lease_ttl"] == 2764800
    # a deeper path tunes the mount that serves it, as Vault's prefix match does
    assert (await vault.ok("GET", "sys/mounts/t/some/deep/path/tune"))["data"]["description"] == "tuned"


async def test_tune_kv_upgrade_warns_and_downgrade_fails(vault: InProcessVault) -> None:
    await vault.ok("POST", "sys/mounts/u", json={"type": "kv"})
    r = await vault.ok("POST", "sys/mounts/u/tune", json={"options": {"version": "2"}})
    assert r["warnings"] == [
        "Upgrading mount from version 0 to version 2. This mount will be unavailable for a "
        "brief period and will resume service shortly."
    ]
    assert (await vault.ok("GET", "sys/mounts/u"))["data"]["options"] == {"version": "2"}
    r = await vault.call("POST", "sys/mounts/u/tune", json={"options": {"version": "1"}})
    assert r.json() == {"errors": ["cannot downgrade mount from version 2"]}
    r = await vault.call("POST", "sys/mounts/u/tune", json={"options": {"version": "7"}})
    assert r.json() == {"errors": ["invalid version provided: 7"]}
    assert (
        await vault.call("POST", "sys/mounts/u/tune", json={"options": {"version": "2"}})
    ).status_code == 204


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        ("nope", {"default_lease_ttl": "1h"}, 'tune of path "nope/" failed: no mount entry found'),
        ("sys", {"default_lease_ttl": "1h"}, "cannot tune parameter default_lease_ttl of sys/"),
        (
            "t",
            {"default_lease_ttl": "2h", "max_lease_ttl": "1h"},
            "backend max lease TTL of 3600 would be less than backend default lease TTL of 7200",
        ),
        ("t", {"max_lease_ttl": "soon"}, "unable to parse max TTL of soon: invalid duration"),
        ("t", {"listing_visibility": "loud"}, "invalid listing_visibility loud"),
    ],
)
async def test_tune_validation(vault: InProcessVault, path: str, body: dict[str, Any], message: str) -> None:
    await vault.ok("POST", "sys/mounts/t", json={"type": "kv"})
    r = await vault.call("POST", f"sys/mounts/{path}/tune", json=body)
    assert (r.status_code, r.json()) == (400, {"errors": [message]})


async def test_tune_untunable_mount_accepts_audit_keys(vault: InProcessVault) -> None:
    assert (
        await vault.call("POST", "sys/mounts/sys/tune", json={"audit_non_hmac_request_keys": ["a"]})
    ).status_code == 204
    assert (await vault.call("GET", "sys/mounts/nope/tune")).json() == {
        "errors": ['cannot fetch sysview for path "nope/"']
    }


async def test_internal_ui_mounts(vault: InProcessVault) -> None:
    await vault.ok("POST", "sys/mounts/kv2", json={"type": "kv-v2"})
    listing = (await vault.ok("GET", "sys/internal/ui/mounts"))["data"]
    assert set(listing) == {"secret", "auth"} and "kv2/" in listing["secret"] and "token/" in listing["auth"]
    one = (await vault.ok("GET", "sys/internal/ui/mounts/kv2/some/secret"))["data"]
    assert (one["path"], one["type"], one["options"]) == ("kv2/", "kv", {"version": "2"})
    assert (await vault.ok("GET", "sys/internal/ui/mounts/auth/token"))["data"]["path"] == "token/"
    r = await vault.call("GET", "sys/internal/ui/mounts/nope/x")
    assert (r.status_code, r.json()) == (
        403,
        {
            "errors": [
                'preflight capability check returned 403, please ensure client\'s policies grant access to path "nope/x/"'
            ]
        },
    )


async def test_internal_ui_mount_visibility_follows_the_acl(vault: InProcessVault) -> None:
    await vault.ok("POST", "sys/mounts/kv2", json={"type": "kv-v2"})
    await vault.ok(
        "PUT", "sys/policies/acl/inside", json={"policy": 'path "kv2/data/app/*" { capabilities = ["read"] }'}
    )
    inside = await vault.token(["inside"])
    outside = await vault.token(["default"])
    assert (await vault.call("GET", "sys/internal/ui/mounts/kv2/app/x", token=inside)).status_code == 200
    assert (await vault.call("GET", "sys/internal/ui/mounts/kv2/app/x", token=outside)).status_code == 403
    assert (await vault.call("GET", "sys/internal/ui/mounts/kv2", token="")).status_code == 403


async def test_mount_endpoints_need_policy(vault: InProcessVault) -> None:
    token = await vault.token(["default"])
    assert (await vault.call("GET", "sys/mounts", token=token)).status_code == 403
    assert (await vault.call("POST", "sys/mounts/x", token=token, json={"type": "kv"})).status_code == 403
    assert (await vault.call("GET", "sys/mounts/x")).status_code == 400
