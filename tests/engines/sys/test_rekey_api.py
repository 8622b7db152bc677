"""``sys/rekey/*`` and ``sys/rotate/root/*`` over HTTP: bodies, errors, authentication, PGP with real gpg."""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from strongroom.core.node import NodeSettings
from tests.support.gpg import Gpg, GpgKey
from tests.support.require import require_binary
from tests.support.vault import InProcessVault, start_vault

SUDO_POLICY = 'path "sys/rekey/*" { capabilities = ["create", "read", "update", "delete", "sudo"] }'
NO_SUDO_POLICY = 'path "sys/*" { capabilities = ["create", "read", "update", "delete", "list"] }'


@pytest.fixture(scope="module")
def custodians() -> Iterator[tuple[Gpg, list[GpgKey]]]:
    """Three custodians with cv25519 encryption subkeys in a throw-away GNUPGHOME."""
    executable = require_binary("gpg", "/usr/bin/gpg")
    home = tempfile.mkdtemp(prefix="sr-rk-")  # short: gpg-agent's socket path is limited to ~108 bytes
    os.chmod(home, 0o700)
    gpg = Gpg(executable, home)
    try:
        yield gpg, [gpg.generate(f"Custodian {i} <c{i}@example.invalid>", "ed25519", "cv25519") for i in range(3)]
    finally:
        gpgconf = shutil.which("gpgconf")
        if gpgconf:
            subprocess.run([gpgconf, "--homedir", home, "--kill", "all"], check=False, capture_output=True)
        shutil.rmtree(home, ignore_errors=True)


async def _error(vault: InProcessVault, method: str, path: str, status: int, token: str | None = None,
                 **kw: Any) -> str:
    r = await vault.call(method, path, token, **kw)
    assert r.status_code == status, (method, path, r.status_code, r.text)
    errors: list[str] = r.json()["errors"]
    return errors[0]


async def _unseal(vault: InProcessVault, keys: list[str]) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for key in keys:
        r = await vault.call("PUT", "sys/unseal", "", json={"key": key})
        assert r.status_code in (200, 400), r.text
        if r.status_code == 400:
            return {"error": r.json()["errors"][0]}
        body = r.json()
    return body


async def _rekey(vault: InProcessVault, params: dict[str, Any], old: list[str], base: str = "sys/rekey",
                 token: str | None = None) -> dict[str, Any]:
    status = await vault.ok("PUT", f"{base}/init", token, json=params)
    nonce = status["nonce"] if "nonce" in status else status["data"]["nonce"]
    body: dict[str, Any] = {}
    for key in old:
        body = await vault.ok("PUT", f"{base}/update", token, json={"key": key, "nonce": nonce})
    return body


async def test_status_bodies_are_vaults(vault: InProcessVault) -> None:
    assert await vault.ok("GET", "sys/rekey/init") == {
        "nonce": "", "started": False, "t": 0, "n": 0, "progress": 0, "required": 2,
        "pgp_fingerprints": None, "backup": False, "verification_required": False,
    }
    started = await vault.ok("PUT", "sys/rekey/init", json={"secret_shares": 5, "secret_threshold": 3,
                                                            "pgp_keys": None, "backup": None})
    assert started["started"] and (started["t"], started["n"], started["required"]) == (3, 5, 2)
    assert "verification_nonce" not in started and "request_id" not in started
    progress = await vault.ok("PUT", "sys/rekey/update", json={"key": vault.keys[0], "nonce": started["nonce"]})
    assert progress == {**started, "progress": 1}


async def test_full_rekey_old_shares_stop_working(vault: InProcessVault) -> None:
    done = await _rekey(vault, {"secret_shares": 5, "secret_threshold": 3}, vault.keys[1:])
    assert done["complete"] is True and done["verification_required"] is False
    assert set(done) == {"nonce", "complete", "keys", "keys_base64", "pgp_fingerprints", "backup",
                         "verification_required"}
    assert len(done["keys"]) == 5 and done["pgp_fingerprints"] is None
    assert not (await vault.ok("GET", "sys/rekey/init"))["started"]
    seal_status = await vault.ok("GET", "sys/seal-status")
    assert (seal_status["t"], seal_status["n"]) == (3, 5)

    await vault.ok("PUT", "sys/seal")
    # Three old shares reach the new threshold and combine to the OLD root key, which opens nothing now.
    assert "error" in await _unseal(vault, vault.keys)
    assert (await vault.ok("GET", "sys/seal-status"))["sealed"]
    assert (await _unseal(vault, done["keys"][:2]))["sealed"] is True  # below the new threshold
    assert (await _unseal(vault, done["keys_base64"][2:3]))["sealed"] is False
    # The keyring and everything under it survived: the root token still works.
    assert (await vault.ok("GET", "auth/token/lookup-self"))["data"]["policies"] == ["root"]


