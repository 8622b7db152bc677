"""``sys/seal`` through a worker that sealed itself for a moment, as real processes (``--workers 2``).

After a platform rekey commits in worker A, worker B holds the old root key until the supervisor hands it
the new one; a request B serves in between finds that its key no longer opens the stored keyring and seals
B alone. ``sys/seal`` through B then used to answer 204 at once ("already sealed") while the supervisor
and worker A kept the node unsealed, and a moment later B was unsealed again too.

To hold that moment open for as long as the test needs, the supervisor is stopped (``SIGSTOP``) before the
rekey and continued (``SIGCONT``) once B took the call under test: the new key cannot reach B meanwhile,
and B's questions to the supervisor wait for it. "B took the call" is B's answer, or the debug log line B
writes before it asks the supervisor (the server runs with ``--log-level debug``). The connections are
pinned to the workers as in tests/cli/test_workers.py (the hidden ``--debug-worker-header``).
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.cli.test_workers import Workers
from tests.support.server import ServerProcess, start_strongroom

pytestmark = pytest.mark.slow

WAIT = 60.0
"""Upper bound for a process to stop, or a worker to receive the node's key (never a timing assertion)."""
ASKING = "sys/seal through a worker without keys: asking the supervisor"
"""The start of the debug line a worker without keys logs before it asks the supervisor (core/worker_link.py)."""


def _wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    pytest.fail(f"not within {WAIT:.0f} s: {what}")


