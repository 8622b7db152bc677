"""hvac drives namespaces and a tenant's own ceremony on a real strongroom process.

The platform operator manages namespaces with ``client.sys.create_namespace/list_namespaces/
delete_namespace``; the tenant administrator uses a client with ``namespace=`` for ``sys.initialize``,
``sys.submit_unseal_keys``, ``sys.read_seal_status`` and data calls, and the platform client is refused.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import hvac
import pytest
from hvac.exceptions import Forbidden, VaultDown

from tests.support.server import ServerProcess, start_strongroom

pytestmark = pytest.mark.slow


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    process = start_strongroom(["--dev", "--dev-root-token-id", "root", "--storage", "memory://"], tmp_path)
    process.token = "root"
    try:
        yield process
    finally:
        process.kill()


def test_hvac_namespace_management_and_tenant_ceremony(server: ServerProcess) -> None:
    platform = hvac.Client(url=server.addr, token="root")
    platform.sys.create_namespace(path="team")
    created = platform.sys.create_namespace(path="team2")
    assert created["data"]["path"] == "team2/"
    listed = platform.sys.list_namespaces()
    assert listed["data"]["keys"] == ["team/", "team2/"]
    platform.sys.delete_namespace(path="team2")
    assert platform.sys.list_namespaces()["data"]["keys"] == ["team/"]
    # An uninitialised tenant, initialised by its own administrator.
    r = platform.adapter.post("/v1/sys/namespaces/acme", json={"seal": 'seal "shamir" {}', "initialize": False})
    assert r["data"]["path"] == "acme/"
    # Its ceremonies need its Administrator biscuit (issued by the platform), sent as the Vault token.
    biscuit = platform.write("sys/iam/tokens", tenant="acme", role="admin")["data"]["token"]
    admin = hvac.Client(url=server.addr, namespace="acme", token=biscuit)
    assert admin.sys.is_initialized() is False
    init = admin.sys.initialize(secret_shares=3, secret_threshold=2)
    assert admin.sys.is_initialized() is True
    assert admin.sys.read_seal_status()["sealed"] is True
    status = admin.sys.submit_unseal_keys(init["keys"][:2])
    assert status["sealed"] is False
    root = hvac.Client(url=server.addr, namespace="acme", token=init["root_token"])
    root.sys.enable_secrets_engine("kv", path="kv", options={"version": "2"})
    admin.secrets.kv.v2.create_or_update_secret(path="app", secret={"k": "v"}, mount_point="kv")
    read = admin.secrets.kv.v2.read_secret_version(path="app", mount_point="kv", raise_on_deleted_version=True)
    assert read["data"]["data"] == {"k": "v"}
    outsider = hvac.Client(url=server.addr, token="root", namespace="acme")
    with pytest.raises(Forbidden):
        outsider.secrets.kv.v2.read_secret_version(path="app", mount_point="kv", raise_on_deleted_version=True)
    admin.sys.seal()
    with pytest.raises(VaultDown):
        admin.secrets.kv.v2.read_secret_version(path="app", mount_point="kv", raise_on_deleted_version=True)
    # The platform still sees the tenant as a sealed namespace.
    assert platform.read("sys/namespaces/acme/seal-status")["data"]["sealed"] is True
