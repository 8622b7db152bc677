"""``strongroom token ...`` and ``strongroom policy ...`` against a real Vault-API server."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.cli.targets import Runner, VaultTarget

pytestmark = pytest.mark.slow

POLICY = (
    'path "secret/data/app/*" {\n  capabilities = ["read", "list"]\n}\n\n'
    'path "auth/token/create" {\n  capabilities = ["update"]\n}\n'
)


@pytest.fixture
def run(dev_target: VaultTarget, cli: Callable[[VaultTarget], Runner]) -> Runner:
    return cli(dev_target)


@pytest.fixture
def policy_name(run: Runner, tmp_path: Path) -> str:
    name = f"p-{uuid.uuid4().hex[:8]}"
    path = tmp_path / "p.hcl"
    path.write_text(POLICY)
    res = run("policy", "write", name, str(path))
    assert res.out.strip() == f"Success! Uploaded policy: {name}", res.err
    return name


def test_policy_write_list_read_delete(run: Runner, policy_name: str) -> None:
    assert policy_name in run("policy", "list").out.splitlines()
    assert policy_name in json.loads(run("policy", "list", "-format=json").out)
    read = run("policy", "read", policy_name)
    assert read.out == POLICY
    assert json.loads(run("policy", "read", "-format=json", policy_name).out) == {"policy": POLICY}
    deleted = run("policy", "delete", policy_name)
    assert deleted.out.strip() == f"Success! Deleted policy: {policy_name}"
    missing = run("policy", "read", policy_name)
    assert missing.code == 2
    assert missing.err.strip() == f"No policy named: {policy_name}"


def test_policy_write_from_stdin_and_bad_policy(run: Runner) -> None:
    name = f"p-{uuid.uuid4().hex[:8]}"
    assert run("policy", "write", name, "-", stdin=POLICY).code == 0
    assert run("policy", "read", name).out == POLICY
    bad = run("policy", "write", name, "-", stdin="path {{{ nope")
    assert bad.code == 2
    assert "Error uploading policy" in bad.err
    assert run("policy", "write", name, "/nonexistent/file.hcl").code == 1


def test_token_create_table_and_lookup(run: Runner, policy_name: str) -> None:
    created = run(
        "token", "create", f"-policy={policy_name}", "-ttl=1h", "-metadata=team=ops", "-display-name=app",
    )  # fmt: skip
    assert created.code == 0, created.err
    rows = dict(line.split(None, 1) for line in created.out.splitlines()[2:])
    assert rows["token_duration"] == "1h"
    assert rows["token_renewable"] == "true"
    assert rows["token_policies"] == f'["default" "{policy_name}"]'
    assert rows["token_meta_team"] == "ops"
    token = rows["token"]

    looked = run("token", "lookup", token)
    lrows = dict(line.split(None, 1) for line in looked.out.splitlines()[2:])
    assert lrows["creation_ttl"] == "1h"
    assert lrows["display_name"] == "token-app"
    assert lrows["policies"] == f"[default {policy_name}]"

    self_lookup = run("token", "lookup", "-format=json", token=token)
    assert json.loads(self_lookup.out)["data"]["id"] == token

    accessor = rows["token_accessor"]
    by_accessor = json.loads(run("token", "lookup", "-accessor", "-format=json", accessor).out)
    assert by_accessor["data"]["accessor"] == accessor


def test_token_create_field_orphan_and_flags(run: Runner) -> None:
    token = run(
        "token", "create", "-field=token", "-orphan", "-no-default-policy", "-policy=x", "-ttl=10m"
    ).out
    assert token
    data = json.loads(run("token", "lookup", "-format=json", token).out)["data"]
    assert data["orphan"] is True
    assert data["policies"] == ["x"]
    limited = run("token", "create", "-format=json", "-use-limit=3", "-renewable=false", "-period=30m")
    auth = json.loads(limited.out)["auth"]
    assert auth["renewable"] is False
    assert auth["lease_duration"] == 1800
    assert auth["num_uses"] == 3


def test_token_capabilities_renew_revoke(run: Runner, policy_name: str) -> None:
    token = run("token", "create", f"-policy={policy_name}", "-ttl=1h", "-field=token").out
    caps = run("token", "capabilities", token, "secret/data/app/x")
    assert caps.out.strip() == "list, read"
    assert json.loads(run("token", "capabilities", "-format=json", token, "secret/data/other").out) == [
        "deny"
    ]
    assert run("token", "capabilities", "secret/data/app/x", token=token).out.strip() == "list, read"
    assert run("token", "capabilities", "secret/x").out.strip() == "root"

    renewed = run("token", "renew", "-increment=30m", token)
    assert renewed.code == 0, renewed.err
    assert any(line.split() == ["token_duration", "30m"] for line in renewed.out.splitlines())

    child = run("token", "create", "-field=token", "-ttl=1h", token=token).out
    assert child
    orphaned = run("token", "revoke", "-mode=orphan", token)
    assert orphaned.out.strip() == "Success! Revoked token (if it existed)"
    assert run("token", "lookup", token).code == 2
    assert run("token", "lookup", child).code == 0  # orphan mode kept the child

    assert run("token", "revoke", "-self", token=child).code == 0
    gone = run("token", "lookup", child)
    assert gone.code == 2
    assert "Error looking up token: Error making API request." in gone.err
    assert "Code: 403. Errors:" in gone.err


def test_token_revoke_by_accessor_and_usage(run: Runner) -> None:
    created = json.loads(run("token", "create", "-format=json", "-ttl=1h").out)["auth"]
    assert run("token", "revoke", "-accessor", created["accessor"]).code == 0
    assert run("token", "lookup", created["client_token"]).code == 2
    assert run("token", "revoke").code == 1
    assert run("token", "revoke", "-mode=path", "x").code == 1
    assert run("token", "capabilities").code == 1


def test_policy_fmt_rewrites_file(cli: Callable[[VaultTarget], Runner], tmp_path: Path) -> None:
    run = cli(VaultTarget("http://127.0.0.1:1", ""))  # fmt is local: no server, so not parametrized
    path = tmp_path / "ugly.hcl"
    path.write_text('path "a/*" { capabilities=["read","list"] }\npath "b" {\ncapabilities = ["deny"]}\n')
    res = run("policy", "fmt", str(path))
    assert res.out.strip() == f"Success! Formatted policy: {path}"
    assert path.read_text() == (
        'path "a/*" {\n  capabilities = ["read", "list"]\n}\n\npath "b" {\n  capabilities = ["deny"]\n}\n'
    )
    commented = tmp_path / "commented.hcl"
    original = '# keep me\npath "a" { capabilities = ["read"] }\n'
    commented.write_text(original)
    assert run("policy", "fmt", str(commented)).code == 1
    assert commented.read_text() == original
