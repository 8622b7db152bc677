"""The HTTP layer through the in-process vault: envelope, status codes, verbs, headers, body decoding."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from strongroom.core.mounts import load_table
from strongroom.core.node import NodeSettings
from strongroom.engines.sys import mounts
from strongroom.errors import InvalidRequest
from strongroom.storage.base import Transaction, transactional
from tests.support.vault import InProcessVault, start_vault


async def send(
    vault: InProcessVault,
    method: str,
    path: str,
    token: str | None = None,
    headers: dict[str, str] | None = None,
    **kw: Any,
) -> httpx.Response:
    """``vault.call`` with extra headers (the token header is left out when ``token == ""``)."""
    merged = vault.headers(token) if token != "" else {}
    merged.update(headers or {})
    return await vault.client.request(method, "/v1/" + path, headers=merged, **kw)


ENVELOPE = {"request_id", "lease_id", "renewable", "lease_duration", "data", "wrap_info", "warnings", "auth"}
HCL = 'path "secret/*" { capabilities = ["read"] }'


async def test_envelope_keys_are_always_present(vault: InProcessVault) -> None:
    body = await vault.ok("GET", "sys/policies/acl/default")
    assert body.keys() >= ENVELOPE
    assert body["lease_id"] == "" and body["renewable"] is False and body["wrap_info"] is None
    assert body["warnings"] is None and body["auth"] is None
    assert "name" not in body  # sys/policies/acl is not one of Vault's top-level-injected paths
    mounts = await vault.ok("GET", "sys/mounts")
    assert mounts.keys() >= ENVELOPE and "sys/" in mounts and mounts["data"]["sys/"] == mounts["sys/"]


async def test_204_for_writes_without_body_and_200_with_warnings(vault: InProcessVault) -> None:
    r = await send(vault, "PUT", "sys/policies/acl/p", json={"policy": HCL})
    assert r.status_code == 204 and r.content == b""
    assert r.headers["cache-control"] == "no-store"
    r = await send(vault, "PUT", "sys/policy/legacy", json={"rules": HCL})
    assert r.status_code == 200
    assert r.json()["warnings"] == ["'rules' is deprecated, please use 'policy' instead"]
    assert r.json()["data"] is None


async def test_head_only_on_health(vault: InProcessVault) -> None:
    r = await send(vault, "HEAD", "sys/health")
    assert r.status_code == 200 and r.content == b""
    r = await send(vault, "HEAD", "sys/health", params={"activecode": "299"})
    assert r.status_code == 299
    assert (await send(vault, "HEAD", "sys/mounts")).status_code == 405
    assert (await send(vault, "HEAD", "sys/seal-status")).status_code == 405


async def test_list_verb_and_query_parameter(vault: InProcessVault) -> None:
    await vault.ok("PUT", "sys/policies/acl/listed", json={"policy": HCL})
    by_verb = await vault.ok("LIST", "sys/policies/acl")
    for flag in ("true", "1", "T", "TRUE"):
        by_query = await vault.ok("GET", "sys/policies/acl", params={"list": flag})
        assert by_query["data"] == by_verb["data"]
    assert "listed" in by_verb["data"]["keys"]
    assert (await send(vault, "GET", "sys/policies/acl", params={"list": "false"})).status_code == 405
    r = await send(vault, "GET", "sys/policies/acl", params={"list": "maybe"})
    assert r.status_code == 400 and r.json() == {"errors": []}


async def test_list_sees_the_trailing_slash_for_acl(vault: InProcessVault) -> None:
    # A policy on "sys/policies/acl/*" (not the bare path) allows listing, as in Vault.
    await vault.ok(
        "PUT",
        "sys/policies/acl/lister",
        json={"policy": 'path "sys/policies/acl/*" { capabilities = ["list"] }'},
    )
    token = await vault.token(["lister"])
    assert (await send(vault, "LIST", "sys/policies/acl", token=token)).status_code == 200
    assert (await send(vault, "GET", "sys/policies/acl/default", token=token)).status_code == 403


async def test_tokens_in_headers(vault: InProcessVault) -> None:
    assert (await send(vault, "GET", "sys/mounts", token="")).status_code == 403
    assert (await send(vault, "GET", "sys/mounts", token="nope")).json() == {"errors": ["permission denied"]}
    bearer = {"Authorization": f"Bearer {vault.root_token}"}
    assert (await send(vault, "GET", "sys/mounts", token="", headers=bearer)).status_code == 200
    lower = {"Authorization": f"bearer {vault.root_token}"}
    assert (await send(vault, "GET", "sys/mounts", token="", headers=lower)).status_code == 403
    basic = {"Authorization": "Basic abc"}
    assert (await send(vault, "GET", "sys/mounts", headers=basic)).status_code == 200  # X-Vault-Token wins
    both = {"Authorization": "Bearer nope"}
    assert (await send(vault, "GET", "sys/mounts", headers=both)).status_code == 200
    request = {"X-Vault-Request": "true"}
    assert (await send(vault, "GET", "sys/mounts", headers=request)).status_code == 200


async def test_form_bodies(vault: InProcessVault) -> None:
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    r = await send(
        vault,
        "PUT",
        "sys/policies/acl/f",
        headers=form,
        content=b"policy=" + HCL.encode().replace(b" ", b"+"),
    )
    assert r.status_code == 204
    assert (await vault.ok("GET", "sys/policies/acl/f"))["data"]["policy"] == HCL
    # A JSON-looking body is JSON whatever the content type claims (Vault's rule).
    r = await send(
        vault,
        "PUT",
        "sys/policies/acl/g",
        headers=form,
        content=b'  {"policy": "path \\"x\\" {capabilities=[\\"read\\"]}"}',
    )
    assert r.status_code == 204
    # Repeated form fields are joined with commas.
    r = await send(vault, "POST", "sys/capabilities-self", headers=form, content=b"paths=a&paths=b")
    assert set(r.json()["data"]) == {"a", "b"}
    r = await send(vault, "PUT", "sys/policies/acl/h", headers=form, content=b"\xff=\xfe%")
    assert r.status_code == 400


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"{bad", "failed to decode JSON input"),
        (b"[1, 2]", "cannot unmarshal array"),
        (b'"text"', "cannot unmarshal string"),
        (b"12", "cannot unmarshal"),
        (b"\xff\xfe", "failed to decode"),
    ],
)
async def test_malformed_json_is_400(vault: InProcessVault, content: bytes, fragment: str) -> None:
    r = await send(vault, "PUT", "sys/policies/acl/x", content=content)
    assert r.status_code == 400, r.text
    assert fragment in r.json()["errors"][0]


async def test_null_and_empty_bodies_mean_no_parameters(vault: InProcessVault) -> None:
    for content in (b"null", b"", b"  \n"):
        r = await send(vault, "PUT", "sys/policies/acl/x", content=content)
        assert r.json() == {"errors": ["'policy' parameter not supplied or empty"]}


@pytest.mark.parametrize(
    ("body", "status"),
    [({"policy": ["a"]}, 400), ({"policy": {"a": 1}}, 400), ({"policy": 5}, 400), ({"policy": True}, 400)],
)
async def test_wrong_types_are_4xx(vault: InProcessVault, body: dict[str, Any], status: int) -> None:
    assert (await send(vault, "PUT", "sys/policies/acl/x", json=body)).status_code == status


async def test_unknown_paths_and_methods(vault: InProcessVault) -> None:
    r = await send(vault, "GET", "nope/foo")
    assert r.status_code == 404 and r.json() == {
        "errors": ['no handler for route "nope/foo". route entry not found.']
    }
    assert (await send(vault, "GET", "nope/foo", token="")).status_code == 403
    assert (await send(vault, "GET", "sys/nope")).status_code == 404
    r = await vault.client.get("/v2/sys/health")
    assert r.status_code == 404 and r.json() == {"errors": []}
    r = await send(vault, "TRACE", "sys/mounts")
    assert r.status_code == 405 and r.json() == {"errors": []}
    assert (await send(vault, "PUT", "sys/mounts")).status_code == 405
    assert (await send(vault, "GET", "sys/capabilities-self")).status_code == 405
    assert (await send(vault, "GET", "sys/policies/acl")).status_code == 405


async def test_patch_needs_merge_patch_content_type(vault: InProcessVault) -> None:
    r = await send(vault, "PATCH", "sys/mounts/x", json={})
    assert r.status_code == 415
    assert r.json() == {
        "errors": ["PATCH requires Content-Type of application/merge-patch+json, provided application/json"]
    }
    merge = {"Content-Type": "application/merge-patch+json; charset=utf-8"}
    assert (await send(vault, "PATCH", "sys/mounts/x", headers=merge, content=b"{}")).status_code == 405


async def test_oversize_body_is_413_never_500() -> None:
    small = await start_vault(settings=NodeSettings(max_request_bytes=256))
    try:
        big = {"policy": "#" * 300}
        r = await send(small, "PUT", "sys/policies/acl/big", json=big)
        assert r.status_code == 413 and r.json() == {"errors": ["http: request body too large"]}

        async def chunks() -> Any:
            for _ in range(5):
                yield b" " * 100

        r = await send(small, "PUT", "sys/policies/acl/big", content=chunks())
        assert r.status_code == 413
        assert (await send(small, "PUT", "sys/policies/acl/ok", json={"policy": HCL})).status_code == 204
    finally:
        await small.client.aclose()
        await small.node.close()


async def test_sealed_is_503_on_authenticated_paths_only(vault: InProcessVault) -> None:
    assert (await send(vault, "PUT", "sys/seal")).status_code == 204
    for method, path in (
        ("GET", "sys/mounts"),
        ("LIST", "sys/policies/acl"),
        ("GET", "nope/x"),
        ("PUT", "sys/rotate"),
        ("GET", "sys/key-status"),
        ("GET", "sys/internal/ui/mounts"),
    ):
        r = await send(vault, method, path)
        assert (r.status_code, r.json()) == (503, {"errors": ["Vault is sealed"]}), path
    assert (await send(vault, "GET", "sys/mounts", token="")).status_code == 503
    assert (await vault.ok("GET", "sys/seal-status"))["sealed"] is True
    assert (await vault.ok("GET", "sys/init")) == {"initialized": True}
    assert (await send(vault, "GET", "sys/health")).status_code == 503
    assert (await vault.ok("GET", "sys/leader")) == {"ha_enabled": False}
    assert (await send(vault, "PUT", "sys/seal", token="")).status_code == 204
    body = await vault.ok("PUT", "sys/unseal", json={"key": vault.keys[0]})
    assert body["progress"] == 1


async def _mount_entry(vault: InProcessVault, path: str) -> Any:
    async def read(tx: Transaction) -> Any:
        keys = vault.node.root.keys
        assert keys is not None
        return (await load_table(tx, keys)).find(path)

    return await transactional(vault.node.store, read)


async def test_invalid_tune_writes_nothing(vault: InProcessVault) -> None:
    await vault.ok("POST", "sys/mounts/atomic", json={"type": "kv", "description": "before"})
    before = await _mount_entry(vault, "atomic/")
    r = await send(
        vault,
        "POST",
        "sys/mounts/atomic/tune",
        json={"description": "after", "default_lease_ttl": "2h", "max_lease_ttl": "1h"},
    )
    assert r.status_code == 400
    assert r.json() == {
        "errors": ["backend max lease TTL of 3600 would be less than backend default lease TTL of 7200"]
    }
    assert await _mount_entry(vault, "atomic/") == before


async def test_a_handler_failing_after_its_write_commits_nothing(
    vault: InProcessVault, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The tune handler's table write happens, then the request fails: the transaction must be dropped."""
    await vault.ok("POST", "sys/mounts/atomic", json={"type": "kv", "description": "before"})
    before = await _mount_entry(vault, "atomic/")
    real = mounts.store_table

    def store_then_fail(tx: Transaction, keys: Any, table: Any) -> None:
        real(tx, keys, table)
        raise InvalidRequest("failure injected after the write")

    monkeypatch.setattr(mounts, "store_table", store_then_fail)
    r = await send(
        vault, "POST", "sys/mounts/atomic/tune", json={"description": "after", "max_lease_ttl": "9h"}
    )
    assert (r.status_code, r.json()) == (400, {"errors": ["failure injected after the write"]})
    r = await send(vault, "DELETE", "sys/mounts/atomic")
    assert r.status_code == 400
    monkeypatch.undo()
    assert await _mount_entry(vault, "atomic/") == before
    assert (await vault.ok("GET", "sys/mounts/atomic/tune"))["data"]["description"] == "before"


async def test_unexpected_exceptions_are_a_bare_500(
    vault: InProcessVault, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*args: Any) -> None:
        raise RuntimeError("secret detail that must not leak")

    monkeypatch.setattr(mounts, "store_table", boom)
    r = await send(vault, "POST", "sys/mounts/x", json={"type": "kv"})
    assert (r.status_code, r.json()) == (500, {"errors": ["internal error"]})


async def test_request_ids_are_unique(vault: InProcessVault) -> None:
    a = await vault.ok("GET", "sys/mounts")
    b = await vault.ok("GET", "sys/mounts")
    assert a["request_id"] != b["request_id"]
