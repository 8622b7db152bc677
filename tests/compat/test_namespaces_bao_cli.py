"""The real ``bao`` CLI (OpenBao 2.7) drives namespaces and tenant seals of a real strongroom process.

``bao namespace create|list|lookup|patch|delete|delete-sealed|seal|unseal|seal-status|lock|unlock``, and
inside a tenant ``bao operator init|unseal|seal``, ``bao status``, ``bao secrets enable``, ``bao kv`` with
``-namespace``. Every command is a subprocess with ``BAO_ADDR``/``BAO_TOKEN``.
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
class Bao:
    exe: str
    server: ServerProcess
    home: Path

    def run(self, *args: str, token: str | None = None) -> subprocess.CompletedProcess[str]:
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(self.home),
            "BAO_ADDR": self.server.addr,
            "BAO_TOKEN": self.server.token if token is None else token,
        }
        return subprocess.run([self.exe, *args], env=env, capture_output=True, text=True, timeout=60, check=False)

    def ok(self, *args: str, token: str | None = None) -> str:
        result = self.run(*args, token=token)
        assert result.returncode == 0, (
            f"bao {' '.join(args)} exited {result.returncode}\nstdout: {result.stdout}\nstderr: {result.stderr}\n"
            f"server log tail:\n{self.server.log()[-2000:]}"
        )
        return result.stdout

    def json(self, *args: str, token: str | None = None, words: int = 2) -> Any:
        """Run a command (its first ``words`` arguments) with ``-format=json`` before the positional ones."""
        rest = args[words:]
        flags = [a for a in rest if a.startswith("-")]
        positional = [a for a in rest if not a.startswith("-")]
        return json.loads(self.ok(*args[:words], *flags, "-format=json", *positional, token=token))

    def fails(self, *args: str, token: str | None = None) -> str:
        result = self.run(*args, token=token)
        assert result.returncode != 0, f"bao {' '.join(args)} succeeded: {result.stdout}"
        return result.stderr + result.stdout


@pytest.fixture(scope="module")
def bao(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bao]:
    work = tmp_path_factory.mktemp("ns-bao-cli")
    server = start_strongroom(["--dev", "--dev-root-token-id", "root", "--storage", "memory://"], work)
    server.token = "root"
    try:
        yield Bao(bao_binary(), server, work)
    finally:
        server.kill()


def test_plain_namespace_commands(bao: Bao) -> None:
    created = bao.json("namespace", "create", "-custom-metadata=team=blue", "cli-plain")
    assert created["path"] == "cli-plain/" and created["custom_metadata"] == {"team": "blue"}
    out = bao.ok("namespace", "create", "-namespace=cli-plain", "child")
    assert "cli-plain/child/" in out
    listed = bao.json("namespace", "list")
    assert "cli-plain/" in listed
    detailed = bao.json("namespace", "list", "-detailed")
    assert detailed["cli-plain/"]["custom_metadata"] == {"team": "blue"}
    assert bao.json("namespace", "list", "-namespace=cli-plain") == ["child/"]
    looked = bao.json("namespace", "lookup", "cli-plain")
    assert looked["id"] == created["id"] and looked["uuid"] == created["uuid"]
    assert "Namespace not found" in bao.fails("namespace", "lookup", "cli-none")
    patched = bao.json("namespace", "patch", "-custom-metadata=env=prod", "-remove-custom-metadata=team", "cli-plain")
    assert patched["custom_metadata"] == {"env": "prod"}
    assert "namespace not found" in bao.fails("namespace", "patch", "-custom-metadata=a=b", "cli-none")
    # Data inside the namespace, with -namespace and with the path prefix.
    bao.ok("secrets", "enable", "-namespace=cli-plain", "-path=kv", "kv-v2")
    bao.ok("kv", "put", "-namespace=cli-plain", "-mount=kv", "app", "password=s3cr3t")
    assert bao.json("kv", "get", "-namespace=cli-plain", "-mount=kv", "app")["data"]["data"] == {"password": "s3cr3t"}
    assert "unable to delete namespace containing child namespaces" in bao.fails("namespace", "delete", "cli-plain")
    assert "Success! Namespace deletion scheduled: child/" in bao.ok(
        "namespace", "delete", "-namespace=cli-plain", "child"
    )
    assert "deletion scheduled" in bao.ok("namespace", "delete", "cli-plain")
    gone = bao.run("namespace", "delete", "cli-plain")
    assert gone.returncode == 0 and "Requested namespace does not exist" in gone.stderr + gone.stdout


def test_lock_and_unlock(bao: Bao) -> None:
    bao.ok("namespace", "create", "cli-lock")
    locked = bao.json("namespace", "lock", "cli-lock")
    key = locked["unlock_key"]
    assert len(key) == 24
    assert "locked by an administrator" in bao.fails("secrets", "list", "-namespace=cli-lock")
    assert "incorrect unlock key" in bao.fails("namespace", "unlock", "-unlock-key=wrong", "cli-lock")
    out = bao.run("namespace", "unlock", f"-unlock-key={key}", "cli-lock")
    assert out.returncode == 0, out.stderr
    bao.ok("secrets", "list", "-namespace=cli-lock")
    # A root token unlocks without the key (OpenBao warns about it).
    bao.ok("namespace", "lock", "-namespace=cli-lock")
    out = bao.run("namespace", "unlock", "cli-lock")
    assert out.returncode == 0 and "sudo" in out.stderr + out.stdout
    bao.ok("namespace", "delete", "cli-lock")


def test_tenant_created_with_shares_unsealed_and_sealed_by_the_cli(bao: Bao) -> None:
    out = bao.ok("namespace", "create", "-key-shares=3", "-key-threshold=2", "cli-tenant")
    keys = [line.split(": ", 1)[1] for line in out.splitlines() if line.startswith("Unseal Key ")]
    assert len(keys) == 3
    assert "Namespace initialized with 3 key shares and a key threshold of 2" in " ".join(out.split())
    status = bao.json("namespace", "seal-status", "cli-tenant")
    assert (status["sealed"], status["t"], status["n"], status["initialized"]) == (True, 2, 3, True)
    first = bao.json("namespace", "unseal", "cli-tenant", keys[0])
    assert first["sealed"] is True and first["progress"] == 1
    assert "already been provided" in bao.fails("namespace", "unseal", "cli-tenant", keys[0])
    done = bao.json("namespace", "unseal", "cli-tenant", keys[1])
    assert done["sealed"] is False
    # The platform's root token has no authority inside the tenant.
    assert "permission denied" in bao.fails("secrets", "list", "-namespace=cli-tenant")
    assert "Success! Namespace \"cli-tenant\" is sealed." in bao.ok("namespace", "seal", "cli-tenant")
    assert bao.json("namespace", "seal-status", "cli-tenant")["sealed"] is True
    assert "namespace is sealed" in bao.fails("namespace", "delete", "cli-tenant")
    assert "Namespace deletion scheduled" in bao.ok("namespace", "delete-sealed", "cli-tenant")
    assert "Namespace not found" in bao.fails("namespace", "lookup", "cli-tenant")


def test_tenant_admin_runs_init_and_unseal_with_stock_tooling(bao: Bao) -> None:
    # An uninitialised tenant (what the platform's tenant API, sys/iam/tenants, creates too): the tenant's
    # administrator initialises it with `bao operator init -namespace`, choosing shares and threshold, with
    # the Administrator biscuit the platform issued as BAO_TOKEN (tenant ceremonies need it).
    # (`bao status` never sends a namespace: `bao namespace seal-status` shows a tenant's.)
    with bao.server.client() as client:
        r = client.post("/v1/sys/namespaces/cli-admin", json={"seal": 'seal "shamir" {}', "initialize": False})
        assert r.status_code == 200, r.text
        r = client.post("/v1/sys/iam/tokens", json={"tenant": "cli-admin", "role": "admin"})
        assert r.status_code == 200, r.text
        admin = r.json()["data"]["token"]
    status = bao.json("namespace", "seal-status", "cli-admin")
    assert (status["initialized"], status["sealed"]) == (False, True)
    assert "permission denied" in bao.fails("operator", "init", "-namespace=cli-admin", "-key-shares=1", token="")
    init = bao.json("operator", "init", "-namespace=cli-admin", "-key-shares=2", "-key-threshold=2", token=admin)
    keys, token = init["unseal_keys_b64"], init["root_token"]
    assert len(keys) == 2 and init["unseal_threshold"] == 2
    assert "permission denied" in bao.fails("operator", "unseal", "-namespace=cli-admin", keys[0], token="")
    first = bao.json("operator", "unseal", "-namespace=cli-admin", keys[0], token=admin)
    assert (first["sealed"], first["progress"]) == (True, 1)
    unsealed = bao.json("operator", "unseal", "-namespace=cli-admin", keys[1], token=admin)
    assert unsealed["sealed"] is False
    assert bao.json("namespace", "seal-status", "cli-admin")["sealed"] is False
    bao.ok("secrets", "enable", "-namespace=cli-admin", "-path=kv", "kv-v2", token=token)
    bao.ok("kv", "put", "-namespace=cli-admin", "-mount=kv", "db", "user=app", token=token)
    assert bao.json("kv", "get", "-namespace=cli-admin", "-mount=kv", "db", token=token)["data"]["data"] == {"user": "app"}
    assert "permission denied" in bao.fails("kv", "get", "-namespace=cli-admin", "-mount=kv", "db")
    bao.ok("secrets", "enable", "-namespace=cli-admin", "transit", token=token)
    bao.ok("write", "-namespace=cli-admin", "-f", "transit/keys/app", token=token)
    ct = bao.json("write", "-namespace=cli-admin", "transit/encrypt/app", "plaintext=aGVsbG8=", token=token, words=1)
    assert ct["data"]["ciphertext"].startswith("vault:v1:")
    # The tenant's administrator replaces its shares (OpenBao's rotate-keys: sys/rotate/root/*).
    started = bao.json("operator", "rotate-keys", "-namespace=cli-admin", "-init", "-key-shares=1",
                       "-key-threshold=1", token=token)  # fmt: skip
    nonce = started["nonce"]
    bao.json("operator", "rotate-keys", "-namespace=cli-admin", f"-nonce={nonce}", keys[0], token=token)
    rotated = bao.json("operator", "rotate-keys", "-namespace=cli-admin", f"-nonce={nonce}", keys[1], token=token)
    assert rotated["complete"] is True and len(rotated["keys_base64"]) == 1
    assert "permission denied" in bao.fails("operator", "seal", "-namespace=cli-admin")  # platform root: no
    bao.ok("operator", "seal", "-namespace=cli-admin", token=token)
    assert bao.json("namespace", "seal-status", "cli-admin")["sealed"] is True
    assert bao.json("operator", "unseal", "-namespace=cli-admin", rotated["keys_base64"][0], token=admin)["sealed"] is False
    bao.ok("operator", "seal", "-namespace=cli-admin", token=token)
    assert "Vault is sealed" in bao.fails("kv", "get", "-namespace=cli-admin", "-mount=kv", "db", token=token)
