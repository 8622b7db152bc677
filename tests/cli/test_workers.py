"""``strongroom server --workers 2`` as real processes: one node, two workers, one shared listening socket.

Which worker serves a request is the kernel's choice (each accepts on the socket the supervisor bound), so
the tests open fresh connections until they hold one to each worker, named by the ``X-Strongroom-Worker``
header that ``--debug-worker-header`` adds; a keep-alive connection stays with the worker that accepted it,
which makes "share 1 through worker A, share 2 through worker B" deterministic.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from strongroom.cli.config import parse_config
from strongroom.errors import InvalidRequest
from tests.support.server import ServerProcess, free_port, start_strongroom

pytestmark = pytest.mark.slow

HEADER = "x-strongroom-worker"
WAIT = 60.0
"""Upper bound for the supervisor to restart a worker or for workers to exit (never a timing assertion)."""
IDLE = 20.0
"""granian closes a keep-alive connection idle for 30 s (hyper's header read timeout): re-pin before that."""


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie left to a non-reaping init counts as exited)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def _wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    pytest.fail(f"not within {WAIT:.0f} s: {what}")


class Workers:
    """One keep-alive connection per worker process of a running node, keyed by worker pid."""

    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        self.clients: dict[int, httpx.Client] = {}
        self.used: dict[int, float] = {}

    def find(self, count: int = 2, *, exclude: frozenset[int] = frozenset()) -> list[int]:
        """Open connections until ``count`` distinct live workers (not in ``exclude``) answered."""
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            for gone in [pid for pid in self.clients if not _alive(pid)]:
                self.clients.pop(gone).close()
            live = [pid for pid in self.clients if pid not in exclude]
            if len(live) >= count:
                return live[:count]
            client = httpx.Client(
                base_url=self.server.addr, timeout=30, limits=httpx.Limits(max_connections=1)
            )
            try:
                pid = int(client.get("/v1/sys/seal-status").headers[HEADER])
            except httpx.HTTPError:
                client.close()
                time.sleep(0.05)
                continue
            if pid in self.clients or pid in exclude:
                client.close()
            else:
                self.clients[pid], self.used[pid] = client, time.monotonic()
        pytest.fail(
            f"fewer than {count} workers answered within {WAIT:.0f} s (saw {sorted(self.clients)})\n"
            + self.server.log()[-4000:]
        )

    def call(self, pid: int, method: str, path: str, token: str = "", **kwargs: object) -> httpx.Response:
        """Send one request through worker ``pid``'s connection and check it went there."""
        headers = {"X-Vault-Token": token} if token else {}
        if time.monotonic() - self.used[pid] > IDLE:
            self._repin(pid)
        self.used[pid] = time.monotonic()
        response = self.clients[pid].request(method, "/v1/" + path, headers=headers, **kwargs)  # type: ignore[arg-type]
        assert int(response.headers[HEADER]) == pid, "the keep-alive connection moved to another worker"
        return response

    def _repin(self, pid: int) -> None:
        """Make sure the connection to ``pid`` is still its own (the server may have closed it as idle)."""
        client = self.clients[pid]
        if int(client.get("/v1/sys/seal-status").headers[HEADER]) == pid:
            return
        client.close()
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            client = httpx.Client(
                base_url=self.server.addr, timeout=30, limits=httpx.Limits(max_connections=1)
            )
            if int(client.get("/v1/sys/seal-status").headers[HEADER]) == pid:
                self.clients[pid] = client
                return
            client.close()
        pytest.fail(f"no new connection reached worker {pid} within {WAIT:.0f} s")

    def close(self) -> None:
        for client in self.clients.values():
            client.close()


@pytest.fixture(params=["per-worker sockets", "shared socket"])
def node(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[ServerProcess, Workers]]:
    shared = ["--shared-listener"] if request.param == "shared socket" else []
    server = start_strongroom(
        [
            "--workers",
            "2",
            "--storage",
            f"sqlite:///{tmp_path / 'store.db'}",
            "--debug-worker-header",
            *shared,
        ],
        tmp_path,
    )
    workers = Workers(server)
    try:
        yield server, workers
    finally:
        pids = list(workers.clients)
        workers.close()
        server.kill(signal.SIGTERM)
        for pid in pids:
            _wait_until(lambda pid=pid: not _alive(pid), f"worker {pid} exits with its supervisor")


