"""Our own server in a benchmark: start ``strongroom server --dev`` on SQLite, and run load rounds against it."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from .load import LoadResult, RequestSpec, run_load
from .proc import ServerProcess, free_port


def start_strongroom_dev(workdir: Path, token: str, *extra: str, timeout_s: float = 60) -> tuple[ServerProcess, str]:
    """Start a dev server (root token ``token``) on ``workdir/store.db``; return it and its address.

    ``extra`` arguments are appended (e.g. ``--workers 2``). Returns once ``sys/health`` answers 200.
    """
    port = free_port()
    exe = str(Path(sys.executable).parent / "strongroom")
    argv = [exe, "server", "--dev", "--dev-root-token-id", token, "--listen", f"127.0.0.1:{port}",
            "--storage", f"sqlite:///{workdir / 'store.db'}", "--log-level", "warn", *extra]
    server = ServerProcess(argv, cwd=workdir, log_path=workdir / "strongroom.log").start()
    addr = f"http://127.0.0.1:{port}"
    server.wait_ready(addr + "/v1/sys/health", timeout_s=timeout_s, ok_statuses=[200])
    return server, addr


def load_runner(spec: RequestSpec, pid: int, concurrency: int, duration: float) -> Callable[[int], LoadResult]:
    """A round function for :func:`interleave`: one ``run_load`` of ``spec``, warning on stderr about errors."""

    def run(_round: int) -> LoadResult:
        result = run_load(spec, concurrency, duration, server_pid=pid, warmup_s=1)
        if result.error_count:
            print(f"  warning: {result.error_count} errors in {spec.path or spec.path_template}", file=sys.stderr)
        return result

    return run
