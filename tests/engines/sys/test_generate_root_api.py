"""``sys/generate-root/*``, ``sys/generate-root-token/*`` and ``sys/decode-token`` over HTTP."""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest

from strongroom.core.generate_root import decode_token
from tests.support.gpg import Gpg, GpgKey
from tests.support.require import require_binary
from tests.support.vault import InProcessVault


@pytest.fixture(scope="module")
def operator_key() -> Iterator[tuple[Gpg, GpgKey]]:
    """One operator key with a cv25519 encryption subkey in a throw-away GNUPGHOME."""
    executable = require_binary("gpg", "/usr/bin/gpg")
    home = tempfile.mkdtemp(prefix="sr-gr-")  # short: gpg-agent's socket path is limited to ~108 bytes
    os.chmod(home, 0o700)
    gpg = Gpg(executable, home)
    try:
        yield gpg, gpg.generate("Operator <op@example.invalid>", "ed25519", "cv25519")
    finally:
        gpgconf = shutil.which("gpgconf")
        if gpgconf:
            subprocess.run([gpgconf, "--homedir", home, "--kill", "all"], check=False, capture_output=True)
        shutil.rmtree(home, ignore_errors=True)


async def _error(vault: InProcessVault, method: str, path: str, status: int, **kw: Any) -> str:
    r = await vault.call(method, path, "", **kw)
    assert r.status_code == status, (method, path, r.status_code, r.text)
    errors: list[str] = r.json()["errors"]
    return errors[0]


async def _is_root(vault: InProcessVault, token: str) -> bool:
    r = await vault.call("GET", "auth/token/lookup-self", token)
    return r.status_code == 200 and r.json()["data"]["policies"] == ["root"]


async def _complete(vault: InProcessVault, nonce: str, base: str = "sys/generate-root") -> dict[str, Any]:
    body: dict[str, Any] = {}
    for key in vault.keys[1:]:
        body = await vault.ok("PUT", f"{base}/update", "", json={"key": key, "nonce": nonce})
    return body


async def test_server_generated_otp_decodes_to_a_working_root_token(vault: InProcessVault) -> None:
    status = await vault.ok("GET", "sys/generate-root/attempt", "")
    assert status == {
        "started": False, "nonce": "", "progress": 0, "required": 2, "complete": False, "encoded_token": "",
        "encoded_root_token": "", "pgp_fingerprint": "", "otp": "", "otp_length": 28,
    }
    started = await vault.ok("PUT", "sys/generate-root/attempt", "", json={})
    otp = started["otp"]
    assert started["started"] and len(otp) == started["otp_length"] == 28 and started["nonce"]
    assert (await vault.ok("GET", "sys/generate-root/attempt", ""))["otp"] == ""  # shown once only

    first = await vault.ok("PUT", "sys/generate-root/update", "", json={"key": vault.keys[0],
                                                                        "nonce": started["nonce"]})
    assert first == {**status, "started": True, "nonce": started["nonce"], "progress": 1, "otp_length": 0}
    done = await vault.ok("PUT", "sys/generate-root/update", "", json={"key": vault.keys[2],
                                                                       "nonce": started["nonce"]})
    assert done["complete"] and done["progress"] == 2 and done["encoded_token"] == done["encoded_root_token"]
    token = decode_token(done["encoded_token"], otp)
    assert token.startswith("hvs.") and len(token) == 28 and token != vault.root_token
    assert await _is_root(vault, token)
    assert not (await vault.ok("GET", "sys/generate-root/attempt", ""))["started"]


async def test_client_otp_and_its_length(vault: InProcessVault) -> None:
    assert await _error(vault, "PUT", "sys/generate-root/attempt", 400, json={"otp": "short"}) == \
        "OTP string has incorrect length"
    otp = "0123456789abcdefghijklmnopqr"
    started = await vault.ok("PUT", "sys/generate-root/attempt", "", json={"otp": otp})
    assert started["otp"] == "" and started["started"]
    assert await _error(vault, "PUT", "sys/generate-root/attempt", 400, json={}) == \
        "root generation already in progress"
    done = await _complete(vault, started["nonce"])
    assert await _is_root(vault, decode_token(done["encoded_token"], otp))


