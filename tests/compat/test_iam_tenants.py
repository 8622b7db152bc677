"""The managed-service flow with real processes: two strongroom servers over one SQLite file, the real
``bao`` CLI, hvac and the ``strongroom`` CLI.

The platform operator creates a tenant (``strongroom iam tenants create``); the tenant's administrator
initialises and unseals it with ``bao operator init|unseal -namespace`` and the Administrator biscuit as
``BAO_TOKEN``; the User biscuit encrypts with transit and reads KV through hvac with ``namespace=``; a
token attenuated offline (``strongroom token attenuate``) to one path works there and nowhere else;
revoking its parent through one server makes both servers refuse the child at their next request. Then
every bad input about tokens and tenants: a clear 4xx each, and nothing changed.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import hvac
import pytest
from hvac.exceptions import Forbidden

from strongroom.auth.iam import IamKey, IamPublicKey, attenuate, issue_token
from tests.support.server import VENV_BIN, ServerProcess, bao_binary, start_strongroom

pytestmark = pytest.mark.slow
DENIED = {"errors": ["permission denied"]}


@dataclass
class Platform:
    a: ServerProcess
    b: ServerProcess
    home: Path

    def run(
        self, argv: list[str], *, token: str, server: ServerProcess | None = None
    ) -> subprocess.CompletedProcess[str]:
        addr = (server or self.a).addr
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(self.home),
            "BAO_ADDR": addr,
            "VAULT_ADDR": addr,
            "BAO_TOKEN": token,
            "VAULT_TOKEN": token,
        }
        return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=False)

    def ok(self, argv: list[str], *, token: str, server: ServerProcess | None = None) -> str:
        result = self.run(argv, token=token, server=server)
        assert result.returncode == 0, (
            argv[:4],
            result.stdout,
            result.stderr,
            (server or self.a).log()[-1500:],
        )
        return result.stdout

    def fails(self, argv: list[str], *, token: str, server: ServerProcess | None = None) -> str:
        result = self.run(argv, token=token, server=server)
        assert result.returncode != 0, (argv[:4], result.stdout)
        return result.stderr + result.stdout

    def bao(self, *args: str, token: str, server: ServerProcess | None = None) -> str:
        return self.ok([bao_binary(), *args], token=token, server=server)

    def strongroom(self, *args: str, token: str, server: ServerProcess | None = None) -> str:
        return self.ok([str(VENV_BIN / "strongroom"), *args], token=token, server=server)

    def call(
        self, server: ServerProcess, method: str, path: str, *, token: str = "", ns: str = "", **kw: Any
    ) -> httpx.Response:
        headers = {"X-Vault-Token": token} if token else {}
        if ns:
            headers["X-Vault-Namespace"] = ns
        with httpx.Client(base_url=server.addr, timeout=30) as client:
            return client.request(method, "/v1/" + path, headers=headers, **kw)


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    work = tmp_path_factory.mktemp("iam-tenants")
    store = f"sqlite:///{work / 'shared.db'}"
    a = start_strongroom(["--storage", store], work)
    b: ServerProcess | None = None
    try:
        with httpx.Client(base_url=a.addr, timeout=30) as client:
            init = client.put("/v1/sys/init", json={"secret_shares": 1, "secret_threshold": 1}).json()
        a.token, a.keys = init["root_token"], init["keys"]
        b = start_strongroom(["--storage", store], work)
        b.token, b.keys = a.token, a.keys
        for server in (a, b):
            with httpx.Client(base_url=server.addr, timeout=30) as client:
                assert client.put("/v1/sys/unseal", json={"key": a.keys[0]}).json()["sealed"] is False
        yield Platform(a, b, work)
    finally:
        a.kill()
        if b is not None:
            b.kill()


def _denied(response: httpx.Response) -> None:
    assert (response.status_code, response.json()) == (403, DENIED), response.text


def test_the_managed_flow(platform: Platform) -> None:
    a, b = platform.a, platform.b
    # 1. The platform operator creates the tenant (the strongroom CLI, platform root token).
    created = json.loads(
        platform.strongroom(
            "iam", "tenants", "create", "acme", "--ttl", "24h", "--format", "json", token=a.token
        )
    )
    admin, user = created["admin_token"], created["user_token"]
    assert created["path"] == "acme/" and admin.startswith("sb.") and user.startswith("sb.")
    # 2. The tenant's administrator initialises it with the stock bao CLI and the Administrator token.
    assert "permission denied" in platform.fails(
        [bao_binary(), "operator", "init", "-namespace=acme", "-key-shares=1"], token=""
    )
    init = json.loads(
        platform.bao(
            "operator",
            "init",
            "-namespace=acme",
            "-key-shares=3",
            "-key-threshold=2",
            "-format=json",
            token=admin,
        )
    )
    keys, root = init["unseal_keys_b64"], init["root_token"]
    # 3. Unsealed with bao, the shares through both servers (progress is in storage).
    first = json.loads(
        platform.bao("operator", "unseal", "-namespace=acme", "-format=json", keys[0], token=admin)
    )
    assert (first["sealed"], first["progress"]) == (True, 1)
    second = json.loads(
        platform.bao("operator", "unseal", "-namespace=acme", "-format=json", keys[1], token=admin, server=b)
    )
    assert second["sealed"] is False
    # The tenant's own root token mounts engines; the platform's root token has no authority inside.
    platform.bao("secrets", "enable", "-namespace=acme", "-path=secret", "kv-v2", token=root)
    platform.bao("secrets", "enable", "-namespace=acme", "transit", token=root)
    platform.bao("write", "-namespace=acme", "-f", "transit/keys/orders", token=admin)
    platform.bao("kv", "put", "-namespace=acme", "-mount=secret", "app/db", "password=p1", token=admin)
    platform.bao("kv", "put", "-namespace=acme", "-mount=secret", "other", "v=2", token=root)
    assert "permission denied" in platform.fails(
        [bao_binary(), "kv", "get", "-namespace=acme", "-mount=secret", "app/db"], token=a.token
    )
    # 4. The User token encrypts with transit and reads KV through hvac (namespace=).
    app = hvac.Client(url=a.addr, token=user, namespace="acme")
    ct = app.secrets.transit.encrypt_data(name="orders", plaintext="aGVsbG8=")["data"]["ciphertext"]
    assert ct.startswith("vault:v1:")
    other_node = hvac.Client(url=b.addr, token=user, namespace="acme")
    assert (
        other_node.secrets.transit.decrypt_data(name="orders", ciphertext=ct)["data"]["plaintext"]
        == "aGVsbG8="
    )
    read = app.secrets.kv.v2.read_secret_version(
        path="app/db", mount_point="secret", raise_on_deleted_version=True
    )
    assert read["data"]["data"] == {"password": "p1"}
    assert app.lookup_token()["data"]["policies"] == ["tenant-user"]
    with pytest.raises(Forbidden):
        app.sys.enable_secrets_engine("kv", path="mine")
    with pytest.raises(Forbidden):
        app.secrets.transit.create_key(name="mine")
    # 5. Attenuated offline (the strongroom CLI fetches the public key) to one path, read-only.
    child = platform.strongroom(
        "token", "attenuate", "--token", user, "--path", "secret/data/app/", "--path", "secret/metadata/app/",
        "--operation", "read", "--operation", "list", "--ttl", "1h", token="",
    ).strip()  # fmt: skip
    for server in (a, b):
        got = json.loads(
            platform.bao(
                "kv",
                "get",
                "-namespace=acme",
                "-mount=secret",
                "-format=json",
                "app/db",
                token=child,
                server=server,
            )
        )
        assert got["data"]["data"] == {"password": "p1"}
    for argv in (
        ["kv", "get", "-namespace=acme", "-mount=secret", "other"],
        ["kv", "put", "-namespace=acme", "-mount=secret", "app/db", "password=x"],
        ["write", "-namespace=acme", "transit/encrypt/orders", "plaintext=aGVsbG8="],
    ):
        assert "permission denied" in platform.fails([bao_binary(), *argv], token=child)
    # 6. Revoking the parent through server A: both servers refuse the child (and the parent) at once.
    revoked = json.loads(
        platform.strongroom("iam", "revoke", "--token", user, "--format", "json", token=a.token)
    )
    assert revoked["tenant"] == "acme"
    for server in (a, b):
        for token in (child, user):
            _denied(platform.call(server, "GET", "secret/data/app/db", token=token, ns="acme"))
    # The administrator and the tenant's own tokens are unaffected.
    assert platform.call(b, "GET", "secret/data/app/db", token=admin).status_code == 200
    assert platform.call(b, "GET", "secret/data/app/db", token=root, ns="acme").status_code == 200


def _state(platform: Platform) -> Any:
    """What the bad inputs must not change: the tenants, their seal states, the revocation count."""
    token = platform.a.token
    listed = platform.call(platform.a, "LIST", "sys/iam/tenants", token=token)
    tenants = listed.json()["data"]["keys"] if listed.status_code == 200 else []
    states = {
        t: platform.call(platform.a, "GET", f"sys/iam/tenants/{t}", token=token).json()["data"]
        for t in tenants
    }
    return {t: (s["initialized"], s["sealed"], s["uuid"]) for t, s in states.items()}


def test_bad_tokens_and_tenants_are_clear_4xx_and_change_nothing(platform: Platform) -> None:
    a, b = platform.a, platform.b
    made = platform.call(a, "POST", "sys/iam/tenants/bank", token=a.token).json()["data"]
    admin, user = made["admin_token"], made["user_token"]
    init = platform.call(
        a, "PUT", "sys/init", token=admin, ns="bank", json={"secret_shares": 1, "secret_threshold": 1}
    ).json()
    assert (
        platform.call(b, "PUT", "sys/unseal", token=admin, ns="bank", json={"key": init["keys"][0]}).json()[
            "sealed"
        ]
        is False
    )
    assert (
        platform.call(
            a, "POST", "sys/mounts/secret", token=admin, json={"type": "kv", "options": {"version": "2"}}
        ).status_code
        == 204
    )
    assert platform.call(a, "POST", "secret/data/x", token=user, json={"data": {"v": "1"}}).status_code == 200
    platform.call(a, "POST", "sys/iam/tenants/fresh", token=a.token)  # uninitialised
    other = platform.call(a, "POST", "sys/iam/tenants/other", token=a.token).json()["data"]["admin_token"]
    before = _state(platform)
    now = time.time()
    doc = platform.call(b, "GET", "sys/iam/public-key").json()["data"]
    key = IamPublicKey.parse(doc["public_key"], doc["key_id"])
    expired = attenuate(user, key, ttl=60, now=now - 3600)  # a genuine token whose own check has passed
    other_key = issue_token(IamKey.generate(1), tenant="bank", role="admin", ttl=3600, now=now)
    bad = {
        "signed by another key": other_key,
        "wrong tenant": other,
        "expired": expired,
        "not a biscuit": "sb.AAAA",
    }  # fmt: skip
    for token in bad.values():
        for server in (a, b):
            for method, path, body in (
                ("GET", "secret/data/x", None),
                ("PUT", "sys/seal", None),
                ("PUT", "sys/unseal", {"key": init["keys"][0]}),
                ("PUT", "sys/init", {"secret_shares": 1, "secret_threshold": 1}),
            ):
                _denied(platform.call(server, method, path, token=token, ns="bank", json=body))
    # Revoked: issued, used, revoked by id, refused on both servers.
    issued = platform.call(
        a, "POST", "sys/iam/tokens", token=a.token, json={"tenant": "bank", "role": "user"}
    ).json()["data"]
    assert platform.call(b, "GET", "secret/data/x", token=issued["token"]).status_code == 200
    assert (
        platform.call(
            a, "POST", "sys/iam/revoke", token=a.token, json={"revocation_id": issued["revocation_id"]}
        ).status_code
        == 200
    )
    for server in (a, b):
        _denied(platform.call(server, "GET", "secret/data/x", token=issued["token"]))
    # An issued token whose own expiry passes: refused once the second has passed (polled, bounded).
    short = platform.call(
        a, "POST", "sys/iam/tokens", token=a.token, json={"tenant": "bank", "role": "user", "ttl": "1s"}
    ).json()["data"]
    deadline = time.monotonic() + 30
    while platform.call(b, "GET", "secret/data/x", token=short["token"]).status_code == 200:
        assert time.monotonic() < deadline, "a 1-second token was still accepted after 30 s"
        time.sleep(0.2)
    _denied(platform.call(a, "GET", "secret/data/x", token=short["token"]))
    # Unknown tenants: a 400 for the platform, the same 403/503 as for any tenant otherwise.
    errors = platform.call(
        a, "POST", "sys/iam/tokens", token=a.token, json={"tenant": "ghost", "role": "admin"}
    ).json()
    assert errors == {"errors": ['tenant "ghost" does not exist']}
    for path in ("ghost", "sys"):
        assert platform.call(a, "GET", f"sys/iam/tenants/{path}", token=a.token).status_code in (400, 404)
    # Deleting an unsealed tenant: refused, still there and unsealed.
    r = platform.call(a, "DELETE", "sys/iam/tenants/bank", token=a.token)
    assert (r.status_code, r.json()) == (400, {"errors": ["namespace is not sealed"]})
    r = platform.call(b, "DELETE", "sys/namespaces/bank", token=a.token)
    assert r.status_code == 400
    # Names with empty segments, dot segments, control characters, reserved words or over 64 bytes.
    for name in ("a%2F%2Fb", "%2E%2E", "a%01b", "sys", "auth", "x" * 65):
        assert platform.call(a, "POST", f"sys/iam/tenants/{name}", token=a.token).status_code == 400, name
    # The User token cannot create tenants or tokens, nor can a tenant's Administrator.
    for token in (user, admin):
        r = platform.call(a, "POST", "sys/iam/tenants/evil", token=token)
        assert r.status_code in (400, 403)
    after = _state(platform)
    assert after == before
    assert platform.call(a, "GET", "secret/data/x", token=admin).json()["data"]["data"] == {"v": "1"}
