"""Read latency with many stored secrets vs few (issue 5: 1,000,000 vs 1,000; target ratio <= 1.3).

For each backend (SQLite and PostgreSQL by default) two stores are made: each is initialised by a server
(one share, KV v2 at ``secret/``), the server is stopped, the store is filled through the storage layer
(:mod:`bench.storage_fill`: the KV v2 write path in big transactions, no HTTP), and a server is started
on it again and unsealed. Both servers then serve reads of *random* secrets among those stored (wrk picks
``fill/d<i/1000>/k<i>`` with a uniformly random ``i`` per request), interleaved round by round, at
concurrency 1 (latency) and 32 (throughput). Random keys matter: one hot key would stay in every cache
whatever the store's size.

What the ratio includes: the deeper B-tree (SQLite's table, PostgreSQL's primary key index), a larger file
than the page cache of SQLite or ``shared_buffers`` of PostgreSQL; the OS page cache is warm in both cases
(the fill just wrote the data; the machine has far more RAM than the store), so this measures a store that
fits in memory, not cold disk reads.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from bench.harness import LoadResult, RequestSpec, client_label, cpu_seconds, interleave, summarize
from bench.harness.interleave import format_table
from bench.harness.load import parse_wrk_output, wrk_lua_script
from bench.harness.stats import median
from bench.storage_backends import Server, Stores, init_store, reopen
from bench.storage_fill import PER_DIR, fill

CONCURRENCIES = (1, 32)


def random_reads_script(server: Server, count: int, seed: int) -> str:
    """A wrk script reading a uniformly random one of the ``count`` filled secrets per request."""
    spec = RequestSpec(server.addr, "/v1/secret/data/fill/d0/k0", "GET", {"X-Vault-Token": server.token})
    return wrk_lua_script(spec, "unused") + "\n".join(
        [
            f"math.randomseed({seed})",
            "function request()",
            f"  local i = math.random(0, {count - 1})",
            f"  return wrk.format(nil, string.format('/v1/secret/data/fill/d%d/k%d', math.floor(i / {PER_DIR}), i))",
            "end",
            "",
        ]
    )


def run_random_reads(server: Server, count: int, concurrency: int, duration: float, seed: int) -> LoadResult:
    """wrk -t1 with :func:`random_reads_script` (1 s warm-up first); the server's CPU is measured."""
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        script = Path(tmp) / "reads.lua"
        script.write_text(random_reads_script(server, count, seed))

        def wrk(seconds: int) -> LoadResult:
            argv = ["wrk", "-t1", f"-c{concurrency}", f"-d{seconds}s", "--timeout=10s", "-s", str(script),
                    server.addr + "/"]  # fmt: skip
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60, check=False)
            if proc.returncode != 0:
                raise RuntimeError(f"wrk failed: {proc.stderr.strip()} {proc.stdout.strip()}")
            return parse_wrk_output(proc.stdout, concurrency)

        wrk(1)
        cpu0 = cpu_seconds(server.pid)
        result = wrk(max(1, round(duration)))
        result.server_cpu_s = cpu_seconds(server.pid) - cpu0
    if result.error_count:
        print(f"  warning: {result.errors} reading {count:,} secrets", file=sys.stderr)
    return result


def _make_store(stores: Stores, backend: str, name: str, count: int, workdir: Path) -> Server:
    url = stores.url(backend, name)
    key, token = init_store(url, workdir / f"{name}-init")
    concurrency = 2 if backend == "sqlite" else 12  # SQLite has one writer; PostgreSQL waits on round trips
    seconds = asyncio.run(fill(url, key, count, concurrency=concurrency))
    print(f"  {backend}: filled {count:,} secrets through the storage layer in {seconds:.0f} s "
          f"({count / seconds:,.0f}/s)", file=sys.stderr)  # fmt: skip
    return reopen(url, workdir / f"{name}-server", key, token)


def scale(workdir: Path, backends: list[str], small: int, large: int, duration: float, rounds: int) -> None:
    print(f"\n## KV v2 read of a random secret: {large:,} stored vs {small:,}; {rounds} interleaved rounds "
          f"of {duration:.0f} s; load: {client_label()}\n")  # fmt: skip
    rows = []
    with Stores(workdir) as stores:
        for backend in backends:
            few = _make_store(stores, backend, "small", small, workdir / backend)
            many = _make_store(stores, backend, "large", large, workdir / backend)
            try:
                variants: dict[str, Callable[[int], LoadResult]] = {}
                for c in CONCURRENCIES:
                    for label, server, count in (("small", few, small), ("large", many, large)):
                        variants[f"{backend} {label} c={c}"] = lambda rnd, s=server, n=count, c=c: (
                            run_random_reads(s, n, c, duration, 1000 + rnd)
                        )
                results = interleave(variants, rounds, on_result=_progress)
            finally:
                few.stop()
                many.stop()
            for c in CONCURRENCIES:
                a, b = results[f"{backend} small c={c}"], results[f"{backend} large c={c}"]
                sa, sb = summarize("small", a), summarize("large", b)
                mean_ratio = median([y.mean_ms / x.mean_ms for x, y in zip(a, b, strict=True)])
                rows.append([
                    backend, c, f"{sa.p50_ms:.3f} / {sb.p50_ms:.3f}", f"{sb.p50_ms / sa.p50_ms:.2f}",
                    f"{sa.p99_ms:.3f} / {sb.p99_ms:.3f}", f"{sb.p99_ms / sa.p99_ms:.2f}", f"{mean_ratio:.2f}",
                    f"{sa.rps:,.0f} / {sb.rps:,.0f}", f"{sb.rps / sa.rps:.2f}", f"{sa.errors + sb.errors}",
                ])  # fmt: skip
    print(format_table(
        ["backend", "conc.", f"p50 ms ({small:,} / {large:,})", "p50 ratio", "p99 ms", "p99 ratio",
         "mean ratio (paired)", "req/s", "req/s ratio", "errors"],
        rows,
    ))  # fmt: skip
    print("\nTarget: latency ratio (large / small) <= 1.3.")


def _progress(name: str, rnd: int, result: LoadResult) -> None:
    print(f"  round {rnd + 1}: {name}: {result.rps:,.0f} req/s, p50 {result.p50_ms:.3f} ms, "
          f"p99 {result.p99_ms:.3f} ms, errors {result.error_count}", file=sys.stderr)  # fmt: skip
