"""The whole life of a vault, driven by hvac against a real strongroom server process on SQLite.

init with PGP-encrypted shares (opened by real gpg) -> unseal -> KV work -> policies and child tokens ->
rekey -> rotate -> seal -> restart the process -> unseal with the new shares -> data still there.
"""

from __future__ import annotations

import base64
from pathlib import Path

import hvac
import hvac.exceptions
import pytest

from tests.support.gpg import gpg_home
from tests.support.server import ServerProcess, start_strongroom

APP_POLICY = """
path "kv/data/app/*" { capabilities = ["read", "list"] }
path "kv/metadata/app/*" { capabilities = ["list"] }
"""


def _start(tmp_path: Path) -> ServerProcess:
    return start_strongroom(["--storage", f"sqlite:///{tmp_path / 'store.db'}"], tmp_path)


def _unseal(client: hvac.Client, keys: list[str]) -> None:
    status = client.sys.submit_unseal_keys(keys)
    assert status["sealed"] is False, status


def test_full_lifecycle_with_hvac(tmp_path: Path) -> None:
    server = _start(tmp_path)
    try:
        client = hvac.Client(url=server.addr)
        assert client.sys.is_initialized() is False
        assert client.sys.is_sealed() is True

        with gpg_home() as gpg:
            custodians = [gpg.generate(f"custodian{i}@strongroom.test") for i in range(3)]
            init = client.sys.initialize(
                secret_shares=3, secret_threshold=2, pgp_keys=[k.vault_entry for k in custodians]
            )
            # Each share is the hex text of the share, encrypted to one custodian; gpg opens it.
            shares = [gpg.decrypt(base64.b64decode(m)).decode() for m in init["keys_base64"]]
            assert init["keys"] == [base64.b64decode(m).hex() for m in init["keys_base64"]]
        assert all(len(bytes.fromhex(s)) == 33 for s in shares)
        root = init["root_token"]

        assert client.sys.is_initialized() is True
        _unseal(client, shares[:2])
        client.token = root

        client.sys.enable_secrets_engine("kv", path="kv", options={"version": "2"})
        client.secrets.kv.v2.create_or_update_secret("app/db", {"user": "app", "password": "s3cr3t"}, mount_point="kv")
        client.secrets.kv.v2.create_or_update_secret("app/db", {"user": "app", "password": "rotated"}, mount_point="kv")
        read = client.secrets.kv.v2.read_secret_version("app/db", mount_point="kv", raise_on_deleted_version=True)
        assert read["data"]["data"]["password"] == "rotated"
        assert read["data"]["metadata"]["version"] == 2

        client.sys.create_or_update_policy("app-reader", APP_POLICY)
        child = client.auth.token.create(policies=["app-reader"], ttl="1h")["auth"]["client_token"]
        reader = hvac.Client(url=server.addr, token=child)
        assert reader.secrets.kv.v2.read_secret_version(
            "app/db", mount_point="kv", raise_on_deleted_version=True
        )["data"]["data"]["user"] == "app"
        with pytest.raises(hvac.exceptions.Forbidden):
            reader.secrets.kv.v2.create_or_update_secret("app/db", {"x": "y"}, mount_point="kv")
        with pytest.raises(hvac.exceptions.Forbidden):
            reader.sys.enable_secrets_engine("kv", path="other")
        assert reader.secrets.kv.v2.list_secrets("app", mount_point="kv")["data"]["keys"] == ["db"]

        # Revoking the parent of a child token revokes the child too.
        client.sys.create_or_update_policy("token-creator", 'path "auth/token/create" { capabilities = ["update"] }')
        parent = client.auth.token.create(policies=["app-reader", "token-creator"])["auth"]["client_token"]
        grandchild = hvac.Client(url=server.addr, token=parent).auth.token.create(policies=["app-reader"])
        client.auth.token.revoke(parent)
        with pytest.raises(hvac.exceptions.Forbidden):
            hvac.Client(url=server.addr, token=grandchild["auth"]["client_token"]).auth.token.lookup_self()

        # Rekey to 5 shares / threshold 3, then rotate the barrier key.
        rekey = client.sys.start_rekey(secret_shares=5, secret_threshold=3)
        result = client.sys.rekey_multi(shares[:2], nonce=rekey["nonce"])
        assert result["complete"] is True
        new_shares = result["keys"]
        assert len(new_shares) == 5
        before = client.sys.get_encryption_key_status()["data"]["term"]
        client.sys.rotate_encryption_key()
        assert client.sys.get_encryption_key_status()["data"]["term"] == before + 1
        client.secrets.kv.v2.create_or_update_secret("app/after-rotate", {"k": "v"}, mount_point="kv")

        client.sys.seal()
        assert client.sys.is_sealed() is True
    finally:
        server.kill()

    # A new process on the same store: sealed, old shares refused, new shares open it, data intact.
    server = _start(tmp_path)
    try:
        client = hvac.Client(url=server.addr)
        assert client.sys.is_initialized() is True
        assert client.sys.is_sealed() is True
        with pytest.raises(hvac.exceptions.InvalidRequest):
            client.sys.submit_unseal_keys(shares)  # the three old shares do not combine to the new key
        client.sys.submit_unseal_key(reset=True)
        _unseal(client, new_shares[2:5])
        client.token = root
        read = client.secrets.kv.v2.read_secret_version("app/db", mount_point="kv", raise_on_deleted_version=True)
        assert read["data"]["data"] == {"user": "app", "password": "rotated"}
        after = client.secrets.kv.v2.read_secret_version(
            "app/after-rotate", mount_point="kv", raise_on_deleted_version=True
        )
        assert after["data"]["data"] == {"k": "v"}
        assert reader_token_still_valid(server, child)
    finally:
        server.kill()


def reader_token_still_valid(server: ServerProcess, token: str) -> bool:
    """A child token created before the restart still authenticates after it."""
    info = hvac.Client(url=server.addr, token=token).auth.token.lookup_self()
    return "app-reader" in info["data"]["policies"]