async def test_old_shares_fail_to_unseal_after_rekey(vault: InProcessVault) -> None:
    await _rekey(vault, {"secret_shares": 3, "secret_threshold": 2}, vault.keys[:2])
    await vault.ok("PUT", "sys/seal")
    result = await _unseal(vault, vault.keys[:2])
    assert "error" in result
    assert (await vault.ok("GET", "sys/seal-status"))["sealed"]


async def test_errors_nonce_duplicate_and_wrong_share(vault: InProcessVault) -> None:
    assert await _error(vault, "PUT", "sys/rekey/update", 400, json={"key": vault.keys[0], "nonce": "x"}) == \
        "no barrier rekey in progress"
    assert await _error(vault, "PUT", "sys/rekey/init", 400, json={"secret_shares": 3, "secret_threshold": 1}) \
        == "invalid rekey seal configuration: threshold must be greater than one for multiple shares"
    nonce = (await vault.ok("PUT", "sys/rekey/init", json={"secret_shares": 3, "secret_threshold": 2}))["nonce"]
    assert await _error(vault, "PUT", "sys/rekey/init", 400, json={"secret_shares": 3, "secret_threshold": 2}) \
        == "rekey already in progress"
    assert await _error(vault, "PUT", "sys/rekey/update", 400, json={"key": vault.keys[0], "nonce": "bad"}) == \
        f'incorrect nonce supplied; nonce for this rekey operation is "{nonce}"'
    assert await _error(vault, "PUT", "sys/rekey/update", 400, json={"nonce": nonce}) == \
        "'key' must be specified in request body as JSON"
    assert await _error(vault, "PUT", "sys/rekey/update", 400, json={"key": "zz!", "nonce": nonce}) == \
        "'key' must be a valid hex or base64 string"
    # Go's JSON decoding matches these keys case-insensitively; so do we.
    await vault.ok("PUT", "sys/rekey/update", json={"Key": vault.keys[0], "NONCE": nonce})
    assert await _error(vault, "PUT", "sys/rekey/update", 400, json={"key": vault.keys[0], "nonce": nonce}) == \
        "given key has already been provided during this generation operation"
    # A corrupted share (same x-coordinate, altered value): the threshold is reached, the shares combine
    # to the wrong key, progress resets.
    share = bytes.fromhex(vault.keys[1])
    forged = (bytes([share[0] ^ 0x5A]) + share[1:]).hex()
    message = await _error(vault, "PUT", "sys/rekey/update", 400, json={"key": forged, "nonce": nonce})
    assert message.startswith("root key verification failed")
    status = await vault.ok("GET", "sys/rekey/init")
    assert status["started"] and status["nonce"] == nonce and status["progress"] == 0


async def test_cancel(vault: InProcessVault) -> None:
    assert await vault.ok("DELETE", "sys/rekey/init") is None  # nothing to cancel: still 204
    nonce = (await vault.ok("PUT", "sys/rekey/init", json={"secret_shares": 3, "secret_threshold": 2}))["nonce"]
    await vault.ok("PUT", "sys/rekey/update", json={"key": vault.keys[0], "nonce": nonce})
    r = await vault.call("DELETE", "sys/rekey/init")
    assert r.status_code == 204 and r.content == b""
    assert not (await vault.ok("GET", "sys/rekey/init"))["started"]
    assert await _error(vault, "PUT", "sys/rekey/update", 400, json={"key": vault.keys[1], "nonce": nonce}) == \
        "no barrier rekey in progress"


