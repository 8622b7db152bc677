"""``strongroom platform init|recover`` end to end: the real CLI, real gpg, a real server, the real ``bao``.

Each custodian has their own GnuPG home (only their own secret key). The flow is the one
docs/operations/platform-ceremony.md describes: offline init on SQLite, each custodian ``gpg --decrypt``s
their file, a ``strongroom server`` process starts sealed on that store, k custodians ``bao operator
unseal``, the operator gets a root token with ``bao operator generate-root``, and data round-trips; then
the recover drill with the layered archive piped from gpg to ``platform recover --archive -``.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.gpg import Gpg, gpg_home
from tests.support.server import VENV_BIN, ServerProcess, bao_binary, start_strongroom

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Custodian:
    name: str
    gpg: Gpg
    fingerprint: str
    public_key: Path

    def decrypt_file(self, path: Path) -> subprocess.CompletedProcess[bytes]:
        """What the custodian runs: ``gpg --decrypt FILE`` (stdout is what unseal accepts)."""
        return subprocess.run(
            [self.gpg.executable, "--batch", "--homedir", self.gpg.home, "--decrypt", str(path)],
            capture_output=True, check=False, timeout=60,
        )

    def share(self, path: Path) -> str:
        result = self.decrypt_file(path)
        assert result.returncode == 0, result.stderr.decode(errors="replace")
        return result.stdout.decode()


@pytest.fixture(scope="module")
def people(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Custodian]]:
    keys = tmp_path_factory.mktemp("public-keys")
    with gpg_home() as a, gpg_home() as b, gpg_home() as c:
        out = []
        for home, name in ((a, "alice"), (b, "bob"), (c, "carol")):
            key = home.generate(f"{name} <{name}@example.invalid>")
            path = keys / f"{name}.asc"
            path.write_bytes(home.run("--armor", "--export", key.fingerprint))  # armored, as people mail them
            out.append(Custodian(name, home, key.fingerprint.lower(), path))
        yield out


def strongroom(*args: str, cwd: Path, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(VENV_BIN / "strongroom"), *args], cwd=cwd, input=stdin, capture_output=True, timeout=120, check=False
    )
    return subprocess.CompletedProcess(result.args, result.returncode, result.stdout.decode(), result.stderr.decode())


def platform(command: str, work: Path, people: list[Custodian], *extra: str, shares: int = 3, threshold: int = 2,
             stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    keys = [arg for p in people[:shares] for arg in ("--pgp-key", str(p.public_key))]
    return strongroom(
        "platform", command, "--storage", "sqlite:///store/platform.db", "--shares", str(shares),
        "--threshold", str(threshold), *keys, *extra, cwd=work, stdin=stdin,
    )


def ok_json(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, f"exit {result.returncode}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    return json.loads(result.stdout)


@dataclass
class Bao:
    server: ServerProcess
    home: Path

    def run(self, *args: str, token: str = "") -> subprocess.CompletedProcess[str]:
        env = {"PATH": os.environ.get("PATH", ""), "HOME": str(self.home), "BAO_ADDR": self.server.addr}
        if token:
            env["BAO_TOKEN"] = token
        return subprocess.run([bao_binary(), *args], env=env, capture_output=True, text=True, timeout=60, check=False)

    def ok(self, *args: str, token: str = "") -> str:
        result = self.run(*args, token=token)
        assert result.returncode == 0, f"bao {args}: {result.stdout}{result.stderr}\n{self.server.log()[-2000:]}"
        return result.stdout

    def status(self) -> Any:
        return json.loads(self.run("status", "-format=json").stdout)

    def generate_root(self, shares: list[str]) -> str:
        """The generate-root ceremony with stock tooling: init (OTP), k shares, decode."""
        start = json.loads(self.ok("operator", "generate-root", "-init", "-format=json"))
        done: Any = {}
        for share in shares:
            done = json.loads(self.ok("operator", "generate-root", f"-nonce={start['nonce']}", "-format=json", share))
        assert done["complete"]
        decoded = self.ok("operator", "generate-root", f"-decode={done['encoded_token']}", f"-otp={start['otp']}")
        return decoded.strip()


def _server(work: Path) -> tuple[ServerProcess, Bao]:
    server = start_strongroom(["--storage", "sqlite:///store/platform.db"], work)
    return server, Bao(server, work)


def _dump(work: Path) -> list[str]:
    with sqlite3.connect(work / "store" / "platform.db") as db:
        return list(db.iterdump())


def test_offline_init_then_stock_unseal_generate_root_and_data(people: list[Custodian], tmp_path: Path) -> None:
    alice, bob, carol = people
    out = ok_json(platform(
        "init", tmp_path, people, "--archive-pgp-key", str(alice.public_key), "--archive-pgp-key",
        str(bob.public_key), "--archive-mode", "all", "--out-dir", "ceremony", "--format", "json",
    ))
    directory = tmp_path / "ceremony"
    assert out["output_directory"] == str(directory) and out["secret_threshold"] == 2
    manifest = (directory / "ceremony-manifest.txt").read_bytes()
    assert out["digest"] == hashlib.sha256(manifest).hexdigest() == subprocess.run(
        ["sha256sum", str(directory / "ceremony-manifest.txt")], capture_output=True, text=True, check=True
    ).stdout.split()[0]
    files = [directory / s["file"] for s in out["shares"]]
    assert [s["fingerprint"] for s in out["shares"]] == [p.fingerprint for p in people]
    assert all(oct(f.stat().st_mode & 0o777) == "0o600" for f in files)

    shares = [person.share(path) for person, path in zip(people, files, strict=True)]
    assert all(len(bytes.fromhex(s)) == 33 for s in shares)
    assert bob.decrypt_file(files[0]).returncode != 0  # a share opens for its custodian only

    archive = directory / "root-key-archive.asc"
    assert bob.decrypt_file(archive).returncode != 0 and carol.decrypt_file(archive).returncode != 0
    layer = alice.share(archive)  # alice alone removes one layer and gets ciphertext, not the key
    assert layer.startswith("-----BEGIN PGP MESSAGE-----") and "root_key" not in layer

    server, bao = _server(tmp_path)
    try:
        status = bao.status()
        assert status["initialized"] and status["sealed"] and (status["t"], status["n"]) == (2, 3)
        assert json.loads(bao.ok("operator", "unseal", "-format=json", shares[0]))["sealed"]
        assert not json.loads(bao.ok("operator", "unseal", "-format=json", shares[2]))["sealed"]
        token = bao.generate_root([shares[1], shares[0]])
        bao.ok("secrets", "enable", "-path=kv", "kv-v2", token=token)
        bao.ok("kv", "put", "kv/app", "password=s3cret", token=token)
        assert bao.ok("kv", "get", "-field=password", "kv/app", token=token) == "s3cret"
    finally:
        server.kill()


def test_an_initialised_store_is_refused_and_nothing_is_written(people: list[Custodian], tmp_path: Path) -> None:
    ok_json(platform("init", tmp_path, people, "--out-dir", "first", "--format", "json", shares=1, threshold=1))
    before = _dump(tmp_path)
    again = platform("init", tmp_path, people, "--out-dir", "second")
    assert again.returncode == 2
    assert "already initialised" in again.stderr
    assert not (tmp_path / "second").exists() and _dump(tmp_path) == before
    # The output directory is refused when it holds anything: old and new files never mix.
    fresh = tmp_path / "other"
    fresh.mkdir()
    again = platform("init", fresh, people, "--out-dir", str(tmp_path / "first"))
    assert again.returncode == 1 and "not empty" in again.stderr
    assert not (fresh / "store").exists()


def test_bad_options_are_refused_before_the_store_is_touched(
    people: list[Custodian], tmp_path: Path
) -> None:
    result = platform("init", tmp_path, people, "--archive-pgp-key", str(people[0].public_key))
    assert result.returncode == 1 and "explicit archive mode" in result.stderr
    result = platform("init", tmp_path, people, "--archive-mode", "any")
    assert result.returncode == 1 and "without archive PGP keys" in result.stderr
    assert list(tmp_path.iterdir()) == []  # not even the SQLite file was created
    result = strongroom("platform", "init", "--storage", "memory://", "--shares", "1", "--threshold", "1",
                        "--pgp-key", str(people[0].public_key), cwd=tmp_path)
    assert result.returncode == 1 and "memory:// storage ends with this command" in result.stderr
    # Without --out-dir the files go to a new, timestamped directory.
    result = platform("init", tmp_path, people, shares=2)
    assert result.returncode == 0, result.stderr
    listing = sorted(p.name for p in tmp_path.iterdir())
    assert listing[0] == "store" and listing[1].startswith("strongroom-platform-init-")


def test_archive_mode_any_warns_and_each_key_alone_opens_it(people: list[Custodian], tmp_path: Path) -> None:
    alice, bob, carol = people
    result = platform(
        "init", tmp_path, people, "--archive-pgp-key", str(alice.public_key), "--archive-pgp-key",
        str(bob.public_key), "--archive-mode", "any", "--out-dir", "out",
    )
    assert result.returncode == 0, result.stderr
    assert "WARNING!" in result.stderr and "bypassing the 2-of-3 threshold" in result.stderr
    archive = tmp_path / "out" / "root-key-archive.asc"
    for person in (alice, bob):
        doc = json.loads(person.share(archive))
        assert doc["format"] == "strongroom-platform-archive/1" and len(bytes.fromhex(doc["root_key"])) == 32
    assert carol.decrypt_file(archive).returncode != 0
    assert "archive_mode: any" in (tmp_path / "out" / "ceremony-manifest.txt").read_text()


def test_recover_drill_replaces_every_share(people: list[Custodian], tmp_path: Path) -> None:
    alice, bob, carol = people
    first = ok_json(platform(
        "init", tmp_path, people, "--archive-pgp-key", str(alice.public_key), "--archive-pgp-key",
        str(bob.public_key), "--archive-mode", "all", "--out-dir", "init", "--format", "json",
    ))
    old = [p.share(tmp_path / "init" / s["file"]) for p, s in zip(people, first["shares"], strict=True)]
    server, bao = _server(tmp_path)
    try:
        for share in old[:2]:
            bao.ok("operator", "unseal", share)
        token = bao.generate_root(old[1:])
        bao.ok("secrets", "enable", "-path=kv", "kv-v2", token=token)
        bao.ok("kv", "put", "kv/app", "password=before-recover", token=token)
    finally:
        server.kill()

    # The drill: the archive holders remove their layers in manifest order; the last gpg pipes the key
    # straight into recover, so the clear key never touches a disk. New custodians: bob and carol.
    archive = tmp_path / "init" / "root-key-archive.asc"
    pipeline = (
        f"gpg --batch --homedir {alice.gpg.home} --decrypt {archive} 2>/dev/null"
        f" | gpg --batch --homedir {bob.gpg.home} --decrypt 2>/dev/null"
        f" | {VENV_BIN / 'strongroom'} platform recover --archive - --storage sqlite:///store/platform.db"
        f" --shares 2 --threshold 2 --pgp-key {bob.public_key} --pgp-key {carol.public_key}"
        " --out-dir recovered --format json"
    )
    done = subprocess.run(["bash", "-o", "pipefail", "-c", pipeline], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120, check=False)
    second = ok_json(subprocess.CompletedProcess(done.args, done.returncode, done.stdout, done.stderr))
    assert second["operation"] == "recover" and second["cluster_id"] == first["cluster_id"]
    new = [p.share(tmp_path / "recovered" / s["file"]) for p, s in zip((bob, carol), second["shares"], strict=True)]

    server, bao = _server(tmp_path)
    try:
        bao.ok("operator", "unseal", old[0])
        refused = bao.run("operator", "unseal", old[2])
        assert refused.returncode == 2 and "did not reconstruct the root key" in refused.stderr
        assert bao.status()["sealed"]
        bao.ok("operator", "unseal", new[0])
        unseal = strongroom("operator", "unseal", "--address", server.addr, new[1], cwd=tmp_path)
        assert unseal.returncode == 0, unseal.stderr
        assert not bao.status()["sealed"]
        assert bao.ok("kv", "get", "-field=password", "kv/app", token=token) == "before-recover"
    finally:
        server.kill()

    # The old archive holds the replaced key: recover refuses it and writes nothing.
    again = subprocess.run(["bash", "-o", "pipefail", "-c", pipeline.replace("recovered", "again")],
                           cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False)
    assert again.returncode == 1 and "rekeyed after the archive was made" in again.stderr
    assert not (tmp_path / "again").exists()
