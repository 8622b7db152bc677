"""``strongroom kv ...`` against a real Vault-API server (OpenBao dev mode: KV v2 at secret/)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.cli.targets import Runner, VaultTarget

pytestmark = pytest.mark.slow


@pytest.fixture
def run(dev_target: VaultTarget, cli: Callable[[VaultTarget], Runner]) -> Runner:
    return cli(dev_target)


@pytest.fixture
def name() -> str:
    """A fresh secret name per test, so module-scoped server state never couples tests."""
    return f"t-{uuid.uuid4().hex[:10]}"


def test_put_then_get_table_v2(run: Runner, name: str) -> None:
    put = run("kv", "put", f"secret/{name}", "a=1", "b=two")
    assert put.code == 0, put.err
    assert f"secret/data/{name}" in put.out
    assert "version            1" in put.out

    got = run("kv", "get", f"secret/{name}")
    assert got.code == 0, got.err
    lines = got.out.splitlines()
    assert lines[0] == "= Secret Path =" or lines[0].startswith("=")
    assert lines[1] == f"secret/data/{name}"
    assert "======= Metadata =======" in lines
    assert "== Data ==" in lines
    assert "a      1" in lines
    assert "b      two" in lines


def test_get_json_and_field(run: Runner, name: str) -> None:
    run("kv", "put", f"secret/{name}", "k=v")
    got = run("kv", "get", "-format=json", f"secret/{name}")
    assert got.code == 0
    body = json.loads(got.out)
    assert body["data"]["data"] == {"k": "v"}
    assert body["data"]["metadata"]["version"] == 1

    field = run("kv", "get", "-field=k", f"secret/{name}")
    assert (field.code, field.out) == (0, "v")

    missing = run("kv", "get", "--field", "nope", f"secret/{name}")
    assert missing.code == 1
    assert 'Field "nope" not present in secret' in missing.err


def test_mount_flag_and_versions(run: Runner, name: str) -> None:
    assert run("kv", "put", "-mount=secret", name, "x=1").code == 0
    assert run("kv", "put", "--mount", "secret", name, "x=2").code == 0
    v1 = run("kv", "get", "-mount=secret", "-version=1", "-field=x", name)
    assert v1.out == "1"
    latest = run("kv", "get", "-mount=secret", "-field=x", name)
    assert latest.out == "2"


def test_missing_secret_exits_2(run: Runner, name: str) -> None:
    got = run("kv", "get", f"secret/{name}")
    assert got.code == 2
    assert got.err.strip() == f"No value found at secret/data/{name}"


def test_cas_mismatch_prints_vault_error(run: Runner, name: str) -> None:
    assert run("kv", "put", f"secret/{name}", "a=1").code == 0
    bad = run("kv", "put", "-cas=0", f"secret/{name}", "a=2")
    assert bad.code == 2
    assert f"Error writing data to secret/data/{name}: Error making API request." in bad.err
    assert "Code: 400. Errors:" in bad.err
    assert "* check-and-set parameter did not match the current version" in bad.err
    ok = run("kv", "put", "-cas=1", f"secret/{name}", "a=2")
    assert ok.code == 0, ok.err


def test_patch_merges(run: Runner, name: str) -> None:
    run("kv", "put", f"secret/{name}", "a=1")
    patched = run("kv", "patch", f"secret/{name}", "b=2")
    assert patched.code == 0, patched.err
    body = json.loads(run("kv", "get", "-format=json", f"secret/{name}").out)
    assert body["data"]["data"] == {"a": "1", "b": "2"}
    missing = run("kv", "patch", f"secret/{name}-absent", "b=2")
    assert missing.code == 2


def test_data_from_file_and_stdin(run: Runner, name: str, tmp_path: Path) -> None:
    cert = tmp_path / "cert.pem"
    cert.write_text("-----BEGIN X-----\nabc\n")
    assert run("kv", "put", f"secret/{name}", f"pem=@{cert}").code == 0
    assert run("kv", "get", "-field=pem", f"secret/{name}").out == "-----BEGIN X-----\nabc\n"

    doc = tmp_path / "doc.json"
    doc.write_text(json.dumps({"n": 5, "nested": {"x": True}}))
    assert run("kv", "put", f"secret/{name}", f"@{doc}").code == 0
    body = json.loads(run("kv", "get", "-format=json", f"secret/{name}").out)
    assert body["data"]["data"] == {"n": 5, "nested": {"x": True}}

    assert run("kv", "put", f"secret/{name}", "-", stdin='{"from": "stdin"}').code == 0
    assert run("kv", "get", "-field=from", f"secret/{name}").out == "stdin"

    assert run("kv", "put", f"secret/{name}", "pw=-", stdin="hunter2").code == 0
    assert run("kv", "get", "-field=pw", f"secret/{name}").out == "hunter2"


def test_put_without_data_is_usage_error(run: Runner, name: str) -> None:
    res = run("kv", "put", f"secret/{name}")
    assert res.code == 1
    assert "Must supply data" in res.err


def test_delete_undelete_destroy(run: Runner, name: str) -> None:
    run("kv", "put", f"secret/{name}", "a=1")
    run("kv", "put", f"secret/{name}", "a=2")
    deleted = run("kv", "delete", f"secret/{name}")
    assert deleted.out.strip() == f"Success! Data deleted (if it existed) at: secret/data/{name}"
    gone = json.loads(run("kv", "get", "-format=json", f"secret/{name}").out)
    assert gone["data"]["data"] is None
    assert gone["data"]["metadata"]["deletion_time"] != ""

    undeleted = run("kv", "undelete", "-versions=2", f"secret/{name}")
    assert undeleted.out.strip() == f"Success! Data written to: secret/undelete/{name}"
    assert run("kv", "get", "-field=a", f"secret/{name}").out == "2"

    destroyed = run("kv", "destroy", "-versions=1", f"secret/{name}")
    assert destroyed.code == 0
    meta = json.loads(run("kv", "metadata", "get", "-format=json", f"secret/{name}").out)
    assert meta["data"]["versions"]["1"]["destroyed"] is True

    need_versions = run("kv", "destroy", f"secret/{name}")
    assert need_versions.code == 1


def test_delete_specific_versions(run: Runner, name: str) -> None:
    run("kv", "put", f"secret/{name}", "a=1")
    run("kv", "put", f"secret/{name}", "a=2")
    res = run("kv", "delete", "-versions=1", f"secret/{name}")
    assert res.out.strip() == f"Success! Data deleted (if it existed) at: secret/delete/{name}"
    meta = json.loads(run("kv", "metadata", "get", "-format=json", f"secret/{name}").out)
    assert meta["data"]["versions"]["1"]["deletion_time"] != ""
    assert meta["data"]["versions"]["2"]["deletion_time"] == ""


def test_list(run: Runner, name: str) -> None:
    run("kv", "put", f"secret/{name}/one", "a=1")
    run("kv", "put", f"secret/{name}/dir/two", "a=1")
    listed = run("kv", "list", f"secret/{name}")
    assert listed.code == 0
    assert listed.out.splitlines() == ["Keys", "----", "dir/", "one"]
    as_json = run("kv", "list", "-format=json", f"secret/{name}/")
    assert json.loads(as_json.out) == ["dir/", "one"]
    empty = run("kv", "list", f"secret/{name}-none")
    assert empty.code == 2
    assert "No value found at secret/metadata/" in empty.err


def test_metadata_put_get_delete(run: Runner, name: str) -> None:
    run("kv", "put", f"secret/{name}", "a=1")
    put = run(
        "kv", "metadata", "put", "-max-versions=3", "-cas-required=true", "-custom-metadata=owner=ops",
        f"secret/{name}",
    )  # fmt: skip
    assert put.out.strip() == f"Success! Data written to: secret/metadata/{name}"
    meta = json.loads(run("kv", "metadata", "get", "-format=json", f"secret/{name}").out)["data"]
    assert meta["max_versions"] == 3
    assert meta["cas_required"] is True
    assert meta["custom_metadata"] == {"owner": "ops"}

    table = run("kv", "metadata", "get", f"secret/{name}").out.splitlines()
    assert table[1] == f"secret/metadata/{name}"
    assert any(line.startswith("max_versions") and line.endswith("3") for line in table)
    assert any("Version 1" in line for line in table)

    # cas_required now holds: a write without -cas is refused by the server.
    assert run("kv", "put", f"secret/{name}", "a=2").code == 2

    deleted = run("kv", "metadata", "delete", f"secret/{name}")
    assert deleted.out.strip() == f"Success! Data deleted (if it existed) at: secret/metadata/{name}"
    assert run("kv", "get", f"secret/{name}").code == 2


def test_kv_v1_mount(run: Runner, name: str, dev_target: VaultTarget) -> None:
    mount = f"v1-{name}"
    enabled = httpx.post(
        f"{dev_target.addr}/v1/sys/mounts/{mount}",
        headers={"X-Vault-Token": dev_target.token},
        json={"type": "kv", "options": {"version": "1"}},
    )
    assert enabled.status_code == 204
    put = run("kv", "put", f"{mount}/a", "z=1")
    assert put.out.strip() == f"Success! Data written to: {mount}/a"
    got = run("kv", "get", f"{mount}/a")
    assert got.code == 0
    rows = [line.split() for line in got.out.splitlines()]
    assert ["z", "1"] in rows
    assert ["refresh_interval", "768h"] in rows
    assert json.loads(run("kv", "list", "-format=json", mount).out) == ["a"]
    assert run("kv", "metadata", "get", f"{mount}/a").code == 1
    assert run("kv", "patch", f"{mount}/a", "y=2").code == 2
    assert run("kv", "undelete", "-versions=1", f"{mount}/a").code == 1
    deleted = run("kv", "delete", f"{mount}/a")
    assert deleted.out.strip() == f"Success! Data deleted (if it existed) at: {mount}/a"
    assert run("kv", "get", f"{mount}/a").code == 2
