"""The token expiry cleanup job, in process: what it removes, what it keeps, batches, pages, fences, races.

Real processes (a lease holder killed mid-job, another node finishing) are in tests/cluster/test_jobs.py.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest

from strongroom.api.app import VaultApp
from strongroom.auth import token_cleanup
from strongroom.auth.token_cleanup import batch_size, remove_dead_tokens
from strongroom.core.background import BackgroundRunner, Outcome
from strongroom.core.jobs import LeaseLost
from strongroom.core.node import Node
from strongroom.errors import InvalidRequest
from strongroom.storage.base import StoreLimits, Transaction
from strongroom.storage.memory import MemoryStore
from strongroom.storage.subspace import ROOT_NAMESPACE_ID, namespace
from tests.support.vault import InProcessVault, start_vault


async def _count(vault: InProcessVault, *area: str) -> int:
    begin, end = namespace(ROOT_NAMESPACE_ID).sub("tok", *area).range()
    async with vault.node.store.transaction() as tx:
        return len(await tx.range(begin, end))


async def _alive(vault: InProcessVault, token: str) -> bool:
    return (await vault.call("GET", "auth/token/lookup-self", token=token)).status_code == 200


async def _tokens(vault: InProcessVault, count: int, ttl: str, parent: str | None = None) -> list[str]:
    out = []
    for _ in range(count):
        body = await vault.ok(
            "POST", "auth/token/create", token=parent, json={"policies": ["default"], "ttl": ttl}
        )
        out.append(body["auth"]["client_token"])
    return out


async def test_removes_expired_tokens_and_their_descendants_keeps_live_ones(vault: InProcessVault) -> None:
    await vault.ok(
        "PUT",
        "sys/policies/acl/creator",
        json={"policy": 'path "auth/token/*" { capabilities = ["update"] }'},
    )
    short = await _tokens(vault, 5, "1m")
    long = await _tokens(vault, 4, "10h")
    # A short-lived parent with a long-lived child and grandchild: both die with the parent.
    parent = (await vault.ok("POST", "auth/token/create", json={"policies": ["creator"], "ttl": "1m"}))[
        "auth"
    ]
    child = (await vault.ok("POST", "auth/token/create", token=parent["client_token"],
                            json={"policies": ["creator"], "ttl": "5h"}))["auth"]["client_token"]  # fmt: skip
    grandchild = (await _tokens(vault, 1, "5h", parent=child))[0]
    stored = await _count(vault, "id")
    assert stored == 1 + 5 + 4 + 3  # the root token too
    assert await remove_dead_tokens(vault.node) == 0  # nothing dead yet
    vault.clock.advance(120)
    assert not await _alive(vault, grandchild)
    assert await remove_dead_tokens(vault.node) == 5 + 3
    assert await _count(vault, "id") == 1 + 4
    assert await _count(vault, "acc") == 1 + 4  # accessor indexes went with the records
    # Left: the root token's links to the four live tokens; gone: those to the dead ones and below them.
    assert await _count(vault, "child") == 4
    for token in long:
        assert await _alive(vault, token)
    assert await _alive(vault, vault.root_token)
    assert all([not await _alive(vault, t) for t in short])
    # Idempotent: a second pass finds nothing.
    assert await remove_dead_tokens(vault.node) == 0


async def test_pages_and_batches(vault: InProcessVault, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(token_cleanup, "PAGE", 7)
    await _tokens(vault, 30, "1m")
    keep = await _tokens(vault, 10, "1h")
    vault.clock.advance(61)
    commits = 0
    real = vault.node.store.transaction

    def counting() -> object:
        nonlocal commits
        commits += 1
        return real()

    monkeypatch.setattr(vault.node.store, "transaction", counting)
    assert await remove_dead_tokens(vault.node, batch=4) == 30
    # 41 records in pages of 7: 6 scans (the last one short); 30 removals in batches of at most 4: >= 8.
    assert commits >= 6 + 8
    assert await _count(vault, "id") == 11
    for token in keep:
        assert await _alive(vault, token)


async def test_batch_fits_the_store_and_halves_when_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    vault = await start_vault(MemoryStore(StoreLimits(max_transaction_ops=40)))
    try:
        assert batch_size(vault.node) == 3  # (40 - 8) // 10
        assert batch_size(vault.node, 2) == 2
        # Pretend removals were cheaper than they are: the store refuses the batch and the job halves it.
        monkeypatch.setattr(token_cleanup, "OPS_PER_TOKEN", 1)
        assert batch_size(vault.node) == 32
        await _tokens(vault, 20, "1m")
        vault.clock.advance(61)
        assert await remove_dead_tokens(vault.node) == 20
        assert await _count(vault, "id") == 1
    finally:
        await vault.client.aclose()
        await vault.node.close()


async def test_a_lost_lease_stops_the_pass_and_the_next_one_finishes(vault: InProcessVault) -> None:
    await _tokens(vault, 9, "1m")
    vault.clock.advance(61)
    allowed = 2

    async def fence(tx: Transaction) -> None:
        nonlocal allowed
        if allowed == 0:
            raise LeaseLost(token_cleanup.JOB_NAME)
        allowed -= 1

    with pytest.raises(LeaseLost):
        await remove_dead_tokens(vault.node, batch=3, fence=fence)
    assert await _count(vault, "id") == 1 + 9 - 6  # two batches of three went, then it stopped
    assert await remove_dead_tokens(vault.node, batch=3) == 3
    assert await _count(vault, "id") == 1


async def test_two_nodes_racing_remove_each_token_once_and_keep_renewed_ones(vault: InProcessVault) -> None:
    other = Node(vault.node.store, clock=vault.clock)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=VaultApp(other)), base_url="http://b")
    try:
        for key in vault.keys[:2]:
            await client.put("/v1/sys/unseal", json={"key": key})
        dead = await _tokens(vault, 40, "1m")
        renewed = (await _tokens(vault, 1, "1m"))[0]
        vault.clock.advance(30)
        await vault.ok("POST", "auth/token/renew-self", token=renewed, json={"increment": "1h"})
        vault.clock.advance(31)
        counts = await asyncio.gather(
            remove_dead_tokens(vault.node, batch=3), remove_dead_tokens(other, batch=5)
        )
        assert sum(counts) == len(dead)
        assert await _count(vault, "id") == 2
        assert await _alive(vault, renewed)
    finally:
        await client.aclose()


async def test_registered_job_runs_under_its_lease_on_one_runner(vault: InProcessVault) -> None:
    other = Node(vault.node.store, clock=vault.clock)
    for key in vault.keys[:2]:
        await other.root.submit_unseal(key)
    first, second = BackgroundRunner(vault.node), BackgroundRunner(other)
    for runner in (first, second):
        runner.register(token_cleanup.JOB)
    await _tokens(vault, 3, "1m")
    vault.clock.advance(61)
    assert await first.run_once() == {token_cleanup.JOB_NAME: Outcome.RAN}
    assert await second.run_once() == {token_cleanup.JOB_NAME: Outcome.BUSY}
    assert await _count(vault, "id") == 1
    await first.stop()
    await second.stop()


def test_testing_overrides() -> None:
    from strongroom.core.job_settings import (
        BATCH_ENV,
        INTERVAL_ENV,
        LEASE_TTL_ENV,
        apply_testing_overrides,
        batch_override,
    )

    runner = BackgroundRunner.__new__(BackgroundRunner)
    runner.interval, runner.lease_ttl = 60.0, 180.0
    apply_testing_overrides(runner, {})
    assert (runner.interval, runner.lease_ttl) == (60.0, 180.0)
    apply_testing_overrides(runner, {INTERVAL_ENV: "0.5"})
    assert (runner.interval, runner.lease_ttl) == (0.5, 1.5)
    apply_testing_overrides(runner, {INTERVAL_ENV: "0.5", LEASE_TTL_ENV: "4"})
    assert (runner.interval, runner.lease_ttl) == (0.5, 4.0)
    assert batch_override({BATCH_ENV: "7"}) == 7
    assert batch_override({}) is None
    for bad in ({INTERVAL_ENV: "soon"}, {LEASE_TTL_ENV: "-1"}, {BATCH_ENV: "2.5"}, {BATCH_ENV: "0"}):
        with pytest.raises(InvalidRequest):
            apply_testing_overrides(runner, bad)