async def test_verification_flow(vault: InProcessVault) -> None:
    assert await _error(vault, "GET", "sys/rekey/verify", 400) == "no rekey configuration found"
    done = await _rekey(vault, {"secret_shares": 3, "secret_threshold": 2, "require_verification": True},
                        vault.keys[:2])
    assert done["verification_required"] is True and done["verification_nonce"]
    vnonce = done["verification_nonce"]
    status = await vault.ok("GET", "sys/rekey/init")
    assert status["verification_nonce"] == vnonce and status["verification_required"]
    assert await vault.ok("GET", "sys/rekey/verify") == {"nonce": vnonce, "started": True, "t": 2, "n": 3,
                                                         "progress": 0}
    assert await _error(vault, "PUT", "sys/rekey/update", 400, json={"key": vault.keys[2], "nonce": done["nonce"]}) \
        == f'rekey operation already finished; verification must be performed; nonce for the verification ' \
           f'operation is "{vnonce}"'
    progress = await vault.ok("PUT", "sys/rekey/verify", json={"key": done["keys"][0], "nonce": vnonce})
    assert progress["progress"] == 1
    restarted = await vault.ok("DELETE", "sys/rekey/verify")
    assert restarted["progress"] == 0 and restarted["nonce"] != vnonce
    vnonce = restarted["nonce"]
    await vault.ok("PUT", "sys/rekey/verify", json={"key": done["keys"][2], "nonce": vnonce})
    final = await vault.ok("PUT", "sys/rekey/verify", json={"key": done["keys"][1], "nonce": vnonce})
    assert final == {"nonce": vnonce, "complete": True}

    await vault.ok("PUT", "sys/seal")
    assert "error" in await _unseal(vault, vault.keys[:2])
    assert (await _unseal(vault, done["keys"][:2]))["sealed"] is False


async def test_pgp_rekey_with_backup_decrypts_with_gpg(
    vault: InProcessVault, custodians: tuple[Gpg, list[GpgKey]]
) -> None:
    gpg, people = custodians
    assert await _error(vault, "GET", "sys/rekey/backup", 400) == "no backed-up keys found"
    status = await vault.ok("PUT", "sys/rekey/init", json={
        "secret_shares": 3, "secret_threshold": 2, "backup": True,
        "pgp_keys": [p.vault_entry for p in people],
    })
    fingerprints = [p.fingerprint.lower() for p in people]
    assert status["pgp_fingerprints"] == fingerprints and status["backup"] is True
    done: dict[str, Any] = {}
    for key in vault.keys[:2]:
        done = await vault.ok("PUT", "sys/rekey/update", json={"key": key, "nonce": status["nonce"]})
    assert done["pgp_fingerprints"] == fingerprints and done["backup"] is True
    plain = [gpg.decrypt(base64.b64decode(b64)).decode() for b64 in done["keys_base64"]]
    assert [bytes.fromhex(k) for k in done["keys"]] == [base64.b64decode(b) for b in done["keys_base64"]]
    assert all(len(bytes.fromhex(p)) == 33 for p in plain)

    backup = await vault.ok("GET", "sys/rekey/backup")
    assert backup["data"]["nonce"] == status["nonce"]
    assert backup["data"]["keys"] == {fp: [k] for fp, k in zip(fingerprints, done["keys"], strict=True)}
    assert backup["keys_base64"] == {fp: [k] for fp, k in zip(fingerprints, done["keys_base64"], strict=True)}

    await vault.ok("PUT", "sys/seal")
    assert (await _unseal(vault, plain[1:]))["sealed"] is False

    r = await vault.call("DELETE", "sys/rekey/backup")
    assert r.status_code == 204
    assert await _error(vault, "GET", "sys/rekey/backup", 400) == "no backed-up keys found"

    # A later rekey without backup removes any backup: it would hold superseded shares.
    params = {"secret_shares": 3, "secret_threshold": 2, "backup": True, "pgp_keys": [p.vault_entry for p in people]}
    again = await _rekey(vault, params, plain[:2])
    assert (await vault.ok("GET", "sys/rekey/backup"))["nonce"] == again["nonce"]
    newest = [gpg.decrypt(base64.b64decode(b64)).decode() for b64 in again["keys_base64"][:2]]
    await _rekey(vault, {"secret_shares": 1, "secret_threshold": 1}, newest)
    assert await _error(vault, "GET", "sys/rekey/backup", 400) == "no backed-up keys found"