def _status(workers: Workers, pid: int) -> dict[str, object]:
    body: dict[str, object] = workers.call(pid, "GET", "sys/seal-status").json()
    return body


def _unseal(workers: Workers, pid: int, key: str) -> dict[str, object]:
    response = workers.call(pid, "PUT", "sys/unseal", json={"key": key})
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def test_one_node_across_workers(node: tuple[ServerProcess, Workers]) -> None:
    server, workers = node
    a, b = workers.find(2)
    init = workers.call(a, "PUT", "sys/init", json={"secret_shares": 5, "secret_threshold": 3}).json()
    keys, token = init["keys"], init["root_token"]

    # The ceremony is the node's: progress made through one worker shows on the other, and resets there.
    assert _unseal(workers, a, keys[0])["progress"] == 1
    status = _status(workers, b)
    assert status["progress"] == 1 and status["nonce"] and status["sealed"] is True
    assert workers.call(b, "PUT", "sys/unseal", json={"reset": True}).json()["progress"] == 0
    assert _status(workers, a)["progress"] == 0

    # Shares over different connections to different workers; completing on A unseals B before A answers.
    assert _unseal(workers, a, keys[0])["progress"] == 1
    assert _unseal(workers, b, keys[1])["progress"] == 2
    assert _unseal(workers, a, keys[2])["sealed"] is False
    assert _status(workers, b)["sealed"] is False and _status(workers, b)["progress"] == 0
    workers.call(a, "POST", "sys/mounts/secret", token, json={"type": "kv", "options": {"version": "2"}})
    written = workers.call(a, "POST", "secret/data/app", token, json={"data": {"v": "one"}})
    assert written.status_code == 200, written.text
    for pid in (a, b):
        assert workers.call(pid, "GET", "auth/token/lookup-self", token).status_code == 200
        assert workers.call(pid, "GET", "secret/data/app", token).json()["data"]["data"] == {"v": "one"}

    # Seal through B: A is sealed by the time B answers.
    assert workers.call(b, "PUT", "sys/seal", token).status_code == 204
    assert workers.call(a, "GET", "sys/health").status_code == 503
    assert workers.call(a, "GET", "secret/data/app", token).status_code == 503
    assert _status(workers, a)["sealed"] is True

    # A worker killed with SIGKILL comes back unsealed, with no new ceremony.
    for i, pid in enumerate((b, a, b)):
        assert _unseal(workers, pid, keys[i + 2])["sealed"] is (i < 2)
    os.kill(a, signal.SIGKILL)
    (new,) = workers.find(1, exclude=frozenset({a, b}))
    assert new != a and "restarting" in server.log()
    assert _status(workers, new)["sealed"] is False
    assert workers.call(new, "GET", "secret/data/app", token).json()["data"]["data"] == {"v": "one"}
    assert workers.call(b, "GET", "secret/data/app", token).status_code == 200


def test_rekey_through_one_worker_reaches_the_others_and_restarts(
    node: tuple[ServerProcess, Workers],
) -> None:
    _, workers = node
    a, b = workers.find(2)
    init = workers.call(a, "PUT", "sys/init", json={"secret_shares": 3, "secret_threshold": 2}).json()
    token = init["root_token"]
    _unseal(workers, a, init["keys"][0])
    _unseal(workers, b, init["keys"][1])
    nonce = workers.call(a, "PUT", "sys/rekey/init", token, json={"secret_shares": 1, "secret_threshold": 1})
    done: dict[str, object] = {}
    for key in init["keys"][:2]:
        done = workers.call(
            a, "PUT", "sys/rekey/update", token, json={"key": key, "nonce": nonce.json()["nonce"]}
        ).json()
    assert done["complete"] is True
    (new_key,) = done["keys"]  # type: ignore[misc]
    # B learns the new root key from the supervisor (it may seal itself for a moment before it arrives).
    _wait_until(lambda: workers.call(b, "GET", "auth/token/lookup-self", token).status_code == 200,
                "worker B serves after a rekey through worker A")  # fmt: skip
    assert (_status(workers, b)["t"], _status(workers, b)["n"]) == (1, 1)
    os.kill(b, signal.SIGKILL)
    (restarted,) = workers.find(1, exclude=frozenset({a, b}))
    assert workers.call(restarted, "GET", "auth/token/lookup-self", token).status_code == 200
    # The node seals and unseals with the new single key.
    workers.call(restarted, "PUT", "sys/seal", token)
    assert _unseal(workers, a, new_key)["sealed"] is False
    assert _status(workers, restarted)["sealed"] is False


