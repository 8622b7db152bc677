"""Reusable benchmark harness.

Pieces: ``RequestSpec`` + ``run_load`` (wrk with a generated Lua script, or a labelled httpx
fallback), ``ServerProcess`` / ``start_asgi_server`` / ``cpu_seconds`` (process control and
/proc CPU accounting), ``OpenBao`` (a real non-dev OpenBao peer), ``interleave`` + ``summarize``
+ ``ratio_table`` (A, B, A, B rounds, medians, side-by-side ratios).

Typical use, e.g. in ``bench/kv.py``::

    from bench.harness import (OpenBao, RequestSpec, interleave, ratio_table, run_load,
                               start_asgi_server, summarize)
    from bench.http_stack import NOOP_PATH, TOKEN

    def ours_noop(rnd: int) -> LoadResult:       # "our no-op" baseline, same run
        srv, base = start_asgi_server("bench.http_stack:raw_app", ready_path=NOOP_PATH)
        try:
            spec = RequestSpec(base, NOOP_PATH, "GET", {"X-Vault-Token": TOKEN})
            return run_load(spec, 32, 5, server_pid=srv.pid, warmup_s=1)
        finally:
            srv.stop()

    def bao_write(rnd: int) -> LoadResult:       # KV v2 writes to new paths on OpenBao
        with OpenBao() as bao:
            bao.enable_kv2("kv")
            spec = RequestSpec(bao.addr, method="POST", headers={"X-Vault-Token": bao.root_token},
                               body=b'{"data":{"v":"x"}}',
                               path_template="/v1/kv/data/{run}/t{thread}/k{n}")
            return run_load(spec, 32, 5, server_pid=bao.pid, warmup_s=1)

    results = interleave({"noop": ours_noop, "openbao kv write": bao_write}, rounds=3)
    print(ratio_table([summarize(k, v) for k, v in results.items()], baseline="noop"))

``run_load`` returns a ``LoadResult`` (rps, p50/p90/p99 ms, errors, ``cpu_ms_per_op``); check
``error_count == 0`` before trusting a row. ``{run}`` in a path template is a fresh random token
per ``run_load`` call, so warm-up and measured runs never write the same "new" path.
"""

from .interleave import Summary, format_table, interleave, ratio_table, summarize
from .load import (
    LoadResult,
    RequestSpec,
    client_label,
    parse_wrk_output,
    run_httpx,
    run_load,
    run_wrk,
    wrk_available,
    wrk_lua_script,
)
from .openbao import OpenBao, bao_binary
from .proc import (
    ServerProcess,
    asgi_server_argv,
    cpu_seconds,
    descendants,
    free_port,
    start_asgi_server,
    wait_for_url,
)
from .stats import median, percentile, spread_pct

__all__ = [
    "LoadResult",
    "OpenBao",
    "RequestSpec",
    "ServerProcess",
    "Summary",
    "asgi_server_argv",
    "bao_binary",
    "client_label",
    "cpu_seconds",
    "descendants",
    "format_table",
    "free_port",
    "interleave",
    "median",
    "parse_wrk_output",
    "percentile",
    "ratio_table",
    "run_httpx",
    "run_load",
    "run_wrk",
    "spread_pct",
    "start_asgi_server",
    "summarize",
    "wait_for_url",
    "wrk_available",
    "wrk_lua_script",
]
