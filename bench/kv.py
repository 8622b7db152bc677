"""KV v2 over HTTP: strongroom (SQLite, one process) side by side with OpenBao (pebbledb), same run.

Run: ``.venv/bin/python -m bench.kv [--duration 5] [--rounds 3] [--quick]``.

For concurrency 1 and 32 it measures, interleaved round by round (A, B, C, ... then again):

* ours: the authenticated baseline (``auth/token/lookup-self``: token check, mount routing, ACL and the
  response envelope, i.e. everything a request costs before engine work), KV v2 read of a 1 KiB secret,
  KV v2 write of 1 KiB to a new path each time;
* OpenBao: the same KV read and write (audit off).

and prints medians of throughput, p50/p99 latency and server CPU milliseconds per operation (from the
server process's CPU time), then the ratios the issue sets targets for.
"""

from __future__ import annotations

import argparse
import base64
import os
import tempfile
from pathlib import Path

import httpx

from bench.harness import (
    OpenBao,
    RequestSpec,
    Summary,
    interleave,
    ratio_table,
    summarize,
)
from bench.harness.strongroom import load_runner, start_strongroom_dev

TOKEN = "root"
SECRET_1K = base64.b64encode(os.urandom(768)).decode()  # 1,024 characters
WRITE_BODY = ('{"data":{"v":"' + SECRET_1K + '"}}').encode()


def seed(addr: str, token: str) -> None:
    """Write the secret the read benchmark reads."""
    r = httpx.post(f"{addr}/v1/secret/data/bench/read", headers={"X-Vault-Token": token},
                   json={"data": {"v": SECRET_1K}}, timeout=10)
    r.raise_for_status()


def specs(addr: str, token: str) -> dict[str, RequestSpec]:
    """The three request kinds of this benchmark against one server."""
    headers = {"X-Vault-Token": token}
    return {
        "baseline": RequestSpec(addr, "/v1/auth/token/lookup-self", "GET", headers),
        "read": RequestSpec(addr, "/v1/secret/data/bench/read", "GET", headers),
        "write": RequestSpec(addr, method="POST", headers={**headers, "Content-Type": "application/json"},
                             body=WRITE_BODY, path_template="/v1/secret/data/{run}/t{thread}/k{n}"),
    }


def report(concurrency: int, summaries: dict[str, Summary]) -> None:
    print(f"\n### concurrency {concurrency}\n")
    print(ratio_table(list(summaries.values()), baseline="ours baseline"))
    ours_read, ours_write = summaries["ours kv read"], summaries["ours kv write"]
    base = summaries["ours baseline"]
    bao_read, bao_write = summaries["openbao kv read"], summaries["openbao kv write"]
    rows = [
        ("KV read / our baseline (throughput)", ours_read.rps / base.rps, ">= 0.50"),
        ("KV read: ours / OpenBao (throughput)", ours_read.rps / bao_read.rps, ">= 1.3"),
        ("KV write: ours / OpenBao (throughput)", ours_write.rps / bao_write.rps, ">= 2.0"),
        ("KV read p99: ours / OpenBao", ours_read.p99_ms / bao_read.p99_ms, "<= 0.5 at c=32"),
        ("KV write p99: ours / OpenBao", ours_write.p99_ms / bao_write.p99_ms, "<= 0.5 at c=32"),
        ("KV read CPU/op: ours / OpenBao", ours_read.cpu_ms_per_op / bao_read.cpu_ms_per_op, "<= 0.5"),
        ("KV write CPU/op: ours / OpenBao", ours_write.cpu_ms_per_op / bao_write.cpu_ms_per_op, "<= 0.5"),
    ]
    print("\n| ratio | measured | target |\n|---|---|---|")
    for name, value, target in rows:
        print(f"| {name} | {value:.2f} | {target} |")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="1 round of 2 s (a smoke run, not a measurement)")
    parser.add_argument("--concurrency", type=int, nargs="*", default=[1, 32])
    args = parser.parse_args(argv)
    duration, rounds = (2.0, 1) if args.quick else (args.duration, args.rounds)

    with tempfile.TemporaryDirectory(prefix="bench-kv-") as tmp, OpenBao() as bao:
        ours, addr = start_strongroom_dev(Path(tmp), TOKEN)
        try:
            bao.enable_kv2("secret")
            seed(addr, TOKEN)
            seed(bao.addr, bao.root_token)
            mine, theirs = specs(addr, TOKEN), specs(bao.addr, bao.root_token)
            print("strongroom (SQLite, 1 process) vs OpenBao "
                  f"(pebbledb); {rounds} interleaved rounds of {duration:.0f} s; load: wrk -t1 on the same cores")
            for c in args.concurrency:
                variants = {
                    "ours baseline": load_runner(mine["baseline"], ours.pid, c, duration),
                    "ours kv read": load_runner(mine["read"], ours.pid, c, duration),
                    "openbao kv read": load_runner(theirs["read"], bao.pid, c, duration),
                    "ours kv write": load_runner(mine["write"], ours.pid, c, duration),
                    "openbao kv write": load_runner(theirs["write"], bao.pid, c, duration),
                }
                results = interleave(variants, rounds)
                report(c, {name: summarize(name, rs) for name, rs in results.items()})
        finally:
            ours.stop()


if __name__ == "__main__":
    main()