def _state(pid: int) -> str:
    """The process state letter of ``pid`` (``T``: stopped)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat[stat.rindex(")") + 2]


@contextmanager
def _supervisor_stopped(server: ServerProcess) -> Iterator[None]:
    """Stop the supervisor (the server process itself) until the block ends: it then continues."""
    pid = server.proc.pid
    os.kill(pid, signal.SIGSTOP)
    try:
        _wait_until(lambda: _state(pid) == "T", "the supervisor is stopped")
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


class _InFlight:
    """One request sent through a pinned worker connection from a thread (it may wait for the supervisor).

    The constructor returns once the worker answered or wrote :data:`ASKING` to the server's log.
    """

    def __init__(self, workers: Workers, pid: int, method: str, path: str, token: str = "") -> None:
        self.response: httpx.Response | None = None
        self.error: BaseException | None = None
        asked = workers.server.log().count(ASKING)
        self._thread = threading.Thread(target=self._run, args=(workers, pid, method, path, token))
        self._thread.start()
        _wait_until(
            lambda: not self._thread.is_alive() or workers.server.log().count(ASKING) > asked,
            f"worker {pid} answered {method} {path} or asks the supervisor",
        )

    def _run(self, workers: Workers, pid: int, method: str, path: str, token: str) -> None:
        try:
            self.response = workers.call(pid, method, path, token)
        except BaseException as exc:  # re-raised in the test's thread by result()
            self.error = exc

    def result(self) -> httpx.Response:
        self._thread.join(WAIT)
        assert not self._thread.is_alive(), f"no answer within {WAIT:.0f} s"
        if self.error is not None:
            raise self.error
        assert self.response is not None
        return self.response


@pytest.fixture
def node(tmp_path: Path) -> Iterator[tuple[ServerProcess, Workers]]:
    server = start_strongroom(
        ["--workers", "2", "--storage", f"sqlite:///{tmp_path / 'store.db'}", "--debug-worker-header",
         "--log-level", "debug"],
        tmp_path,
    )
    workers = Workers(server)
    try:
        yield server, workers
    finally:
        workers.close()
        os.kill(server.proc.pid, signal.SIGCONT)  # harmless if it runs; a stopped one could not stop
        server.kill(signal.SIGTERM)


def _ok(response: httpx.Response) -> Any:
    assert 200 <= response.status_code < 300, (response.status_code, response.text)
    return response.json() if response.status_code != 204 else None


def _rekey(workers: Workers, pid: int, token: str, key: str) -> str:
    """Rekey the platform to a new 1-of-1 key through worker ``pid``; return the new key."""
    nonce = _ok(workers.call(pid, "PUT", "sys/rekey/init", token, json={"secret_shares": 1,
                                                                          "secret_threshold": 1}))["nonce"]  # fmt: skip
    done = _ok(workers.call(pid, "PUT", "sys/rekey/update", token, json={"key": key, "nonce": nonce}))
    assert done["complete"] is True
    new: str = done["keys"][0]
    return new


def _serves(workers: Workers, pid: int, token: str) -> bool:
    return workers.call(pid, "GET", "auth/token/lookup-self", token).status_code == 200


def _sealed(workers: Workers, pid: int) -> bool:
    """What the worker says through ``sys/health`` (answered from the worker alone, no supervisor needed)."""
    sealed: bool = workers.call(pid, "GET", "sys/health").json()["sealed"]
    return sealed


Unsealed = tuple[ServerProcess, Workers, int, int, str, str]


@pytest.fixture
def unsealed(node: tuple[ServerProcess, Workers]) -> Unsealed:
    """The node initialised (one 1-of-1 key) and unsealed, both workers serving: ``(server, workers, a, b,
    key, root token)``."""
    server, workers = node
    a, b = workers.find(2)
    init = _ok(workers.call(a, "PUT", "sys/init", json={"secret_shares": 1, "secret_threshold": 1}))
    key, token = init["keys"][0], init["root_token"]
    assert _ok(workers.call(a, "PUT", "sys/unseal", json={"key": key}))["sealed"] is False
    _wait_until(lambda: _serves(workers, b, token), "worker B got the node's key")
    return server, workers, a, b, key, token


def test_without_a_token_it_is_refused_and_nothing_is_sealed(unsealed: Unsealed) -> None:
    """B sealed itself after A's rekey while the node stays unsealed: a seal without a token is refused (it
    used to be a 204 that sealed nothing), and the node stays unsealed."""
    server, workers, a, b, key, token = unsealed
    with _supervisor_stopped(server):
        _rekey(workers, a, token, key)
        assert workers.call(b, "GET", "auth/token/lookup-self", token).status_code == 503
        assert _sealed(workers, b) and not _sealed(workers, a)
        anonymous = _InFlight(workers, b, "PUT", "sys/seal")
    response = anonymous.result()
    assert response.status_code == 403, response.text
    _wait_until(lambda: _serves(workers, b, token), "worker B got the new key")
    assert _serves(workers, a, token) and not _sealed(workers, a) and not _sealed(workers, b)


def test_with_the_root_token_it_seals_every_worker(unsealed: Unsealed) -> None:
    """The same with the root token: 204 (it used to be a 204 that left A serving and B unsealed again a
    moment later), and when it returns no worker serves; the newest key unseals the node."""
    server, workers, a, b, key, token = unsealed
    with _supervisor_stopped(server):
        key = _rekey(workers, a, token, key)
        assert workers.call(b, "GET", "auth/token/lookup-self", token).status_code == 503
        sealing = _InFlight(workers, b, "PUT", "sys/seal", token)
    response = sealing.result()
    assert response.status_code == 204, response.text
    for pid in (a, b):
        assert _sealed(workers, pid)
        assert workers.call(pid, "GET", "auth/token/lookup-self", token).status_code == 503
        assert _ok(workers.call(pid, "GET", "sys/seal-status"))["sealed"] is True
    assert _ok(workers.call(b, "PUT", "sys/unseal", json={"key": key}))["sealed"] is False
    _wait_until(lambda: _serves(workers, a, token), "worker A got the key of the new unseal")


def test_a_worker_whose_key_goes_obsolete_during_the_seal_seals_every_worker(unsealed: Unsealed) -> None:
    """B has not noticed A's rekey yet: ``sys/seal`` is the first request it takes afterwards, and its key
    goes obsolete while it checks the token (it used to answer 503 and leave the node unsealed)."""
    server, workers, a, b, key, token = unsealed
    with _supervisor_stopped(server):
        key = _rekey(workers, a, token, key)
        sealing = _InFlight(workers, b, "PUT", "sys/seal", token)
    response = sealing.result()
    assert response.status_code == 204, response.text
    for pid in (a, b):
        assert _sealed(workers, pid)
        assert workers.call(pid, "GET", "auth/token/lookup-self", token).status_code == 503
    assert _ok(workers.call(a, "PUT", "sys/unseal", json={"key": key}))["sealed"] is False
    _wait_until(lambda: _serves(workers, b, token), "worker B got the key of the new unseal")