async def test_authentication_rules(vault: InProcessVault) -> None:
    assert await _error(vault, "GET", "sys/rekey/init", 403, token="") == "permission denied"
    await vault.ok("PUT", "sys/policies/acl/no-sudo", json={"policy": NO_SUDO_POLICY})
    await vault.ok("PUT", "sys/policies/acl/rekeyer", json={"policy": SUDO_POLICY})
    plain = await vault.token(["no-sudo"])
    rekeyer = await vault.token(["rekeyer"])
    assert await _error(vault, "PUT", "sys/rekey/init", 403, token=plain,
                        json={"secret_shares": 3, "secret_threshold": 2}) == "permission denied"
    assert await _error(vault, "DELETE", "sys/rekey/init", 403, token=plain) == "permission denied"
    await vault.ok("PUT", "sys/rekey/init", rekeyer, json={"secret_shares": 3, "secret_threshold": 2})
    assert await _error(vault, "GET", "sys/rekey/backup", 403, token=plain) == "permission denied"
    # OpenBao's paths are authenticated by the ordinary ACL, without sudo.
    assert (await vault.ok("GET", "sys/rotate/root/init", plain))["data"]["started"] is True
    assert await _error(vault, "GET", "sys/rotate/root/init", 403, token=rekeyer) == "permission denied"
    assert await _error(vault, "GET", "sys/rotate/root/init", 403, token="") == "permission denied"
    await vault.ok("PUT", "sys/seal")
    assert await _error(vault, "GET", "sys/rekey/init", 503, token=rekeyer) == "Vault is sealed"


@pytest.fixture
async def open_vault() -> AsyncIterator[InProcessVault]:
    v = await start_vault(settings=NodeSettings(unauthenticated_rekey=True))
    try:
        yield v
    finally:
        await v.client.aclose()
        await v.node.close()


async def test_unauthenticated_rekey_setting_behaves_like_vault(open_vault: InProcessVault) -> None:
    vault = open_vault
    done = await _rekey(vault, {"secret_shares": 1, "secret_threshold": 1}, vault.keys[:2], token="")
    assert done["complete"] and len(bytes.fromhex(done["keys"][0])) == 32
    assert not (await vault.ok("GET", "sys/rekey/init", ""))["started"]
    # The backup stays a root-protected path, as in Vault.
    assert await _error(vault, "GET", "sys/rekey/backup", 403, token="") == "permission denied"
    await vault.ok("PUT", "sys/seal")
    assert (await _unseal(vault, done["keys"]))["sealed"] is False


async def test_openbao_rotate_root_paths(vault: InProcessVault) -> None:
    status = await vault.ok("GET", "sys/rotate/root/init")
    assert status["data"] == {"n": 0, "required": 2, "started": False, "t": 0}
    assert await _error(vault, "GET", "sys/rotate/root/verify", 400) == "no rotation configuration found"
    assert await _error(vault, "GET", "sys/rotate/root/backup", 400) == "no backed-up keys found"
    assert await _error(vault, "PUT", "sys/rotate/root/update", 400, json={}) == "missing required field 'key'"
    assert await _error(vault, "PUT", "sys/rotate/root/update", 400, json={"key": "aa"}) == \
        "missing required field 'nonce'"
    assert await _error(vault, "PUT", "sys/rotate/root/update", 400, json={"key": vault.keys[0], "nonce": "x"}) \
        == "no rotation in progress"
    started = (await vault.ok("POST", "sys/rotate/root/init", json={
        "secret_shares": 3, "secret_threshold": 2, "require_verification": True}))["data"]
    assert started == {"n": 3, "nonce": started["nonce"], "progress": 0, "required": 2, "started": True, "t": 2,
                       "verification_nonce": "", "verification_required": True}
    # One ceremony behind both families.
    assert (await vault.ok("GET", "sys/rekey/init"))["nonce"] == started["nonce"]
    assert await _error(vault, "POST", "sys/rotate/root/init", 400, json={"secret_shares": 3,
                        "secret_threshold": 2}) == "rotation already in progress"
    assert await _error(vault, "PUT", "sys/rotate/root/update", 400,
                        json={"key": vault.keys[0], "nonce": "x"}) == \
        f'incorrect nonce supplied; nonce for rotation is "{started["nonce"]}"'
    await vault.ok("PUT", "sys/rotate/root/update", json={"key": vault.keys[0], "nonce": started["nonce"]})
    assert await _error(vault, "PUT", "sys/rotate/root/update", 400,
                        json={"key": vault.keys[0], "nonce": started["nonce"]}) == \
        "given key has already been provided during this rotation"
    done = (await vault.ok("PUT", "sys/rotate/root/update",
                           json={"key": vault.keys[1], "nonce": started["nonce"]}))["data"]
    assert done["complete"] and done["verification_required"]
    vnonce = done["verification_nonce"]
    for key in done["keys"][:2]:
        result = await vault.ok("PUT", "sys/rotate/root/verify", json={"key": key, "nonce": vnonce})
    assert result["data"] == {"nonce": vnonce, "complete": True}
    assert await vault.ok("DELETE", "sys/rotate/root/init") is None
    await vault.ok("PUT", "sys/seal")
    assert (await _unseal(vault, done["keys"][1:]))["sealed"] is False
