"""granian vs uvicorn serving strongroom's real application, same run, interleaved.

Run: ``.venv/bin/python -m bench.server_choice [--duration 5] [--rounds 3]``.

Both serve the same dev-mode node on SQLite (bench/serve_strongroom.py). Measured: the authenticated
baseline (``auth/token/lookup-self``) and a 1 KiB KV v2 read, at concurrency 1 and 32: throughput,
p50/p99 and server CPU per request. This is the measurement behind the choice of HTTP server in
docs/dependencies.md (together with uvicorn's httptools parser refusing Vault's ``LIST`` verb, which the
script also checks).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import httpx

from bench.harness import (
    LoadResult,
    RequestSpec,
    ServerProcess,
    free_port,
    interleave,
    ratio_table,
    run_load,
    summarize,
)
from bench.kv import SECRET_1K


def start(server: str, workdir: Path) -> tuple[ServerProcess, str]:
    port = free_port()
    db = workdir / f"{server}.db"
    argv = [sys.executable, "-m", "bench.serve_strongroom", "--server", server, "--port", str(port),
            "--storage", f"sqlite:///{db}"]
    proc = ServerProcess(argv, cwd=Path(__file__).resolve().parents[1], log_path=workdir / f"{server}.log").start()
    addr = f"http://127.0.0.1:{port}"
    proc.wait_ready(addr + "/v1/sys/health", timeout_s=30, ok_statuses=[200])
    httpx.post(f"{addr}/v1/secret/data/bench/read", headers={"X-Vault-Token": "root"},
               json={"data": {"v": SECRET_1K}}, timeout=10).raise_for_status()
    return proc, addr


def list_verb_works(addr: str) -> bool:
    r = httpx.request("LIST", f"{addr}/v1/secret/metadata/bench", headers={"X-Vault-Token": "root"}, timeout=5)
    return r.status_code == 200


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-server-") as tmp:
        servers = {name: start(name, Path(tmp)) for name in ("uvicorn", "granian")}
        try:
            for name, (_, addr) in servers.items():
                print(f"{name}: LIST verb {'accepted' if list_verb_works(addr) else 'REJECTED'}")
            for c in (1, 32):
                variants = {}
                for name, (proc, addr) in servers.items():
                    for what, path in (("baseline", "/v1/auth/token/lookup-self"), ("kv read", "/v1/secret/data/bench/read")):
                        spec = RequestSpec(addr, path, "GET", {"X-Vault-Token": "root"})

                        def run(_r: int, spec: RequestSpec = spec, pid: int = proc.pid, c: int = c) -> LoadResult:
                            return run_load(spec, c, args.duration, server_pid=pid, warmup_s=1)

                        variants[f"{name} {what}"] = run
                results = interleave(variants, args.rounds)
                print(f"\n### concurrency {c}\n")
                print(ratio_table([summarize(k, v) for k, v in results.items()], baseline="uvicorn kv read"))
        finally:
            for proc, _ in servers.values():
                proc.stop()


if __name__ == "__main__":
    main()
