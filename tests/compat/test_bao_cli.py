"""The real ``bao`` CLI (OpenBao 2.7) driving a strongroom server process.

Each command runs as a subprocess with ``BAO_ADDR``/``BAO_TOKEN`` set; when a command fails, the
assertion message shows what the CLI sent (``-output-curl-string``) and what it printed.

Skipped when the ``bao`` binary is absent, unless ``STRONGROOM_REQUIRE_ALL=1`` (then it fails).
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.server import ServerProcess, bao_binary, start_strongroom

pytestmark = pytest.mark.slow


@dataclass
class Cli:
    """``bao`` against one server."""

    exe: str
    server: ServerProcess
    home: Path

    def run(
        self, *args: str, token: str | None = None, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(self.home),
            "BAO_ADDR": self.server.addr,
            "BAO_TOKEN": self.server.token if token is None else token,
        }
        return subprocess.run(
            [self.exe, *args], env=env, input=stdin, capture_output=True, text=True, timeout=60, check=False
        )

    def ok(self, *args: str, token: str | None = None, stdin: str | None = None) -> str:
        result = self.run(*args, token=token, stdin=stdin)
        if result.returncode != 0:
            curl = (
                self.run(args[0], *args[1:-1], "-output-curl-string", *args[-1:], token=token)
                if len(args) > 1
                else self.run(*args, "-output-curl-string", token=token)
            )
            raise AssertionError(
                f"bao {' '.join(args)} exited {result.returncode}\nstdout: {result.stdout}\nstderr: {result.stderr}\n"
                f"request: {curl.stdout or curl.stderr}\nserver log tail:\n{self.server.log()[-2000:]}"
            )
        return result.stdout

    def json(self, *args: str, token: str | None = None) -> Any:
        return json.loads(
            self.ok(*args, "-format=json", token=token)
            if args[-1].startswith("-")
            else self.ok(*args[:-1], "-format=json", args[-1], token=token)
        )


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cli]:
    """A non-dev strongroom, initialised and unsealed by the CLI itself."""
    exe = bao_binary()
    work = tmp_path_factory.mktemp("bao-cli")
    server = start_strongroom(["--storage", "memory://"], work)
    c = Cli(exe, server, work)
    try:
        assert c.run("status").returncode == 2
        init = json.loads(c.ok("operator", "init", "-key-shares=3", "-key-threshold=2", "-format=json"))
        assert len(init["unseal_keys_hex"]) == 3 and len(init["unseal_keys_b64"]) == 3
        assert init["unseal_shares"] == 3 and init["unseal_threshold"] == 2
        server.keys = init["unseal_keys_hex"]
        server.token = init["root_token"]
        status = c.run("status", "-format=json")
        assert status.returncode == 2 and json.loads(status.stdout)["sealed"] is True
        c.ok("operator", "unseal", server.keys[0])
        c.ok("operator", "unseal", init["unseal_keys_b64"][1])
        yield c
    finally:
        server.kill()


def test_status_unsealed(cli: Cli) -> None:
    result = cli.run("status", "-format=json")
    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout)
    assert (status["sealed"], status["initialized"], status["t"], status["n"]) == (False, True, 2, 3)
    assert "Sealed" in cli.ok("status")


def test_operator_unseal_reset_and_key_status(cli: Cli) -> None:
    # Unsealed: a reset is refused (exit 2 is the CLI's "error" for operator commands).
    assert cli.run("operator", "unseal", "-reset").returncode != 0
    assert json.loads(cli.ok("operator", "key-status", "-format=json"))["term"] >= 1
    cli.ok("operator", "rotate")
    assert json.loads(cli.ok("operator", "key-status", "-format=json"))["term"] >= 2


def test_secrets_enable_list_tune_disable(cli: Cli) -> None:
    cli.ok("secrets", "enable", "-path=cli-kv", "-description=from the cli", "kv")
    cli.ok("secrets", "enable", "-path=cli-kv2", "-version=2", "kv")
    mounts = json.loads(cli.ok("secrets", "list", "-format=json"))
    assert mounts["cli-kv/"]["description"] == "from the cli"
    assert mounts["cli-kv2/"]["options"] == {"version": "2"}
    cli.ok("secrets", "tune", "-default-lease-ttl=1h", "cli-kv")
    assert "cli-kv/" in cli.ok("secrets", "list")
    failed = cli.run("secrets", "enable", "-path=cli-kv", "kv")
    assert failed.returncode != 0 and "path is already in use" in failed.stderr
    cli.ok("secrets", "disable", "cli-kv")
    assert "cli-kv/" not in json.loads(cli.ok("secrets", "list", "-format=json"))


def test_policy_write_read_list_delete(cli: Cli) -> None:
    policy = 'path "cli-kv2/data/app/*" {\n  capabilities = ["read", "list"]\n}\n'
    path = cli.home / "app.hcl"
    path.write_text(policy)
    cli.ok("policy", "write", "cli-app", str(path))
    cli.ok("policy", "write", "cli-stdin", "-", stdin=policy)
    assert cli.ok("policy", "read", "cli-app").strip() == policy.strip()
    names = cli.ok("policy", "list").split()
    assert {"cli-app", "cli-stdin", "default", "root"} <= set(names)
    cli.ok("policy", "delete", "cli-stdin")
    assert "cli-stdin" not in cli.ok("policy", "list").split()
    assert cli.run("policy", "read", "cli-stdin").returncode != 0


def test_kv_put_get_list_delete(cli: Cli) -> None:
    if "cli-kv2/" not in json.loads(cli.ok("secrets", "list", "-format=json")):
        cli.ok("secrets", "enable", "-path=cli-kv2", "-version=2", "kv")
    cli.ok("kv", "put", "-mount=cli-kv2", "app/db", "user=app", "password=s3cr3t")
    cli.ok("kv", "put", "-mount=cli-kv2", "app/db", "user=app", "password=rotated")
    got = json.loads(cli.ok("kv", "get", "-format=json", "-mount=cli-kv2", "app/db"))
    assert got["data"]["data"] == {"user": "app", "password": "rotated"}
    assert got["data"]["metadata"]["version"] == 2
    assert cli.ok("kv", "get", "-mount=cli-kv2", "-field=password", "app/db").strip() == "rotated"
    assert json.loads(cli.ok("kv", "list", "-format=json", "-mount=cli-kv2", "app")) == ["db"]
    cli.ok("kv", "delete", "-mount=cli-kv2", "app/db")
    # As with OpenBao: a soft-deleted version prints only its metadata (deletion_time set), exit 0.
    deleted = cli.ok("kv", "get", "-mount=cli-kv2", "app/db")
    assert "deletion_time" in deleted and "rotated" not in deleted
    assert cli.run("kv", "get", "-mount=cli-kv2", "app/missing").returncode == 2
    # KV v1 through the same commands (the CLI learns the version from sys/internal/ui/mounts)
    cli.ok("secrets", "enable", "-path=cli-kv1", "kv")
    cli.ok("kv", "put", "cli-kv1/a", "x=1")
    assert json.loads(cli.ok("kv", "get", "-format=json", "cli-kv1/a"))["data"] == {"x": "1"}


def test_token_create_lookup_revoke(cli: Cli) -> None:
    created = json.loads(cli.ok("token", "create", "-format=json", "-policy=default", "-ttl=1h"))
    token = created["auth"]["client_token"]
    assert created["auth"]["policies"] == ["default"]
    looked = json.loads(cli.ok("token", "lookup", "-format=json", token))
    assert looked["data"]["policies"] == ["default"] and looked["data"]["ttl"] > 0
    own = json.loads(cli.ok("token", "lookup", "-format=json", token=token))
    assert own["data"]["accessor"] == looked["data"]["accessor"]
    assert cli.run("secrets", "list", token=token).returncode != 0  # default policy cannot list mounts
    cli.ok("token", "revoke", token)
    assert cli.run("token", "lookup", token=token).returncode != 0


def test_zz_seal_and_unseal_again(cli: Cli) -> None:
    cli.ok("operator", "seal")
    assert cli.run("status").returncode == 2
    assert cli.run("secrets", "list").returncode != 0
    for key in cli.server.keys[1:]:
        cli.ok("operator", "unseal", key)
    assert cli.run("status").returncode == 0
