"""Server process control: start a command, wait until it answers, read its CPU time, stop it.

CPU time comes from ``/proc/PID/stat`` (fields utime, stime, cutime, cstime) so that the
numbers are the kernel's accounting, not sampling. ``cpu_seconds`` sums the process, its
reaped children (cutime/cstime) and every *live* descendant, because multi-process servers
(granian, uvicorn --workers N) do the real work in children that are never reaped while the
benchmark runs.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

_CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    """Ask the kernel for a free TCP port on 127.0.0.1.

    There is a small race (another process may grab it before our server binds), which is
    acceptable for benchmarks; fixed ports are worse on a shared machine.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _read_stat(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the ``comm`` field, or None if the process is gone.

    ``comm`` may contain spaces and parentheses, so split after the *last* ``)``.
    """
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return raw[raw.rindex(")") + 2 :].split()


def _children_map() -> dict[int, list[int]]:
    """Map ppid -> [pid] for every process currently visible in /proc."""
    tree: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        fields = _read_stat(int(entry.name))
        if fields is None:
            continue
        # After comm: [0]=state, [1]=ppid.
        tree.setdefault(int(fields[1]), []).append(int(entry.name))
    return tree


def descendants(pid: int) -> list[int]:
    """All live descendants of ``pid`` (not including ``pid``)."""
    tree = _children_map()
    out: list[int] = []
    stack = list(tree.get(pid, []))
    while stack:
        child = stack.pop()
        out.append(child)
        stack.extend(tree.get(child, []))
    return out


def cpu_seconds(pid: int, include_children: bool = True) -> float:
    """User+system CPU seconds consumed so far by ``pid``.

    With ``include_children`` (the default) this adds reaped children (cutime+cstime) and all
    live descendants. Raises ``ProcessLookupError`` if ``pid`` itself no longer exists, since a
    silent 0 would produce a bogus "free" CPU figure.
    """
    fields = _read_stat(pid)
    if fields is None:
        raise ProcessLookupError(pid)
    # After comm, utime/stime/cutime/cstime are fields 14-17 of stat(5), i.e. indices 11-14 here.
    ticks = int(fields[11]) + int(fields[12])
    if include_children:
        ticks += int(fields[13]) + int(fields[14])
        for child in descendants(pid):
            child_fields = _read_stat(child)
            if child_fields is not None:
                ticks += int(child_fields[11]) + int(child_fields[12])
                ticks += int(child_fields[13]) + int(child_fields[14])
    return ticks / _CLK_TCK


def wait_for_url(
    url: str,
    timeout_s: float = 30.0,
    ok_statuses: Sequence[int] | None = None,
    proc: subprocess.Popen[bytes] | None = None,
) -> int:
    """Poll ``url`` with GET until it answers; return the status code.

    Any HTTP status counts as "answering" unless ``ok_statuses`` is given (e.g. a sealed
    OpenBao answers 503 on /sys/health, which is still "up"). If ``proc`` exits meanwhile we
    fail fast instead of waiting out the timeout.
    """
    deadline = time.monotonic() + timeout_s
    last_error: str = "no attempt"
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with code {proc.returncode} before {url} answered")
        status: int | None = None
        try:
            with urllib.request.urlopen(url, timeout=2.0) as resp:
                status = int(resp.status)
        except urllib.error.HTTPError as exc:
            status = int(exc.code)
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as exc:
            last_error = repr(exc)
        if status is not None:
            if ok_statuses is None or status in ok_statuses:
                return status
            last_error = f"status {status}"
        time.sleep(0.05)
    raise TimeoutError(f"{url} did not answer within {timeout_s}s ({last_error})")


@dataclass
class ServerProcess:
    """A server started by us in its own session, so we can stop it and its workers by PID.

    Use as a context manager, or call ``stop()``. ``log_path`` receives stdout+stderr, which
    keeps pipes from filling up (a full pipe would stall the server mid-benchmark).
    """

    argv: list[str]
    env: Mapping[str, str] | None = None
    cwd: str | os.PathLike[str] | None = None
    log_path: Path | None = None
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _log_file: object | None = field(default=None, init=False, repr=False)

    @property
    def pid(self) -> int:
        """PID of the started process."""
        if self.proc is None:
            raise RuntimeError("server not started")
        return self.proc.pid

    def start(self) -> ServerProcess:
        """Start the command; returns self for chaining."""
        full_env = dict(os.environ)
        if self.env:
            full_env.update(self.env)
        out = subprocess.DEVNULL
        if self.log_path is not None:
            log = self.log_path.open("ab")
            self._log_file = log
            out = log  # type: ignore[assignment]
        self.proc = subprocess.Popen(
            self.argv,
            env=full_env,
            cwd=self.cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # own process group == our PID, so stop() never hits others
        )
        return self

    def wait_ready(self, url: str, timeout_s: float = 30.0, ok_statuses: Sequence[int] | None = None) -> int:
        """Block until ``url`` answers (see ``wait_for_url``)."""
        return wait_for_url(url, timeout_s=timeout_s, ok_statuses=ok_statuses, proc=self.proc)

    def cpu_seconds(self) -> float:
        """CPU seconds used so far by the server and its workers."""
        return cpu_seconds(self.pid, include_children=True)

    def log_tail(self, lines: int = 20) -> str:
        """Last lines of the log, for error messages."""
        if self.log_path is None or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, timeout_s: float = 10.0) -> None:
        """SIGTERM our process group, then SIGKILL it if it does not exit in ``timeout_s``."""
        proc = self.proc
        if proc is None:
            return
        if proc.poll() is None:
            # The group id is the PID we started (start_new_session), so this only reaches
            # our server and the workers it forked.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=timeout_s)
        else:
            # Leader already gone; make sure orphaned workers in its group are too.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
        if self._log_file is not None:
            self._log_file.close()  # type: ignore[attr-defined]
            self._log_file = None
        self.proc = None

    def __enter__(self) -> ServerProcess:
        if self.proc is None:
            self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def asgi_server_argv(
    app: str,
    port: int,
    server: str = "uvicorn",
    python: str | None = None,
    workers: int = 1,
) -> list[str]:
    """Command line to serve the ASGI ``app`` ("module:attr") on 127.0.0.1:``port``.

    ``server`` is "uvicorn" (forced to httptools + uvloop so the choice is explicit, not
    auto-detected) or "granian" (ASGI interface, uvloop). Access logs are off for both: they
    cost more than the endpoints being measured.
    """
    import sys

    py = python or sys.executable
    if server == "uvicorn":
        return [
            py, "-m", "uvicorn", app,
            "--host", "127.0.0.1", "--port", str(port),
            "--loop", "uvloop", "--http", "httptools",
            "--no-access-log", "--log-level", "warning",
            "--workers", str(workers),
        ]  # fmt: skip
    if server == "granian":
        return [
            py, "-m", "granian", app,
            "--interface", "asgi", "--loop", "uvloop",
            "--host", "127.0.0.1", "--port", str(port),
            "--workers", str(workers), "--no-ws",
            "--no-access-log", "--log-level", "warning",
        ]  # fmt: skip
    raise ValueError(f"unknown ASGI server {server!r}")


def start_asgi_server(
    app: str,
    server: str = "uvicorn",
    port: int | None = None,
    ready_path: str = "/",
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    log_path: Path | None = None,
    workers: int = 1,
    timeout_s: float = 30.0,
) -> tuple[ServerProcess, str]:
    """Start ``app`` under ``server`` and wait until ``ready_path`` answers (any status).

    Returns ``(server_process, base_url)``. ``cwd`` defaults to the repository root and is
    put on PYTHONPATH so "bench.x:app" and "strongroom...:app" both import.
    """
    root = Path(__file__).resolve().parents[2]
    port = port or free_port()
    workdir = Path(cwd) if cwd is not None else root
    child_env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(workdir), os.environ.get("PYTHONPATH")]))}
    if env:
        child_env.update(env)
    srv = ServerProcess(
        asgi_server_argv(app, port, server=server, workers=workers),
        env=child_env,
        cwd=workdir,
        log_path=log_path,
    ).start()
    base = f"http://127.0.0.1:{port}"
    try:
        srv.wait_ready(base + ready_path, timeout_s=timeout_s)
    except BaseException as exc:
        tail = srv.log_tail()
        srv.stop()
        if not isinstance(exc, Exception):
            raise  # KeyboardInterrupt etc.: propagate unchanged, but after cleaning up
        raise RuntimeError(f"{server} serving {app} did not come up: {exc}\n{tail}") from exc
    return srv, base
