"""``strongroom operator snapshot save|restore|inspect`` against a real ``strongroom server`` process on sqlite,
plus Vault tooling (hvac, ``bao operator raft snapshot restore``) driving the same endpoints, and the
offline restore of a store whose restore stopped half-way."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import re
import signal
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from strongroom.core import snapshot
from strongroom.errors import StorageUnavailable
from strongroom.storage.sqlite import SqliteStore
from tests.cli.targets import Runner, VaultTarget
from tests.storage.support_migrate import SpyStore
from tests.support.require import require_binary
from tests.support.server import ROOT, ServerProcess, free_port, start_strongroom

pytestmark = pytest.mark.slow


def start(url: str, workdir: Path) -> ServerProcess:
    return start_strongroom(["--storage", url], workdir)


def init(server: ServerProcess) -> None:
    with server.client("") as c:
        body = c.put("/v1/sys/init", json={"secret_shares": 3, "secret_threshold": 2}).json()
    server.keys, server.token = body["keys"], body["root_token"]
    unseal(server)
    with server.client() as c:
        c.post("/v1/sys/mounts/secret", json={"type": "kv", "options": {"version": "2"}}).raise_for_status()


def unseal(server: ServerProcess, keys: list[str] | None = None) -> None:
    with server.client("") as c:
        for key in (keys or server.keys)[:2]:
            status = c.put("/v1/sys/unseal", json={"key": key}).json()
    assert status["sealed"] is False, status


def put(server: ServerProcess, path: str, value: str) -> None:
    with server.client() as c:
        c.post(f"/v1/secret/data/{path}", json={"data": {"v": value}}).raise_for_status()


def get(server: ServerProcess, path: str, token: str | None = None) -> str | None:
    with server.client(token) as c:
        r = c.get(f"/v1/secret/data/{path}")
    if r.status_code == 404:
        return None
    r.raise_for_status()
    value: str = r.json()["data"]["data"]["v"]
    return value


def sealed(server: ServerProcess) -> bool:
    with server.client("") as c:
        result: bool = c.get("/v1/sys/seal-status").json()["sealed"]
        return result


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    """An initialised, unsealed server on a sqlite file, KV v2 at secret/ with secret ``a`` = ``1``."""
    s = start(f"sqlite:///{tmp_path}/store/s.db", tmp_path)
    try:
        init(s)
        put(s, "a", "1")
        yield s
    finally:
        s.kill()


@pytest.fixture
def run(server: ServerProcess, cli: Callable[[VaultTarget], Runner]) -> Runner:
    return cli(VaultTarget(server.addr, server.token, "strongroom"))


def test_save_and_restore(server: ServerProcess, run: Runner, tmp_path: Path) -> None:
    path = tmp_path / "snap.bin"
    res = run("operator", "snapshot", "save", str(path))
    assert res.code == 0, res.err
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not (tmp_path / "snap.bin.partial").exists()
    assert "Records" in res.out and "Sha256" in res.out
    inspected = run("operator", "snapshot", "inspect", str(path), "-format=json")
    assert inspected.code == 0 and '"records"' in inspected.out
    put(server, "a", "2")
    put(server, "b", "new")
    res = run("operator", "snapshot", "restore", str(path))
    assert res.code == 0, res.err
    assert "sealed" in res.out
    assert sealed(server)
    unseal(server)
    assert get(server, "a") == "1"
    assert get(server, "b") is None


def test_tampered_snapshot_is_refused_by_the_server(
    server: ServerProcess, run: Runner, tmp_path: Path
) -> None:
    path = tmp_path / "snap.bin"
    assert run("operator", "snapshot", "save", str(path)).code == 0
    data = bytearray(path.read_bytes())
    data[-1] ^= 1  # the HMAC: structure, count and digest still check out locally
    path.write_bytes(bytes(data))
    put(server, "a", "2")
    res = run("operator", "snapshot", "restore", str(path))
    assert res.code == 2
    assert "authentication" in res.err
    assert not sealed(server)
    assert get(server, "a") == "2"


def test_truncated_snapshot_is_refused_before_sending(
    server: ServerProcess, run: Runner, tmp_path: Path
) -> None:
    path = tmp_path / "snap.bin"
    assert run("operator", "snapshot", "save", str(path)).code == 0
    path.write_bytes(path.read_bytes()[:-100])
    res = run("operator", "snapshot", "restore", str(path))
    assert res.code == 1
    assert "truncated" in res.err
    assert run("operator", "snapshot", "inspect", str(path)).code == 1
    assert not sealed(server)


def test_save_needs_sudo_and_leaves_no_file(server: ServerProcess, run: Runner, tmp_path: Path) -> None:
    with server.client() as c:
        c.put(
            "/v1/sys/policies/acl/snap",
            json={"policy": 'path "sys/storage/raft/snapshot" { capabilities = ["read"] }'},
        ).raise_for_status()
        token = c.post("/v1/auth/token/create", json={"policies": ["snap"]}).json()["auth"]["client_token"]
    path = tmp_path / "snap.bin"
    res = run("operator", "snapshot", "save", str(path), token=token)
    assert res.code == 2
    assert "permission denied" in res.err
    assert not path.exists() and not (tmp_path / "snap.bin.partial").exists()


def test_other_cluster_needs_force(server: ServerProcess, run: Runner, tmp_path: Path) -> None:
    other = start("memory://", tmp_path)
    try:
        init(other)
        put(other, "theirs", "x")
        theirs = tmp_path / "theirs.bin"
        with other.client() as c:
            theirs.write_bytes(c.get("/v1/sys/storage/raft/snapshot").content)
    finally:
        other.kill()
    res = run("operator", "snapshot", "restore", str(theirs))
    assert res.code == 2 and "snapshot-force" in res.err
    assert not sealed(server)
    res = run("operator", "snapshot", "restore", "-force", str(theirs))
    assert res.code == 0, res.err
    unseal(server, other.keys)
    assert get(server, "theirs", other.token) == "x"


def test_vault_tooling_drives_the_endpoints(server: ServerProcess, tmp_path: Path) -> None:
    import hvac

    client = hvac.Client(url=server.addr, token=server.token)
    taken = client.sys.take_raft_snapshot()
    assert taken.status_code == 200
    put(server, "a", "2")
    assert client.sys.restore_raft_snapshot(taken.content).status_code == 204
    assert sealed(server)
    unseal(server)
    assert get(server, "a") == "1"
    # bao's restore posts the file as it is; its save expects Vault's raft archive, so it is not used here
    from tests.cli.targets import require_bao

    bao = require_bao()
    path = tmp_path / "snap.bin"
    path.write_bytes(taken.content)
    put(server, "a", "3")
    env = {"PATH": os.environ.get("PATH", ""), "VAULT_ADDR": server.addr, "VAULT_TOKEN": server.token,
           "HOME": str(tmp_path)}  # fmt: skip
    done = subprocess.run([bao, "operator", "raft", "snapshot", "restore", str(path)], env=env,
                          capture_output=True, timeout=60, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert sealed(server)
    unseal(server)
    assert get(server, "a") == "1"


def test_offline_restore_of_an_interrupted_restore(
    server: ServerProcess, run: Runner, tmp_path: Path, cli: Callable[[VaultTarget], Runner]
) -> None:
    path = tmp_path / "snap.bin"
    assert run("operator", "snapshot", "save", str(path)).code == 0
    put(server, "a", "2")
    server.kill()
    db = tmp_path / "store" / "s.db"
    url = f"sqlite:///{db}"

    async def interrupted_restore() -> None:
        # what a node that crashed half-way through a restore leaves behind
        store = SqliteStore(db)
        data = path.read_bytes()
        try:
            verified = snapshot.verify_snapshot(
                io.BytesIO(data), kek=None, limits=store.limits, cluster_id=None, force=True
            )
            with pytest.raises(StorageUnavailable):
                await snapshot.restore_verified(
                    SpyStore(store, fail_after=1), io.BytesIO(data), verified, chunk_ops=2, retry_delay=0
                )
        finally:
            await store.close()

    asyncio.run(interrupted_restore())
    again = start(url, tmp_path)
    try:
        with again.client("") as c:
            for key in server.keys[:2]:
                r = c.put("/v1/sys/unseal", json={"key": key})
            assert r.status_code == 400  # no keyring: it cannot be unsealed
            assert c.put("/v1/sys/init", json={"secret_shares": 1, "secret_threshold": 1}).status_code >= 400
    finally:
        again.kill()
    offline = cli(VaultTarget("http://127.0.0.1:1", "", "strongroom"))
    usage = offline("operator", "snapshot", "restore", "-offline", str(path))
    assert usage.code == 1 and "-storage" in usage.err
    wrong = offline(
        "operator", "snapshot", "restore", "-offline", "-storage", url, str(path), keys=["11" * 33, "22" * 33]
    )
    assert wrong.code == 1 and "do not open" in wrong.err
    res = offline(
        "operator", "snapshot", "restore", "-offline", "-storage", url, str(path), keys=server.keys[:2]
    )
    assert res.code == 0, res.err
    assert len(res.prompts) == 2 and "Unseal Key 1 of 2" in res.prompts[0]
    assert any(line.startswith("Authenticated") and line.endswith("True") for line in res.out.splitlines())
    restored = start(url, tmp_path)
    try:
        unseal(restored, server.keys)
        restored.token = server.token
        assert get(restored, "a") == "1"
    finally:
        restored.kill()


def test_docs_example_runs(tmp_path: Path) -> None:
    """The one ```sh block of docs/operations/migrate-and-snapshot.md runs as written (on a free port)."""
    doc = (ROOT / "docs" / "operations" / "migrate-and-snapshot.md").read_text()
    blocks = re.findall(r"```sh\n(.*?)```", doc, re.S)
    assert len(blocks) == 1
    for tool in ("jq", "curl"):
        require_binary(tool)
    port = free_port()
    # -e: any failing command (a `test` included) fails the run; the trap stops servers left running.
    script = "set -euo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n" + blocks[0].replace(
        "127.0.0.1:8310", f"127.0.0.1:{port}"
    )
    env = {
        "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
        "HOME": str(tmp_path),
        "TMPDIR": str(tmp_path),
    }
    proc = subprocess.Popen(
        ["bash", "-c", script],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=240)
    finally:
        # The script and its servers form one process group of our own: stop whatever is left of it.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == 0, out.decode(errors="replace")
    assert b"Success! Migrated and verified." in out
    assert b"Success! Snapshot restored." in out


def test_restore_seals_every_worker(tmp_path: Path, cli: Callable[[VaultTarget], Runner]) -> None:
    """With ``--workers 2`` the restore seals the whole node, not only the worker that took it."""
    server = start_strongroom(["--storage", f"sqlite:///{tmp_path}/w/s.db", "--workers", "2"], tmp_path)
    try:
        init(server)
        put(server, "a", "1")
        run = cli(VaultTarget(server.addr, server.token, "strongroom"))
        path = tmp_path / "snap.bin"
        assert run("operator", "snapshot", "save", str(path)).code == 0
        put(server, "a", "2")
        assert run("operator", "snapshot", "restore", str(path)).code == 0
        # new connections land on either worker: every one of them answers sealed
        for _ in range(12):
            assert sealed(server)
            with server.client() as c:
                assert c.get("/v1/secret/data/a").status_code == 503
        unseal(server)
        for _ in range(12):
            assert get(server, "a") == "1"
    finally:
        server.kill()
