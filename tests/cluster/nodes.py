"""Several ``strongroom server`` processes (nodes) over one shared store, each unsealed by its own ceremony.

:func:`start_cluster` writes one configuration file (the backend's ``storage`` block), starts N servers
from it on free loopback ports (all at once, then waits for each), initialises the store through node 0
and unseals every node with the same shares, one ``sys/unseal`` call per share per node. Nodes are
stopped by PID (:meth:`Cluster.close`); a node can be killed (``kill -9``) and restarted on its port.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.cluster.backends import Backend
from tests.support.server import ServerProcess, free_port

VENV_BIN = Path(sys.executable).parent
BOUND = 120.0
"""Upper bound (seconds) of any wait in these tests: a hang, never a timing assertion."""
SHARES, THRESHOLD = 3, 2


def wait_for(condition: Callable[[], bool], what: str, bound: float = BOUND) -> None:
    """Poll ``condition`` until it holds; fail the test after ``bound`` seconds."""
    deadline = time.monotonic() + bound
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {bound:.0f} s: {what}")
        time.sleep(0.05)


@dataclass
class Node:
    """One server process of a cluster and a keep-alive client to it."""

    index: int
    port: int
    process: ServerProcess | None = None
    client: httpx.Client | None = None

    @property
    def addr(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.proc.poll() is None

    def log(self) -> str:
        return self.process.log() if self.process is not None else ""


@dataclass
class Cluster:
    """N nodes over one store; ``keys`` and ``root_token`` from the store's initialisation."""

    backend: Backend
    workdir: Path
    config_path: Path
    env: dict[str, str]
    nodes: list[Node] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    root_token: str = ""

    # -- requests ---------------------------------------------------------------------------------------

    def call(self, i: int, method: str, path: str, token: str | None = None, **kw: Any) -> httpx.Response:
        """``method /v1/path`` on node ``i`` with ``token`` (default root; ``""`` for none)."""
        client = self.nodes[i].client
        assert client is not None, f"node {i} is not running"
        tok = self.root_token if token is None else token
        headers = {"X-Vault-Token": tok} if tok else {}
        headers.update(kw.pop("headers", {}))
        return client.request(method, "/v1/" + path.lstrip("/"), headers=headers, **kw)

    def ok(self, i: int, method: str, path: str, token: str | None = None, **kw: Any) -> Any:
        """Like :meth:`call`, asserting a 2xx answer; the decoded body (``None`` for 204)."""
        r = self.call(i, method, path, token, **kw)
        assert 200 <= r.status_code < 300, (i, method, path, r.status_code, r.text)
        return r.json() if r.status_code != 204 else None

    def status(self, i: int, method: str, path: str, token: str | None = None, **kw: Any) -> int:
        """Only the status code of :meth:`call`."""
        return self.call(i, method, path, token, **kw).status_code

    # -- processes --------------------------------------------------------------------------------------

    def _spawn(self, node: Node) -> subprocess.Popen[bytes]:
        log_path = self.workdir / f"node{node.index}-{node.port}.log"
        with log_path.open("ab") as log:
            proc = subprocess.Popen(
                [str(VENV_BIN / "strongroom"), "server", "--config", str(self.config_path),
                 "--listen", f"127.0.0.1:{node.port}"],
                cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env={**os.environ, **self.env},
            )  # fmt: skip
        node.process = ServerProcess(proc, node.addr, log_path)
        return proc

    def _wait_answering(self, node: Node) -> None:
        assert node.process is not None
        proc = node.process.proc

        def answers() -> bool:
            if proc.poll() is not None:
                pytest.fail(f"node {node.index} exited with {proc.returncode}:\n{node.log()[-4000:]}")
            try:
                httpx.get(node.addr + "/v1/sys/seal-status", timeout=2)
            except httpx.HTTPError:
                return False
            return True

        wait_for(answers, f"node {node.index} answers")
        node.client = httpx.Client(base_url=node.addr, timeout=BOUND)

    def start(self, indexes: list[int]) -> None:
        """Start the given nodes (again) on their ports and wait until each answers (still sealed)."""
        for i in indexes:
            self._spawn(self.nodes[i])
        for i in indexes:
            self._wait_answering(self.nodes[i])

    def unseal(self, i: int) -> None:
        """Run node ``i``'s own unseal ceremony (``THRESHOLD`` shares)."""
        body: dict[str, Any] = {}
        for key in self.keys[:THRESHOLD]:
            body = self.ok(i, "PUT", "sys/unseal", token="", json={"key": key})
        assert body["sealed"] is False, body

    def kill(self, i: int, sig: int = signal.SIGKILL) -> None:
        """Stop node ``i`` by PID (``kill -9`` by default) and reap it."""
        node = self.nodes[i]
        if node.client is not None:
            node.client.close()
            node.client = None
        if node.process is not None:
            node.process.kill(sig)

    def restart(self, i: int) -> None:
        """Start a stopped node again on its port and unseal it."""
        self.start([i])
        self.unseal(i)

    def close(self) -> None:
        """Stop every node (SIGTERM, then SIGKILL) and close the clients."""
        for i in range(len(self.nodes)):
            with contextlib.suppress(Exception):
                self.kill(i, signal.SIGTERM)

    def logs(self) -> str:
        """The tail of every node's log (for failure messages)."""
        return "\n".join(f"--- node {n.index} ---\n{n.log()[-3000:]}" for n in self.nodes)


def start_cluster(
    backend: Backend, workdir: Path, count: int = 3, *, env: Mapping[str, str] | None = None, extra: str = ""
) -> Cluster:
    """Start ``count`` nodes over ``backend``, initialise through node 0 and unseal every node.

    ``env`` is added to the nodes' environment; ``extra`` to their configuration file.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    config_path = workdir / "node.hcl"
    config_path.write_text(backend.config() + extra)
    cluster = Cluster(backend, workdir, config_path, dict(env or {}))
    cluster.nodes = [Node(i, free_port()) for i in range(count)]
    try:
        cluster.start(list(range(count)))
        init = cluster.ok(0, "PUT", "sys/init", token="",
                          json={"secret_shares": SHARES, "secret_threshold": THRESHOLD})  # fmt: skip
        cluster.keys, cluster.root_token = init["keys"], init["root_token"]
        for i in range(count):
            cluster.unseal(i)
    except BaseException:
        cluster.close()
        raise
    return cluster
