"""Platform rekey and generate-root with their progress in storage, as real processes.

* ``strongroom server --workers 2``: every step of a rekey (with verification) and of a root-token
  generation goes through one of two keep-alive connections, each pinned to another worker (the
  ``X-Strongroom-Worker`` header of the hidden ``--debug-worker-header`` flag names the worker's pid; see
  tests/cli/test_workers.py), alternating, and the ceremonies complete as through one connection.
* Two server processes over one SQLite file, each unsealed by its own ceremony: the same, alternating nodes.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.cli.test_workers import Workers
from tests.support.server import ServerProcess, start_strongroom

pytestmark = pytest.mark.slow

WAIT = 60.0
"""Upper bound for a worker to receive the node's new key from its supervisor."""
Call = Callable[..., httpx.Response]
"""``call(method, path, token="", json=None)`` through one worker or node."""


def _ok(call: Call, method: str, path: str, token: str = "", **kw: Any) -> Any:
    response = call(method, path, token, **kw)
    assert 200 <= response.status_code < 300, (method, path, response.status_code, response.text)
    return response.json() if response.status_code != 204 else None


def _rekey_with_verification(first: Call, second: Call, token: str, keys: list[str]) -> list[str]:
    """Rekey to 3-of-2 with verification, the calls alternating between ``first`` and ``second``; return
    the new shares (hex)."""
    started = _ok(first, "PUT", "sys/rekey/init", token,
                  json={"secret_shares": 3, "secret_threshold": 2, "require_verification": True})  # fmt: skip
    nonce = started["nonce"]
    seen = _ok(second, "GET", "sys/rekey/init", token)
    assert seen["started"] and seen["nonce"] == nonce and seen["progress"] == 0
    assert (
        _ok(second, "PUT", "sys/rekey/update", token, json={"key": keys[0], "nonce": nonce})["progress"] == 1
    )
    assert _ok(first, "GET", "sys/rekey/init", token)["progress"] == 1
    # A share already given through the other one is refused.
    dup = first("PUT", "sys/rekey/update", token, json={"key": keys[0], "nonce": nonce})
    assert dup.status_code == 400 and "already been provided" in dup.text
    done = _ok(first, "PUT", "sys/rekey/update", token, json={"key": keys[1], "nonce": nonce})
    assert done["complete"] is True and done["verification_required"] is True
    new, vnonce = done["keys"], done["verification_nonce"]
    assert _ok(second, "GET", "sys/rekey/verify", token) == {
        "nonce": vnonce, "started": True, "t": 2, "n": 3, "progress": 0,
    }  # fmt: skip
    assert (
        _ok(second, "PUT", "sys/rekey/verify", token, json={"key": new[2], "nonce": vnonce})["progress"] == 1
    )
    assert _ok(first, "PUT", "sys/rekey/verify", token, json={"key": new[0], "nonce": vnonce}) == {
        "nonce": vnonce, "complete": True,
    }  # fmt: skip
    assert not _ok(first, "GET", "sys/rekey/init", token)["started"]
    new_shares: list[str] = new
    return new_shares


def _root_token(first: Call, second: Call, keys: list[str]) -> str:
    """A new root token by generate-root, its shares through ``second`` then ``first``."""
    started = _ok(first, "PUT", "sys/generate-root/attempt", json={})
    otp, nonce = started["otp"], started["nonce"]
    assert _ok(second, "GET", "sys/generate-root/attempt")["nonce"] == nonce
    assert (
        _ok(second, "PUT", "sys/generate-root/update", json={"key": keys[0], "nonce": nonce})["progress"] == 1
    )
    done = _ok(first, "PUT", "sys/generate-root/update", json={"key": keys[1], "nonce": nonce})
    assert done["complete"] is True
    decoded = _ok(
        second, "PUT", "sys/decode-token", json={"encoded_token": done["encoded_token"], "otp": otp}
    )
    token: str = decoded["data"]["token"]
    return token