def test_workers_never_outlive_the_supervisor(node: tuple[ServerProcess, Workers]) -> None:
    server, workers = node
    pids = workers.find(2)
    server.kill(signal.SIGKILL)
    for pid in pids:
        _wait_until(lambda pid=pid: not _alive(pid), f"worker {pid} exits after its supervisor was killed")


def test_sigterm_stops_every_worker_cleanly(tmp_path: Path) -> None:
    server = start_strongroom(["--workers", "2", "--storage", f"sqlite:///{tmp_path / 's.db'}",
                               "--debug-worker-header"], tmp_path)  # fmt: skip
    workers = Workers(server)
    try:
        pids = workers.find(2)
    finally:
        workers.close()
        server.kill(signal.SIGTERM)
    assert server.proc.returncode == 0
    assert all(not _alive(pid) for pid in pids)  # the supervisor reaped them before it exited
    assert "was killed" not in server.log()


def test_dev_mode_with_two_workers(tmp_path: Path) -> None:
    server = start_strongroom(["--dev", "--dev-root-token-id", "root", "--workers", "2",
                               "--storage", f"sqlite:///{tmp_path / 'dev.db'}", "--debug-worker-header"],
                              tmp_path)  # fmt: skip
    workers = Workers(server)
    try:
        a, b = workers.find(2)
        assert workers.call(a, "POST", "secret/data/x", "root", json={"data": {"k": "v"}}).status_code == 200
        assert workers.call(b, "GET", "secret/data/x", "root").json()["data"]["data"] == {"k": "v"}
        assert server.log().count("Root Token: root") == 1  # one worker initialised and printed the banner
    finally:
        workers.close()
        server.kill(signal.SIGTERM)


@pytest.mark.parametrize("mode", [[], ["--shared-listener"]], ids=["per-worker sockets", "shared socket"])
def test_refusals(tmp_path: Path, mode: list[str]) -> None:
    taken = start_strongroom(
        ["--workers", "2", *mode, "--storage", f"sqlite:///{tmp_path / 'a.db'}"], tmp_path
    )
    try:
        port = int(taken.addr.rsplit(":", 1)[1])
        # No second server joins the port, whether it would use SO_REUSEPORT sockets or not.
        for extra in (["--workers", "2"], ["--workers", "2", "--shared-listener"], []):
            second = _run(tmp_path, [*extra, "--storage", f"sqlite:///{tmp_path / 'b.db'}"], port)
            assert second.returncode == 1 and "cannot listen" in second.stderr
    finally:
        taken.kill(signal.SIGTERM)
    memory = _run(tmp_path, ["--workers", "2", "--storage", "memory://"], free_port())
    assert memory.returncode == 1 and "memory storage is per process" in memory.stderr
    with pytest.raises(InvalidRequest, match="workers must be between 1 and 256"):
        parse_config("workers = 0")
    assert parse_config("workers = 4").workers == 4


def _run(cwd: Path, args: list[str], port: int) -> subprocess.CompletedProcess[str]:
    exe = str(Path(sys.executable).parent / "strongroom")
    return subprocess.run([exe, "server", *args, "--listen", f"127.0.0.1:{port}"], cwd=cwd, capture_output=True,
                          text=True, timeout=60, stdin=subprocess.DEVNULL, check=False)  # fmt: skip
