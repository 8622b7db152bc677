"""``strongroom server --workers 2`` vs ``--workers 1`` vs OpenBao over HTTP, same run, interleaved.

Run: ``.venv/bin/python -m bench.workers [--duration 5] [--rounds 3] [--concurrency 32] [--quick]``.

Three servers run side by side for the whole benchmark (an idle one costs nothing): strongroom dev mode
on SQLite with one worker (one process, no supervisor) and with two workers (a supervisor plus two
processes sharing one listening socket), and OpenBao (pebbledb, GOMAXPROCS = both cores, audit off).
For each concurrency it measures, round by round (A, B, C, ... then again):

With ``--shared-listener`` a fourth server joins: two workers accepting on one shared socket instead of
one ``SO_REUSEPORT`` socket per worker (both bound by the supervisor; docs/operations/workers.md).

* transit ``encrypt`` of 1 KiB with an aes256-gcm96 key;
* KV v2 read of a 1 KiB secret;

and prints medians of throughput, p50/p99 latency and server CPU milliseconds per operation (all of a
server's processes), each worker's share of the two-worker server's CPU (the kernel decides which worker
accepts each connection, so the split shows whether both did the work), and the ratios issue 5 sets
targets for. The load generator (wrk, one thread) shares the two cores with the server: numbers on this
shared machine are noisy, compare within one run only.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from bench.harness import (
    LoadResult,
    OpenBao,
    RequestSpec,
    ServerProcess,
    Summary,
    client_label,
    cpu_seconds,
    descendants,
    interleave,
    ratio_table,
    run_load,
    summarize,
)
from bench.harness.strongroom import start_strongroom_dev
from bench.kv import seed
from bench.transit import ENCRYPT_BODY, setup_keys

TOKEN = "root"


def specs(addr: str, token: str) -> dict[str, RequestSpec]:
    """The two request kinds of this benchmark against one server."""
    headers = {"X-Vault-Token": token, "Content-Type": "application/json"}
    return {
        "encrypt": RequestSpec(addr, "/v1/transit/encrypt/aes", "POST", headers, ENCRYPT_BODY),
        "kv read": RequestSpec(addr, "/v1/secret/data/bench/read", "GET", {"X-Vault-Token": token}),
    }


class WorkerSplit:
    """Accumulates each worker process's CPU seconds over the two-worker server's measured runs."""

    def __init__(self, supervisor_pid: int) -> None:
        self.supervisor_pid = supervisor_pid
        self.cpu: dict[int, float] = {}

    def sample(self) -> dict[int, float]:
        return {pid: cpu_seconds(pid) for pid in descendants(self.supervisor_pid)}

    def add(self, before: dict[int, float], after: dict[int, float]) -> None:
        for pid, seconds in after.items():
            self.cpu[pid] = self.cpu.get(pid, 0.0) + seconds - before.get(pid, 0.0)

    def shares(self) -> str:
        total = sum(self.cpu.values()) or 1.0
        return " / ".join(f"{100 * s / total:.0f}%" for s in sorted(self.cpu.values(), reverse=True))


def runner(
    spec: RequestSpec, pid: int, concurrency: int, duration: float, split: WorkerSplit | None = None
) -> Callable[[int], LoadResult]:
    def run(_round: int) -> LoadResult:
        before = split.sample() if split else {}
        result = run_load(spec, concurrency, duration, server_pid=pid, warmup_s=1)
        if split:
            split.add(before, split.sample())  # includes the warm-up second: a split, not a rate
        if result.error_count:
            print(f"  warning: {result.error_count} errors in {spec.path}", file=sys.stderr)
        return result

    return run


def _show(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.2f}"


def _row(name: str, value: float | None, target: str, by_round: float | None = None) -> str:
    return f"| {name} | {_show(value)} | {_show(by_round)} | {target} |"


def _cpu_ratio(a: Summary, b: Summary) -> float | None:
    return a.cpu_ms_per_op / b.cpu_ms_per_op if a.cpu_ms_per_op and b.cpu_ms_per_op else None


def paired(a: Summary, b: Summary) -> float | None:
    """Median over rounds of ``a``'s throughput over ``b``'s in the same round.

    Runs of one round are seconds apart, so their ratio cancels most of the drift of a shared machine
    that the ratio of the two medians keeps.
    """
    ratios = sorted(x / y for x, y in zip(a.all_rps, b.all_rps, strict=True) if y)
    return ratios[len(ratios) // 2] if ratios else None


def report(concurrency: int, s: dict[str, Summary], split: WorkerSplit) -> None:
    print(f"\n### concurrency {concurrency}\n")
    print(ratio_table(list(s.values()), baseline="1 worker encrypt"))
    one, two, bao = s["1 worker encrypt"], s["2 workers encrypt"], s["openbao encrypt"]
    kv_one, kv_two, kv_bao = s["1 worker kv read"], s["2 workers kv read"], s["openbao kv read"]
    print(f"\nCPU split between the two workers over all their runs: {split.shares()}")
    if "2 workers, shared socket, encrypt" in s:
        enc_shared, kv_shared = s["2 workers, shared socket, encrypt"], s["2 workers, shared socket, kv read"]
        print(f"per-worker sockets / shared socket, paired by round: encrypt {_show(paired(two, enc_shared))}, "
              f"kv read {_show(paired(kv_two, kv_shared))}")
    print("\n| ratio | medians | paired by round | target |\n|---|---|---|---|")
    print("\n".join([
        _row("transit encrypt 1 KiB: 2 workers / 1 worker (throughput)", two.rps / one.rps, ">= 1.3",
             paired(two, one)),
        _row("transit encrypt: 2 workers / OpenBao (throughput)", two.rps / bao.rps, ">= 1.3", paired(two, bao)),
        _row("KV v2 read: 2 workers / OpenBao (throughput)", kv_two.rps / kv_bao.rps, ">= 2.0",
             paired(kv_two, kv_bao)),
        _row("KV v2 read: 2 workers / 1 worker (throughput)", kv_two.rps / kv_one.rps, "(reported)",
             paired(kv_two, kv_one)),
        _row("transit encrypt CPU/op: 2 workers / 1 worker", _cpu_ratio(two, one), "(reported)"),
        _row("transit encrypt CPU/op: 2 workers / OpenBao", _cpu_ratio(two, bao), "(reported)"),
        _row("KV read CPU/op: 2 workers / OpenBao", _cpu_ratio(kv_two, kv_bao), "(reported)"),
        _row("transit encrypt p99 ms: 2 workers", two.p99_ms, "(reported)"),
        _row("transit encrypt p99 ms: 1 worker", one.p99_ms, "(reported)"),
    ]))  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="1 round of 2 s (a smoke run, not a measurement)")
    parser.add_argument("--concurrency", type=int, nargs="*", default=[32])
    parser.add_argument("--shared-listener", action="store_true", help="also run 2 workers on one shared socket")
    args = parser.parse_args(argv)
    duration, rounds = (2.0, 1) if args.quick else (args.duration, args.rounds)

    with tempfile.TemporaryDirectory(prefix="bench-workers-") as tmp, OpenBao() as bao:
        dirs = [Path(tmp) / name for name in ("one", "two", "shared")]
        for d in dirs:
            d.mkdir()
        one, one_addr = start_strongroom_dev(dirs[0], TOKEN, "--workers", "1")
        two: ServerProcess | None = None
        shared: ServerProcess | None = None
        try:
            two, two_addr = start_strongroom_dev(dirs[1], TOKEN, "--workers", "2")
            addrs = [one_addr, two_addr]
            if args.shared_listener:
                shared, shared_addr = start_strongroom_dev(dirs[2], TOKEN, "--workers", "2", "--shared-listener")
                addrs.append(shared_addr)
            for addr in addrs:
                setup_keys(addr, TOKEN, mount_transit=True)
                seed(addr, TOKEN)
            bao.enable_transit("transit", key=None)
            setup_keys(bao.addr, bao.root_token, mount_transit=False)
            bao.enable_kv2("secret")
            seed(bao.addr, bao.root_token)
            s1, s2, sb = specs(one_addr, TOKEN), specs(two_addr, TOKEN), specs(bao.addr, bao.root_token)
            print(f"strongroom (SQLite) --workers 1 vs --workers 2 vs OpenBao (pebbledb, GOMAXPROCS=2); "
                  f"{rounds} interleaved rounds of {duration:.0f} s; load: {client_label()} on the same 2 cores")
            for c in args.concurrency:
                split = WorkerSplit(two.pid)
                variants = {
                    "1 worker encrypt": runner(s1["encrypt"], one.pid, c, duration),
                    "2 workers encrypt": runner(s2["encrypt"], two.pid, c, duration, split),
                    "openbao encrypt": runner(sb["encrypt"], bao.pid, c, duration),
                    "1 worker kv read": runner(s1["kv read"], one.pid, c, duration),
                    "2 workers kv read": runner(s2["kv read"], two.pid, c, duration, split),
                    "openbao kv read": runner(sb["kv read"], bao.pid, c, duration),
                }
                if shared is not None:
                    ss = specs(shared_addr, TOKEN)
                    variants["2 workers, shared socket, encrypt"] = runner(ss["encrypt"], shared.pid, c, duration)
                    variants["2 workers, shared socket, kv read"] = runner(ss["kv read"], shared.pid, c, duration)
                results = interleave(variants, rounds)
                report(c, {name: summarize(name, rs) for name, rs in results.items()}, split)
        finally:
            for server in (one, two, shared):
                if server is not None:
                    server.stop()


if __name__ == "__main__":
    main()