def _eventually(condition: Callable[[], bool], what: str) -> None:
    """Wait (bounded, never a timing assertion) until ``condition`` holds."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    pytest.fail(f"not within {WAIT:.0f} s: {what}")


def _unsealed_with(call: Call, keys: list[str]) -> bool:
    body: dict[str, Any] = {}
    for key in keys:
        response = call("PUT", "sys/unseal", json={"key": key})
        if response.status_code != 200:
            return False
        body = response.json()
    return body.get("sealed") is False


# -- one node, two workers -----------------------------------------------------------------------------------


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Workers]:
    server = start_strongroom(
        ["--workers", "2", "--storage", f"sqlite:///{tmp_path / 'store.db'}", "--debug-worker-header"],
        tmp_path,
    )
    pinned = Workers(server)
    try:
        yield pinned
    finally:
        pinned.close()
        server.kill(signal.SIGTERM)


def _through(workers: Workers, pid: int) -> Call:
    def call(method: str, path: str, token: str = "", **kw: Any) -> httpx.Response:
        return workers.call(pid, method, path, token, **kw)

    return call


def test_ceremonies_across_two_workers(workers: Workers) -> None:
    a, b = workers.find(2)
    via_a, via_b = _through(workers, a), _through(workers, b)
    init = _ok(via_a, "PUT", "sys/init", json={"secret_shares": 3, "secret_threshold": 2})
    old, token = init["keys"], init["root_token"]
    assert _ok(via_a, "PUT", "sys/unseal", json={"key": old[0]})["progress"] == 1
    assert _ok(via_b, "PUT", "sys/unseal", json={"key": old[1]})["sealed"] is False

    new = _rekey_with_verification(via_a, via_b, token, old)
    # The rekey committed in worker A; worker B gets the new key from the supervisor (it may seal itself for
    # the moment before it arrives). Then the node seals through B and unseals with new shares only.
    _eventually(lambda: via_b("GET", "auth/token/lookup-self", token).status_code == 200,
                "worker B serves with the new key")  # fmt: skip
    assert via_b("PUT", "sys/seal", token).status_code == 204
    assert via_a("GET", "sys/health").status_code == 503
    assert not _unsealed_with(via_b, old[:2])
    assert _unsealed_with(via_b, new[1:])
    for call in (via_a, via_b):
        status = _ok(call, "GET", "sys/seal-status")
        assert status["sealed"] is False and (status["t"], status["n"]) == (2, 3)

    root = _root_token(via_a, via_b, new)
    for call in (via_a, via_b):
        looked_up = _ok(call, "GET", "auth/token/lookup-self", root)["data"]
        assert looked_up["policies"] == ["root"]


# -- two nodes, one SQLite file ------------------------------------------------------------------------------


@pytest.fixture
def nodes(tmp_path: Path) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    store = f"sqlite:///{tmp_path / 'shared.db'}"
    a = start_strongroom(["--storage", store], tmp_path)
    b: ServerProcess | None = None
    try:
        b = start_strongroom(["--storage", store], tmp_path)
        yield a, b
    finally:
        a.kill()
        if b is not None:
            b.kill()


def _to(server: ServerProcess) -> Call:
    def call(method: str, path: str, token: str = "", **kw: Any) -> httpx.Response:
        headers = {"X-Vault-Token": token} if token else {}
        with httpx.Client(base_url=server.addr, timeout=30) as client:
            return client.request(method, "/v1/" + path, headers=headers, **kw)

    return call


def test_ceremonies_across_two_nodes_over_one_sqlite_file(nodes: tuple[ServerProcess, ServerProcess]) -> None:
    a, b = nodes
    to_a, to_b = _to(a), _to(b)
    init = _ok(to_a, "PUT", "sys/init", json={"secret_shares": 3, "secret_threshold": 2})
    old, token = init["keys"], init["root_token"]
    for call in (to_a, to_b):  # each node is unsealed by its own ceremony
        assert _unsealed_with(call, old[:2])

    new = _rekey_with_verification(to_b, to_a, token, old)
    # B committed and serves with the new key; A's key no longer opens the keyring: it sealed itself.
    assert to_b("GET", "auth/token/lookup-self", token).status_code == 200
    assert to_a("GET", "auth/token/lookup-self", token).status_code == 503
    assert not _unsealed_with(to_a, old[1:])
    assert _unsealed_with(to_a, new[:2])
    for call in (to_a, to_b):
        status = _ok(call, "GET", "sys/seal-status")
        assert status["sealed"] is False and (status["t"], status["n"]) == (2, 3)

    root = _root_token(to_b, to_a, new[1:])
    for call in (to_a, to_b):
        assert _ok(call, "GET", "auth/token/lookup-self", root)["data"]["policies"] == ["root"]
    # sys/seal on one node ends a ceremony in progress for both (progress in storage, as in Vault).
    _ok(to_a, "PUT", "sys/generate-root/attempt", json={})
    _ok(to_b, "PUT", "sys/seal", root)
    assert not _ok(to_a, "GET", "sys/generate-root/attempt")["started"]
