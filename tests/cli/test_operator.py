"""``strongroom operator ...`` and ``status`` against a real, non-dev Vault-API server (sealed at start)."""

from __future__ import annotations

import base64
import json
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.cli.targets import Runner, VaultTarget, free_port
from tests.support.require import require_binary

pytestmark = pytest.mark.slow


def init(run: Runner, shares: int, threshold: int) -> tuple[list[str], str]:
    res = run("operator", "init", f"-key-shares={shares}", f"-key-threshold={threshold}")
    assert res.code == 0, res.err
    keys = re.findall(r"^Unseal Key \d+: (\S+)$", res.out, re.M)
    token = re.search(r"^Initial Root Token: (\S+)$", res.out, re.M)
    assert len(keys) == shares
    assert token is not None
    assert f"Vault initialized with {shares} key shares and a key threshold of {threshold}." in res.out
    return keys, token.group(1)


def table(out: str) -> dict[str, str]:
    """Parse a Key/Value table (header lines skipped)."""
    rows = {}
    for line in out.splitlines():
        parts = re.split(r"\s{4,}", line.strip(), maxsplit=1)
        if len(parts) == 2:
            rows[parts[0]] = parts[1]
    return rows


def test_status_of_unreachable_server_exits_1(cli: Callable[[VaultTarget], Runner]) -> None:
    res = cli(VaultTarget(f"http://127.0.0.1:{free_port()}", ""))("status")
    assert res.code == 1
    assert res.err.startswith("Error checking seal status:")


def test_lifecycle(fresh_target: VaultTarget, cli: Callable[[VaultTarget], Runner]) -> None:
    run = cli(fresh_target)
    before = run("status")
    assert before.code == 2
    assert table(before.out)["Initialized"] == "false"
    assert run("operator", "init", "-status").code == 2

    keys, root = init(run, 3, 2)
    assert run("operator", "init", "--status").out.strip() == "Vault is initialized"
    again = run("operator", "init")
    assert again.code == 2
    assert "Error initializing" in again.err

    first = run("operator", "unseal", keys[0])
    assert first.code == 0, first.err
    status = table(first.out)
    assert (status["Sealed"], status["Unseal Progress"], status["Total Shares"]) == ("true", "1/2", "3")
    assert table(run("operator", "unseal", "-reset").out)["Unseal Progress"] == "0/2"

    prompted = run("operator", "unseal", keys[1])
    assert table(prompted.out)["Unseal Progress"] == "1/2"
    # No key argument: the key is read with getpass (no echo), never from argv.
    hidden = run("operator", "unseal", keys=[keys[2]])
    assert hidden.prompts == ["Unseal Key (will be hidden): "]
    assert table(hidden.out)["Sealed"] == "false"
    up = run("status")
    assert up.code == 0
    assert "Unseal Progress" not in up.out

    run_root = cli(VaultTarget(fresh_target.addr, root))
    term = table(run_root("operator", "key-status").out)["Key Term"]
    rotated = run_root("operator", "rotate")
    assert rotated.out.startswith("Success! Rotated key")
    assert int(table(rotated.out)["Key Term"]) == int(term) + 1
    as_json = json.loads(run_root("operator", "key-status", "-format=json").out)
    assert as_json["term"] == int(term) + 1

    sealed = run_root("operator", "seal")
    assert sealed.out.strip() == "Success! Vault is sealed."
    assert run("status").code == 2
    assert run("operator", "unseal", "-", stdin=keys[0] + "\n").code == 0
    done = run("operator", "unseal", "-format=json", keys[2])
    assert json.loads(done.out)["sealed"] is False


def test_rekey(fresh_target: VaultTarget, cli: Callable[[VaultTarget], Runner]) -> None:
    run = cli(fresh_target)
    keys, root = init(run, 2, 2)
    for key in keys:
        run("operator", "unseal", key)
    run = cli(VaultTarget(fresh_target.addr, root))

    started = run("operator", "rekey", "-init", "-key-shares=3", "-key-threshold=2")
    assert started.code == 0, started.err
    status = table(started.out)
    assert (status["Started"], status["Rekey Progress"], status["New Shares"]) == ("true", "0/2", "3")
    nonce = status["Nonce"]
    assert table(run("operator", "rekey", "-status").out)["Nonce"] == nonce

    no_nonce = run("operator", "rekey", keys[0])
    assert no_nonce.code == 1
    assert "Missing nonce value" in no_nonce.err
    step = run("operator", "rekey", f"-nonce={nonce}", keys[0])
    assert table(step.out)["Rekey Progress"] == "1/2"
    last = run("operator", "rekey", keys=[keys[1]])  # prompted: the nonce comes from the status read
    assert last.prompts == ["Unseal Key (will be hidden): "]
    new_keys = re.findall(r"^Key \d+: (\S+)$", last.out, re.M)
    assert len(new_keys) == 3
    assert f"Operation nonce: {nonce}" in last.out

    assert run("operator", "seal").code == 0
    assert table(run("operator", "unseal", keys[0]).out)["Total Shares"] == "3"
    run("operator", "unseal", "-reset")
    for key in new_keys[:2]:
        out = run("operator", "unseal", key)
    assert table(out.out)["Sealed"] == "false"

    assert run("operator", "rekey", "-init", "-key-shares=2", "-key-threshold=2").code == 0
    cancelled = run("operator", "rekey", "-cancel")
    assert cancelled.out.strip() == "Success! Canceled rekeying (if it was started)"
    assert table(run("operator", "rekey", "-status").out)["Started"] == "false"
    idle = run("operator", "rekey", f"-nonce={nonce}", new_keys[0])
    assert idle.code == 1
    assert "No rekey is in progress" in idle.err


