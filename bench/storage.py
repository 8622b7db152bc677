"""Storage backends compared through a real server: KV v2 rates per backend, and read latency at scale.

Run: ``.venv/bin/python -m bench.storage [--part rates|scale|all] [--duration 5] [--rounds 3]
[--secrets 1000000] [--quick]``.

**rates** (issue 5: "KV v2 write and read rates per backend at concurrency 32, each as a ratio to SQLite in
the same run"): one ``strongroom server --dev`` (one process) per backend, over SQLite (a file), PostgreSQL
(a schema of the local server), etcd (a 3-member cluster on loopback started for the run, data in
``/dev/shm``) and Redis (a key prefix of the local server). KV v2 write of 1 KiB to a new path per request,
and read of one 1 KiB secret, at concurrency 32, interleaved round by round; medians, and each backend's
ratio to SQLite (median of the per-round ratios too, which cancels drift shared by a round).

**scale** (bench/storage_scale.py): read latency with 1,000,000 stored secrets vs 1,000, for SQLite and
PostgreSQL; the stores are filled through the storage layer (bench/storage_fill.py) while their server
is stopped.

The load generator is wrk (-t1) on the same two cores as the server and, for the networked backends, the
database: the machine is shared with other work, so every number is noisy; compare ratios from one run.
Server CPU per operation counts the strongroom process only, not the database's processes.
"""

from __future__ import annotations

import argparse
import base64
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import httpx

from bench.harness import LoadResult, RequestSpec, client_label, interleave, ratio_table, run_load, summarize
from bench.harness.stats import median
from bench.storage_backends import TOKEN, Server, Stores, servers

BACKENDS = ("sqlite", "postgresql", "etcd", "redis")
SECRET_1K = base64.b64encode(os.urandom(768)).decode()  # 1,024 characters
WRITE_BODY = ('{"data":{"v":"' + SECRET_1K + '"}}').encode()
CONCURRENCY = 32


def _seed(server: Server) -> None:
    r = httpx.post(f"{server.addr}/v1/secret/data/bench/read", headers={"X-Vault-Token": TOKEN},
                   json={"data": {"v": SECRET_1K}}, timeout=30)  # fmt: skip
    r.raise_for_status()


def _specs(server: Server) -> dict[str, RequestSpec]:
    headers = {"X-Vault-Token": TOKEN}
    return {
        "read": RequestSpec(server.addr, "/v1/secret/data/bench/read", "GET", headers),
        "write": RequestSpec(
            server.addr,
            method="POST",
            headers={**headers, "Content-Type": "application/json"},
            body=WRITE_BODY,
            path_template="/v1/secret/data/{run}/k{n}",
        ),
    }


def _runner(spec: RequestSpec, pid: int, duration: float) -> Callable[[int], LoadResult]:
    def run(_round: int) -> LoadResult:
        result = run_load(spec, CONCURRENCY, duration, server_pid=pid, warmup_s=1)
        if result.error_count:
            print(
                f"  warning: {result.errors} in {spec.base_url}{spec.path or spec.path_template}",
                file=sys.stderr,
            )
        return result

    return run


def paired_ratio(results: dict[str, list[LoadResult]], name: str, base: str) -> float:
    """Median over rounds of (``name`` req/s / ``base`` req/s) in the same round."""
    return median([a.rps / b.rps for a, b in zip(results[name], results[base], strict=True) if b.rps])


def rates(workdir: Path, duration: float, rounds: int) -> None:
    with Stores(workdir) as stores:
        urls = {b: stores.url(b, "rates") for b in BACKENDS}
        with servers(urls, workdir) as running:
            for server in running.values():
                _seed(server)
            variants: dict[str, Callable[[int], LoadResult]] = {}
            for op in ("write", "read"):
                for b in BACKENDS:
                    variants[f"{b} kv {op}"] = _runner(_specs(running[b])[op], running[b].pid, duration)
            print(f"\n## KV v2 over HTTP per backend, concurrency {CONCURRENCY}; {rounds} interleaved rounds of "
                  f"{duration:.0f} s; load: {client_label()}\n")  # fmt: skip
            results = interleave(variants, rounds, on_result=_progress)
    summaries = {name: summarize(name, rs) for name, rs in results.items()}
    for op in ("write", "read"):
        print(f"\n### {op} (1 KiB{', new path per request' if op == 'write' else ', one secret'})\n")
        print(ratio_table([summaries[f"{b} kv {op}"] for b in BACKENDS], baseline=f"sqlite kv {op}"))
    print("\n| backend | write / SQLite (medians) | write / SQLite (paired) | read / SQLite (medians) | "
          "read / SQLite (paired) |\n|---|---|---|---|---|")  # fmt: skip
    for b in BACKENDS:
        cells = []
        for op in ("write", "read"):
            ours, base = summaries[f"{b} kv {op}"], summaries[f"sqlite kv {op}"]
            cells += [
                f"{ours.rps / base.rps:.2f}",
                f"{paired_ratio(results, f'{b} kv {op}', f'sqlite kv {op}'):.2f}",
            ]
        print(f"| {b} | " + " | ".join(cells) + " |")


def _progress(name: str, rnd: int, result: LoadResult) -> None:
    print(f"  round {rnd + 1}: {name}: {result.rps:,.0f} req/s, p50 {result.p50_ms:.2f} ms, "
          f"p99 {result.p99_ms:.2f} ms, errors {result.error_count}", file=sys.stderr)  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--part", choices=("rates", "scale", "all"), default="all")
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--secrets", type=int, default=1_000_000, help="secrets in the large store (scale)")
    parser.add_argument("--small", type=int, default=1_000, help="secrets in the small store (scale)")
    parser.add_argument("--scale-backends", nargs="*", default=["sqlite", "postgresql"])
    parser.add_argument("--quick", action="store_true", help="1 round of 2 s, 20,000 secrets (a smoke run)")
    args = parser.parse_args(argv)
    duration, rounds, large = (2.0, 1, 20_000) if args.quick else (args.duration, args.rounds, args.secrets)
    print(f"machine: {os.cpu_count()} cores, shared with other work (load average "
          f"{os.getloadavg()[0]:.1f} at start): numbers are noisy; ratios within one run are what counts")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="bench-storage-") as tmp:
        if args.part in ("rates", "all"):
            rates(Path(tmp) / "rates", duration, rounds)
        if args.part in ("scale", "all"):
            from bench.storage_scale import scale

            scale(Path(tmp) / "scale", args.scale_backends, args.small, large, duration, rounds)


if __name__ == "__main__":
    main()
