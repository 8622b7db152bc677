"""Biscuit IAM authorization cost per request, beside a store-token KV read in the same run.

Run: ``PYTHONPATH=. .venv/bin/python -m bench.iam_authorize [--n 3000] [--reps 5]``.

Prints CPU microseconds (``time.process_time``, best of ``--reps``) for:

* the pieces of a biscuit request: signature verification of a 1-block and a 3-block token (what the
  per-token LRU saves), and ``IamVerifier.authorize`` with a cached verification (what every request
  pays: tenant/expiry/revocation checks and the Datalog authorizer with the token's attenuation checks);
* a KV v2 read (1 KiB) through the real ASGI application with a store token carrying a policy, and the
  store-token part of it (``auth/token/lookup-self``, whose handler does little beyond authenticating).

The estimate of the biscuit request rate replaces the store-token authentication with the biscuit
authorization: ``kv_read - lookup_self + sys_health + authorize``. The issue's benchmark
(``bench/tenants.py``) measures the real thing end to end once the router accepts biscuits; this one
tells where the microseconds go. It asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Callable

from bench.profile_kv import call
from strongroom.auth.iam import (
    IamKey,
    IamRequest,
    IamVerifier,
    InMemoryRevocationList,
    attenuate,
    issue_token,
)
from strongroom.storage.memory import MemoryStore
from tests.support.vault import start_vault

POLICY = 'path "secret/data/*" { capabilities = ["read", "list"] }'


def cpu_us(n: int, reps: int, body: Callable[[], object]) -> float:
    """Best CPU microseconds per call of ``body`` over ``reps`` runs of ``n`` calls."""
    best = float("inf")
    for _ in range(reps):
        start = time.process_time()
        for _ in range(n):
            body()
        best = min(best, (time.process_time() - start) / n * 1e6)
    return best


def biscuit_costs(n: int, reps: int) -> dict[str, float]:
    key = IamKey.generate(1)
    now = time.time()
    token = issue_token(key, tenant="acme", role="user", ttl=3600, now=now)
    narrowed = attenuate(
        attenuate(token, key.public_key, paths=["secret/data/app/"], operations=["read", "list"]),
        key.public_key, ttl=600, now=now,
    )
    revocations = InMemoryRevocationList(f"{i:0128x}" for i in range(1000))
    request = IamRequest("acme", "secret/data/app/db", "read", now + 1, "secret/", "kv", "2")
    cached = IamVerifier([key.public_key], revocations)
    uncached = IamVerifier([key.public_key], revocations, cache_size=0)
    for verifier in (cached, uncached):  # warm up, and prove both tokens are allowed
        verifier.authorize(token, request)
        verifier.authorize(narrowed, request)
    return {
        "verify, 1 block (uncached)": cpu_us(n, reps, lambda: uncached.verify(token)),
        "verify, 3 blocks (uncached)": cpu_us(n, reps, lambda: uncached.verify(narrowed)),
        "authorize, 1 block (verification cached)": cpu_us(n, reps, lambda: cached.authorize(token, request)),
        "authorize, 3 blocks (verification cached)": cpu_us(n, reps, lambda: cached.authorize(narrowed, request)),
        "authorize, 3 blocks (nothing cached)": cpu_us(n, reps, lambda: uncached.authorize(narrowed, request)),
    }


async def store_token_costs(n: int, reps: int) -> dict[str, float]:
    v = await start_vault(MemoryStore())
    await v.ok("POST", "sys/mounts/secret", json={"type": "kv", "options": {"version": "2"}})
    await v.ok("POST", "sys/policies/acl/app", json={"policy": POLICY})
    await v.ok("POST", "secret/data/app/db", json={"data": {"v": "x" * 1024}})
    token = await v.token(["app"])
    results: dict[str, float] = {}
    for label, path, tok in (
        ("sys/health (unauthenticated floor)", "/v1/sys/health", ""),
        ("auth/token/lookup-self (store token)", "/v1/auth/token/lookup-self", token),
        ("KV v2 read 1 KiB (store token)", "/v1/secret/data/app/db", token),
    ):
        assert await call(v.app, "GET", path, tok) == 200, path
        best = float("inf")
        for _ in range(reps):
            start = time.process_time()
            for _ in range(n):
                await call(v.app, "GET", path, tok)
            best = min(best, (time.process_time() - start) / n * 1e6)
        results[label] = best
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    biscuit = biscuit_costs(args.n, args.reps)
    store = asyncio.run(store_token_costs(max(args.n // 3, 200), args.reps))
    for label, value in [*biscuit.items(), *store.items()]:
        print(f"{label:48s} {value:8.1f} us cpu/op")
    kv = store["KV v2 read 1 KiB (store token)"]
    auth = store["auth/token/lookup-self (store token)"] - store["sys/health (unauthenticated floor)"]
    for label in ("authorize, 1 block (verification cached)", "authorize, 3 blocks (verification cached)",
                  "authorize, 3 blocks (nothing cached)"):
        estimate = kv - auth + biscuit[label]
        print(f"estimated biscuit KV read, {label.split(', ', 1)[1]:40s} {estimate:7.1f} us "
              f"-> {kv / estimate:5.0%} of the store-token rate")


if __name__ == "__main__":
    main()
