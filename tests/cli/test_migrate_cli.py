"""``strongroom operator migrate`` with real server processes: fill a store through a server, stop it, copy
the store to another backend with the command, start a server on the copy, unseal it and read everything
back. PostgreSQL, Redis and etcd destinations use their own schema, key prefix or etcd prefix, removed
afterwards (an unreachable service skips locally and fails in CI)."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from strongroom.cli.main import main
from tests.support.server import ServerProcess, start_strongroom

pytestmark = pytest.mark.slow

SECRETS = {f"app/{i}": {"n": str(i), "pad": "p" * (i * 50)} for i in range(15)}


def init_and_fill(server: ServerProcess) -> None:
    """Initialise (3 shares, threshold 2), unseal, mount KV v2 at secret/ and write :data:`SECRETS`."""
    with server.client("") as c:
        body = c.put("/v1/sys/init", json={"secret_shares": 3, "secret_threshold": 2}).json()
        server.keys, server.token = body["keys"], body["root_token"]
        for key in server.keys[:2]:
            c.put("/v1/sys/unseal", json={"key": key}).raise_for_status()
    with server.client() as c:
        c.post("/v1/sys/mounts/secret", json={"type": "kv", "options": {"version": "2"}}).raise_for_status()
        for path, data in SECRETS.items():
            c.post(f"/v1/secret/data/{path}", json={"data": data}).raise_for_status()


def check_served(url: str, workdir: Path, keys: list[str], token: str) -> None:
    """Start a server on ``url``, unseal it with ``keys`` and read every secret back; stop it."""
    server = start_strongroom(["--storage", url], workdir)
    try:
        with server.client("") as c:
            assert c.get("/v1/sys/seal-status").json()["sealed"] is True
            for key in keys[:2]:
                status = c.put("/v1/sys/unseal", json={"key": key}).json()
            assert status["sealed"] is False
        with server.client(token) as c:
            for path, data in SECRETS.items():
                r = c.get(f"/v1/secret/data/{path}")
                assert r.status_code == 200, r.text
                assert r.json()["data"]["data"] == data
    finally:
        server.kill()


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def filled(tmp_path: Path) -> tuple[str, ServerProcess]:
    """A sqlite store filled through a server that has been stopped again (offline)."""
    url = f"sqlite:///{tmp_path}/source/strongroom.db"  # four slashes: absolute
    server = start_strongroom(["--storage", url], tmp_path)
    try:
        init_and_fill(server)
    finally:
        server.kill()
    return url, server


def digests(out: str) -> dict[str, tuple[str, str]]:
    return {
        m[0]: (m[1], m[2]) for m in re.findall(r"^(\w+)\s+(\d+) records, sha256 ([0-9a-f]{64})$", out, re.M)
    }


def test_help_says_offline(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "operator", "migrate", "--help")
    assert code == 0
    assert "OFFLINE" in out and "-force" in out


def test_sqlite_to_sqlite_and_served(
    filled: tuple[str, ServerProcess], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source, server = filled
    dest = f"sqlite:///{tmp_path}/dest/strongroom.db"
    code, out, err = run(capsys, "operator", "migrate", "-from", source, "-to", dest)
    assert code == 0, err
    rows = digests(out)
    assert rows["Copied"] == rows["Source"] == rows["Destination"]
    assert int(rows["Source"][0]) > len(SECRETS)
    assert "Success! Migrated and verified." in out
    # the two stores compare equal, also as JSON (before a server ran on the copy: serving writes)
    code, out, err = run(
        capsys, "operator", "migrate", "-from", source, "-to", dest, "-verify-only", "-format=json"
    )
    assert code == 0, err
    assert '"verified": true' in out
    check_served(dest, tmp_path, server.keys, server.token)


def test_non_empty_destination_is_refused_and_left_alone(
    filled: tuple[str, ServerProcess], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source, _ = filled
    other = tmp_path / "other"
    code, _, err = run(capsys, "operator", "migrate", "-from", source, "-to", f"sqlite:///{other}/s.db")
    assert code == 0, err
    before = (other / "s.db").read_bytes()
    code, out, err = run(capsys, "operator", "migrate", "-from", source, "-to", f"sqlite:///{other}/s.db")
    assert code == 1
    assert "not empty" in err and out == ""
    assert (other / "s.db").read_bytes() == before
    code, _, err = run(capsys, "operator", "migrate", "-from", source, "-to", source)
    assert code == 1 and "same store" in err


def test_verify_only_reports_a_mismatch_with_exit_2(
    filled: tuple[str, ServerProcess], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source, _ = filled
    empty = f"sqlite:///{tmp_path}/empty/s.db"
    code, out, err = run(capsys, "operator", "migrate", "-from", source, "-to", empty, "-verify-only")
    assert code == 2
    assert "verification failed" in err
    rows = digests(out)
    assert rows["Destination"][0] == "0" and rows["Source"] != rows["Destination"]


def test_bad_urls_are_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "operator", "migrate", "-from", "nope://x", "-to", "memory://")
    assert code == 1 and "unknown storage URL scheme" in err
    code, _, err = run(capsys, "operator", "migrate", "-to", "memory://")
    assert code == 1 and "required" in err


# -- networked destinations -------------------------------------------------------------------------------


def _postgresql() -> tuple[str, Callable[[], object]]:
    from tests.conformance import factory_postgresql as pg

    pg.require_server()
    schema = pg.new_schema()
    return f"{pg.URL}?schema={schema}", lambda: asyncio.run(pg.drop_schema(schema))


def _redis() -> tuple[str, Callable[[], object]]:
    from tests.conformance import factory_redis as rd

    rd.require_redis()
    prefix = f"srtest:{uuid.uuid4().hex}:"
    return f"{rd.URL}?prefix={prefix}", lambda: asyncio.run(rd.delete_prefix(prefix))


def _etcd() -> tuple[str, Callable[[], object]]:
    from strongroom.storage.etcd import EtcdStore
    from tests.support.etcd import shared_cluster

    cluster = shared_cluster()
    endpoints = [("127.0.0.1", m.client_port) for m in cluster.members]
    prefix = f"srtest-{uuid.uuid4().hex}/"

    async def purge() -> None:
        store = EtcdStore(endpoints, prefix=prefix.encode())
        try:
            await store.purge()
        finally:
            await store.close()

    hosts = ",".join(f"{h}:{p}" for h, p in endpoints)
    return f"etcd://{hosts}?prefix={prefix}", lambda: asyncio.run(purge())


@pytest.mark.parametrize("backend", ["postgresql", "redis", "etcd"])
def test_sqlite_to_networked_backend_and_served(
    backend: str, filled: tuple[str, ServerProcess], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source, server = filled
    dest, cleanup = {"postgresql": _postgresql, "redis": _redis, "etcd": _etcd}[backend]()
    try:
        code, out, err = run(capsys, "operator", "migrate", "-from", source, "-to", dest)
        assert code == 0, err
        rows = digests(out)
        assert rows["Source"] == rows["Destination"]
        # and back again, into a fresh sqlite file: the same digest as the original
        back = f"sqlite:///{tmp_path}/back/s.db"
        code, out, err = run(capsys, "operator", "migrate", "-from", dest, "-to", back)
        assert code == 0, err
        assert digests(out)["Destination"] == rows["Source"]
        check_served(dest, tmp_path, server.keys, server.token)
    finally:
        cleanup()