def test_rekey_with_verification(fresh_target: VaultTarget, cli: Callable[[VaultTarget], Runner]) -> None:
    run = cli(fresh_target)
    keys, root = init(run, 1, 1)
    run("operator", "unseal", keys[0])
    run = cli(VaultTarget(fresh_target.addr, root))

    status = table(run("operator", "rekey", "-init", "-verify", "-key-shares=1", "-key-threshold=1").out)
    assert status["Verification Required"] == "true"
    done = run("operator", "rekey", f"-nonce={status['Nonce']}", keys[0])
    assert done.code == 0, done.err
    new_key = re.search(r"^Key 1: (\S+)$", done.out, re.M)
    vnonce = re.search(r"^Verification Nonce: (\S+)$", done.out, re.M)
    assert new_key is not None
    assert vnonce is not None
    vstatus = table(run("operator", "rekey", "-verify", "-status").out)
    assert vstatus["Verification Nonce"] == vnonce.group(1)
    verified = run("operator", "rekey", "-verify", f"-nonce={vnonce.group(1)}", new_key.group(1))
    assert verified.code == 0, verified.err
    assert "Rekey verification successful" in verified.out

    run("operator", "seal")
    assert table(run("operator", "unseal", new_key.group(1)).out)["Sealed"] == "false"


def _gpg(home: Path, *args: str, data: bytes | None = None) -> bytes:
    return subprocess.run(
        ["gpg", "--homedir", str(home), "--batch", "--yes", "--pinentry-mode", "loopback", "--passphrase", "",
         *args],
        input=data, capture_output=True, check=True, timeout=120,
    ).stdout  # fmt: skip


def test_init_with_pgp_keys(
    fresh_target: VaultTarget, cli: Callable[[VaultTarget], Runner], tmp_path: Path
) -> None:
    require_binary("gpg")  # fails instead of skipping under STRONGROOM_REQUIRE_ALL=1
    home = tmp_path / "gnupg"
    home.mkdir(mode=0o700)
    files = []
    for i, fmt in enumerate(("binary", "armor", "binary")):
        uid = f"custodian{i}@example.invalid"
        _gpg(home, "--quick-gen-key", uid, "rsa2048", "encrypt", "never")
        exported = _gpg(home, *(["--armor"] if fmt == "armor" else []), "--export", uid)
        path = tmp_path / f"key{i}.{'asc' if fmt == 'armor' else 'gpg'}"
        path.write_bytes(exported)
        files.append(path)

    run = cli(fresh_target)
    res = run(
        "operator", "init", "-format=json", "-key-shares=2", "-key-threshold=2",
        f"-pgp-keys={files[0]},{files[1]}", f"-root-token-pgp-key={files[2]}",
    )  # fmt: skip
    assert res.code == 0, res.err
    body = json.loads(res.out)
    assert body["unseal_shares"] == 2
    shares = [_gpg(home, "--decrypt", data=base64.b64decode(b)).decode() for b in body["unseal_keys_b64"]]
    root = _gpg(home, "--decrypt", data=base64.b64decode(body["root_token"])).decode()
    assert all(re.fullmatch(r"[0-9a-f]{66}", s) for s in shares)  # Vault encrypts the hex of each share
    for share in shares:
        out = run("operator", "unseal", share)
    assert table(out.out)["Sealed"] == "false"
    lookup = httpx.get(f"{fresh_target.addr}/v1/auth/token/lookup-self", headers={"X-Vault-Token": root})
    assert lookup.status_code == 200


def test_unknown_pgp_sources_are_usage_errors(cli: Callable[[VaultTarget], Runner], tmp_path: Path) -> None:
    run = cli(VaultTarget(f"http://127.0.0.1:{free_port()}", ""))
    assert run("operator", "init", "-pgp-keys=keybase:someone").code == 1
    assert run("operator", "init", f"-pgp-keys={tmp_path / 'missing.asc'}").code == 1