async def test_pgp_encrypted_root_token_decrypts_with_gpg(
    vault: InProcessVault, operator_key: tuple[Gpg, GpgKey]
) -> None:
    gpg, key = operator_key
    started = await vault.ok("PUT", "sys/generate-root/attempt", "", json={"pgp_key": key.vault_entry})
    assert started["pgp_fingerprint"] == key.fingerprint.lower() and started["otp"] == ""
    done = await _complete(vault, started["nonce"])
    assert done["pgp_fingerprint"] == key.fingerprint.lower()
    token = gpg.decrypt(base64.b64decode(done["encoded_token"])).decode()
    assert await _is_root(vault, token)


async def test_cancel_nonce_and_wrong_share(vault: InProcessVault) -> None:
    assert await _error(vault, "PUT", "sys/generate-root/update", 400,
                        json={"key": vault.keys[0], "nonce": "x"}) == "no root generation in progress"
    started = await vault.ok("PUT", "sys/generate-root/attempt", "", json={})
    nonce = started["nonce"]
    assert await _error(vault, "PUT", "sys/generate-root/update", 400, json={"nonce": nonce}) == \
        "'key' must be specified in request body as JSON"
    assert await _error(vault, "PUT", "sys/generate-root/update", 400, json={"key": vault.keys[0],
                        "nonce": "other"}) == \
        f'incorrect nonce supplied; nonce for this root generation operation is "{nonce}"'
    await vault.ok("PUT", "sys/generate-root/update", "", json={"KEY": vault.keys[0], "Nonce": nonce})
    assert await _error(vault, "PUT", "sys/generate-root/update", 400,
                        json={"key": vault.keys[0], "nonce": nonce}) == \
        "given key has already been provided during this generation operation"
    # Same x-coordinate (last byte), altered y: the two shares combine, to the wrong key.
    share = bytes.fromhex(vault.keys[1])
    wrong = bytes([share[0] ^ 0xFF]) + share[1:]
    message = await _error(vault, "PUT", "sys/generate-root/update", 400, json={"key": wrong.hex(),
                           "nonce": nonce})
    assert message.startswith("root generation aborted")
    status = await vault.ok("GET", "sys/generate-root/attempt", "")
    assert status["started"] and status["progress"] == 0 and status["nonce"] == nonce

    r = await vault.call("DELETE", "sys/generate-root/attempt", "")
    assert r.status_code == 204
    assert not (await vault.ok("GET", "sys/generate-root/attempt", ""))["started"]
    assert await _error(vault, "PUT", "sys/generate-root/update", 400,
                        json={"key": vault.keys[1], "nonce": nonce}) == "no root generation in progress"


async def test_sealed_vault_answers_503(vault: InProcessVault) -> None:
    await vault.ok("PUT", "sys/seal")
    assert await _error(vault, "GET", "sys/generate-root/attempt", 503) == "Vault is sealed"
    assert await _error(vault, "PUT", "sys/generate-root/attempt", 503, json={}) == "Vault is sealed"


async def test_openbao_generate_root_token_paths(vault: InProcessVault) -> None:
    status = await vault.ok("GET", "sys/generate-root-token/attempt", "")
    assert status["data"] == {"started": False, "progress": 0, "required": 2, "complete": False,
                              "otp": "", "otp_length": 28}
    started = (await vault.ok("PUT", "sys/generate-root-token/attempt", "", json={"otp": "", "pgp_key": ""}))
    data = started["data"]
    assert set(data) == {"started", "nonce", "progress", "required", "complete", "pgp_fingerprint", "otp",
                         "otp_length"}
    assert await _error(vault, "PUT", "sys/generate-root-token/update", 400, json={"key": vault.keys[0]}) == \
        "nonce is required"
    assert await _error(vault, "PUT", "sys/generate-root-token/update", 400, json={"nonce": "x"}) == \
        "key is required"
    done = (await _complete(vault, data["nonce"], "sys/generate-root-token"))["data"]
    assert set(done) == {"started", "nonce", "progress", "required", "complete", "encoded_token",
                         "pgp_fingerprint"}
    token = decode_token(done["encoded_token"], data["otp"])
    assert await _is_root(vault, token)
    decoded = await vault.ok("PUT", "sys/decode-token", "", json={"encoded_token": done["encoded_token"],
                                                                  "otp": data["otp"]})
    assert decoded["data"] == {"token": token}
    assert await _error(vault, "PUT", "sys/decode-token", 400, json={"otp": "x"}) == \
        "provided 'encoded_token' or 'otp' is empty"
    assert await vault.ok("DELETE", "sys/generate-root-token/attempt", "") is None
