"""Tenants (issue 4): biscuit authorization cost over HTTP, and KV read latency with 10 vs 10,000 tenants.

Run: ``.venv/bin/python -m bench.tenants [--tenants 10000] [--duration 5] [--rounds 3] [--quick]``.

Two SQLite stores are made, each initialised by a server (one share) and then populated in process through
the real application (no HTTP, the same code path otherwise): a tenant ``probe`` made by the managed flow
(``sys/iam/tenants``, ``sys/init`` and ``sys/unseal`` inside it with the Administrator biscuit, 1-of-1
shares), KV v2 at ``secret/`` holding a 1 KiB secret, a policy ``reader`` and a store token with it; then
more tenants, each created, initialised and unsealed the same way: 9 more in the small store, ``--tenants``
minus one in the large one. Each store is then served by its own server process, unsealed, and both are
measured side by side, interleaved round by round (wrk -t1, concurrency 1 and 32), on the same endpoint,
``GET /v1/secret/data/bench/read`` with ``X-Vault-Namespace: probe``:

(a) authorization cost, on the small store: the probe's store token (policy ``reader``) vs the User
    biscuit as issued (one block) vs the User biscuit attenuated twice offline (three blocks). Target: the
    biscuit's rate >= 70% of the store token's. Measured twice: reading one hot secret (a repeated
    identical request reuses the authorizer's decision within the same second, see
    ``engines/sys/iam_state.Decisions``), and reading a uniformly random one of ``--paths`` secrets per
    request (``secret/data/fill/k<i>``, wrk picks ``i``), where nearly every request runs the Datalog
    authorizer (a repeat within the same second is about rate / paths likely);
(b) tenant count, store token on both stores: latency with ``--tenants`` tenants present vs 10. Target:
    ratio <= 1.2.

Everything runs on the one shared machine (load generator included); the report says so.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.harness import (
    LoadResult,
    RequestSpec,
    client_label,
    cpu_seconds,
    interleave,
    run_load,
    summarize,
    wrk_available,
)
from bench.harness.interleave import format_table
from bench.harness.load import parse_wrk_output, wrk_lua_script
from bench.harness.stats import median
from bench.storage_backends import Server, init_store, reopen
from strongroom.api.app import VaultApp
from strongroom.auth.iam import IamPublicKey, attenuate
from strongroom.core.node import Node
from strongroom.storage import open_store

PROBE = "probe"
SMALL = 10
SECRET_1K = base64.b64encode(os.urandom(768)).decode()
READ_PATH = "/v1/secret/data/bench/read"
CONCURRENCIES = (1, 32)
FILL_PATH = "/v1/secret/data/fill/k{}"


@dataclass
class Probe:
    """The credentials of the probe tenant in one store."""

    store_token: str
    user_token: str
    attenuated: str


async def _ok(client: httpx.AsyncClient, method: str, path: str, **kw: Any) -> Any:
    r = await client.request(method, "/v1/" + path, **kw)
    if not 200 <= r.status_code < 300:
        raise RuntimeError(f"{method} {path}: {r.status_code} {r.text}")
    return r.json() if r.status_code != 204 else None


async def _tenant(client: httpx.AsyncClient, platform: dict[str, str], name: str) -> tuple[dict[str, Any], str]:
    """Create tenant ``name`` (managed flow), initialise and unseal it with 1-of-1 shares."""
    data = (await _ok(client, "POST", f"sys/iam/tenants/{name}", headers=platform))["data"]
    admin = {"X-Vault-Token": data["admin_token"], "X-Vault-Namespace": name}
    init = await _ok(client, "PUT", "sys/init", headers=admin, json={"secret_shares": 1, "secret_threshold": 1})
    body = await _ok(client, "PUT", "sys/unseal", headers=admin, json={"key": init["keys"][0]})
    if body["sealed"]:
        raise RuntimeError(f"tenant {name} did not unseal")
    return data, init["root_token"]


async def populate(url: str, unseal_key: str, root_token: str, count: int, paths: int) -> Probe:
    """Create the probe tenant and ``count - 1`` more in the store at ``url`` (no server running on it)."""
    node = Node(open_store(url))
    app = VaultApp(node)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench") as client:
            await _ok(client, "PUT", "sys/unseal", json={"key": unseal_key})
            platform = {"X-Vault-Token": root_token}
            data, probe_root = await _tenant(client, platform, PROBE)
            inside = {"X-Vault-Token": probe_root, "X-Vault-Namespace": PROBE}
            kv2 = {"type": "kv", "options": {"version": "2"}}
            await _ok(client, "POST", "sys/mounts/secret", headers=inside, json=kv2)
            await _ok(client, "POST", "secret/data/bench/read", headers=inside, json={"data": {"v": SECRET_1K}})
            for i in range(paths):
                await _ok(client, "POST", f"secret/data/fill/k{i}", headers=inside, json={"data": {"v": SECRET_1K}})
            policy = 'path "secret/data/*" { capabilities = ["read"] }'
            await _ok(client, "PUT", "sys/policies/acl/reader", headers=inside, json={"policy": policy})
            created = await _ok(client, "POST", "auth/token/create", headers=inside, json={"policies": ["reader"]})
            public = IamPublicKey.parse(data["public_key"], data["key_id"])
            now = time.time()
            once = attenuate(data["user_token"], public, paths=["secret/"], now=now)
            twice = attenuate(once, public, operations=["read", "list"], ttl=24 * 3600, now=now)
            started = time.monotonic()
            for i in range(1, count):
                await _tenant(client, platform, f"t{i:05d}")
                if i % 1000 == 0:
                    rate = i / (time.monotonic() - started)
                    print(f"  {i:,} tenants ({rate:.0f}/s)", file=sys.stderr)
            seconds = time.monotonic() - started
            print(f"  {count - 1:,} more tenants created, initialised and unsealed in {seconds:.0f} s "
                  f"({seconds / max(1, count - 1) * 1000:.1f} ms each)", file=sys.stderr)  # fmt: skip
            return Probe(created["auth"]["client_token"], data["user_token"], twice)
    finally:
        await node.close()


def make_store(workdir: Path, name: str, count: int, paths: int) -> tuple[Server, Probe]:
    url = f"sqlite:///{workdir / name}.db"
    key, token = init_store(url, workdir / f"{name}-init")
    print(f"  {name} store:", file=sys.stderr)
    probe = asyncio.run(populate(url, key, token, count, paths))
    return reopen(url, workdir / f"{name}-server", key, token), probe


def reader(server: Server, token: str, concurrency: int, duration: float) -> Callable[[int], LoadResult]:
    spec = RequestSpec(server.addr, READ_PATH, "GET", {"X-Vault-Token": token, "X-Vault-Namespace": PROBE})

    def run(_round: int) -> LoadResult:
        result = run_load(spec, concurrency, duration, server_pid=server.pid, warmup_s=1)
        if result.error_count:
            print(f"  warning: {result.errors} errors", file=sys.stderr)
        return result

    return run


def random_reader(
    server: Server, token: str, paths: int, concurrency: int, duration: float
) -> Callable[[int], LoadResult]:
    """wrk -t1 reading ``secret/data/fill/k<i>`` with a uniformly random ``i`` per request."""
    spec = RequestSpec(server.addr, FILL_PATH.format(0), "GET", {"X-Vault-Token": token, "X-Vault-Namespace": PROBE})

    def run(rnd: int) -> LoadResult:
        script_text = wrk_lua_script(spec, "unused") + "\n".join([
            f"math.randomseed({1000 + rnd})",
            "function request()",
            f"  return wrk.format(nil, string.format('{FILL_PATH.replace('{}', '%d')}', math.random(0, {paths - 1})))",
            "end",
            "",
        ])  # fmt: skip
        with tempfile.TemporaryDirectory(prefix="bench-tenants-wrk-") as tmp:
            script = Path(tmp) / "reads.lua"
            script.write_text(script_text)

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
            print(f"  warning: {result.errors} errors", file=sys.stderr)
        return result

    return run


def _progress(name: str, rnd: int, result: LoadResult) -> None:
    print(f"  round {rnd + 1}: {name}: {result.rps:,.0f} req/s, p50 {result.p50_ms:.3f} ms, "
          f"p99 {result.p99_ms:.3f} ms, errors {result.error_count}", file=sys.stderr)  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tenants", type=int, default=10_000, help="tenants in the large store")
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--paths", type=int, default=5_000, help="secrets read at random in (a)")
    parser.add_argument("--quick", action="store_true", help="100 tenants, 1 round of 2 s (a smoke run)")
    args = parser.parse_args(argv)
    tenants, duration, rounds = (100, 2.0, 1) if args.quick else (args.tenants, args.duration, args.rounds)
    paths = 200 if args.quick else args.paths
    if not wrk_available():
        raise SystemExit("bench.tenants needs wrk (the random-path load is a wrk script)")

    with tempfile.TemporaryDirectory(prefix="bench-tenants-") as tmp:
        workdir = Path(tmp)
        print(f"building the stores: {SMALL} and {tenants:,} tenants", file=sys.stderr)
        small, small_probe = make_store(workdir, "small", SMALL, paths)
        large: Server | None = None
        try:
            large, large_probe = make_store(workdir, "large", tenants, 0)
            variants: dict[str, Callable[[int], LoadResult]] = {}
            for c in CONCURRENCIES:
                variants[f"store token, {SMALL} tenants, c={c}"] = reader(small, small_probe.store_token, c, duration)
                variants[f"biscuit (1 block), c={c}"] = reader(small, small_probe.user_token, c, duration)
                variants[f"biscuit (3 blocks), c={c}"] = reader(small, small_probe.attenuated, c, duration)
                variants[f"store token, {tenants:,} tenants, c={c}"] = reader(large, large_probe.store_token, c, duration)
                for label, token in (("store token", small_probe.store_token), ("biscuit (1 block)", small_probe.user_token),
                                     ("biscuit (3 blocks)", small_probe.attenuated)):  # fmt: skip
                    variants[f"{label}, random of {paths:,}, c={c}"] = random_reader(small, token, paths, c, duration)
            results = interleave(variants, rounds, on_result=_progress)
        finally:
            small.stop()
            if large is not None:
                large.stop()

    print(f"\n## bench/tenants: KV v2 read of 1 KiB in tenant '{PROBE}' (SQLite, one server process per store); "
          f"{rounds} interleaved rounds of {duration:.0f} s; load: {client_label()} on the same shared machine "
          "(2 cores, other jobs running)\n")  # fmt: skip
    summaries = {name: summarize(name, rs) for name, rs in results.items()}
    print(format_table(
        ["variant", "req/s", "p50 ms", "p99 ms", "server CPU ms/op", "errors"],
        [[s.name, f"{s.rps:,.0f}", f"{s.p50_ms:.3f}", f"{s.p99_ms:.3f}", f"{s.cpu_ms_per_op:.3f}", s.errors]
         for s in summaries.values()],
    ))  # fmt: skip
    rows = []
    for c in CONCURRENCIES:
        store = summaries[f"store token, {SMALL} tenants, c={c}"]
        spread = summaries[f"store token, random of {paths:,}, c={c}"]
        for blocks in (1, 3):
            name = f"biscuit ({blocks} block{'s' if blocks > 1 else ''})"
            hot, cold = summaries[f"{name}, c={c}"], summaries[f"{name}, random of {paths:,}, c={c}"]
            target = ">= 0.70" if blocks == 1 else "(attenuated twice)"
            rows.append([f"(a) {name} / store token, hot secret, req/s, c={c}", f"{hot.rps / store.rps:.2f}", target])
            rows.append([f"(a) {name} / store token, random of {paths:,}, req/s, c={c}",
                         f"{cold.rps / spread.rps:.2f}", target])  # fmt: skip
        large_s = summaries[f"store token, {tenants:,} tenants, c={c}"]
        small_r, large_r = results[f"store token, {SMALL} tenants, c={c}"], results[f"store token, {tenants:,} tenants, c={c}"]
        paired = median([b.mean_ms / a.mean_ms for a, b in zip(small_r, large_r, strict=True)])
        rows.append([f"(b) p50 latency {tenants:,} / {SMALL} tenants, c={c}", f"{large_s.p50_ms / store.p50_ms:.2f}", "<= 1.2"])
        rows.append([f"(b) mean latency {tenants:,} / {SMALL} tenants (paired), c={c}", f"{paired:.2f}", "<= 1.2"])
    print()
    print(format_table(["ratio", "measured", "target"], rows))


if __name__ == "__main__":
    main()
