"""Job leases and the background runner: two "nodes" over one store, time moved by a FakeClock."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from strongroom.clock import FakeClock
from strongroom.core.background import BackgroundRunner, Job, JobRun, Outcome
from strongroom.core.jobs import JobLeases, Lease, LeaseLost
from strongroom.core.node import Node
from strongroom.errors import CorruptRecord, Sealed, TransactionConflict
from strongroom.storage.base import Store
from tests.support.vault import InProcessVault, start_vault

TTL = 30.0


@dataclass
class Cluster:
    """Two nodes over one memory store, both unsealed, sharing one fake clock."""

    vault: InProcessVault
    a: Node
    b: Node

    @property
    def clock(self) -> FakeClock:
        return self.vault.clock

    @property
    def store(self) -> Store:
        return self.a.store

    def leases(self, node: Node, holder: str) -> JobLeases:
        return JobLeases(node.root, node.clock, holder)


@pytest.fixture
async def cluster() -> AsyncIterator[Cluster]:
    vault = await start_vault()
    other = Node(vault.node.store, clock=vault.clock)
    for key in vault.keys[:2]:
        await other.root.submit_unseal(key)
    assert not other.root.sealed
    try:
        yield Cluster(vault, vault.node, other)
    finally:
        other.root.seal()
        await vault.client.aclose()
        await vault.node.close()


async def _stored(c: Cluster, job: str) -> Lease | None:
    async with c.store.transaction() as tx:
        return await c.leases(c.b, "reader").read(tx, job)


# -- leases -------------------------------------------------------------------------------------------


async def test_one_holder_at_a_time_and_renewal_keeps_the_fence(cluster: Cluster) -> None:
    a, b = cluster.leases(cluster.a, "a"), cluster.leases(cluster.b, "b")
    first = await a.acquire("j", TTL)
    assert first is not None and first.holder == "a" and first.fence == 1
    assert first.expires == cluster.clock.now() + TTL
    assert await b.acquire("j", TTL) is None
    cluster.clock.advance(10)
    again = await a.acquire("j", TTL)
    assert again is not None and again.fence == 1 and again.expires == cluster.clock.now() + TTL
    # Leases of different jobs are independent.
    other = await b.acquire("k", TTL)
    assert other is not None and other.fence == 1


async def test_racing_acquisitions_are_serialised_by_the_store(cluster: Cluster) -> None:
    a, b = cluster.leases(cluster.a, "a"), cluster.leases(cluster.b, "b")

    async def interleaved() -> None:
        async with cluster.store.transaction() as t1:
            assert await a.try_acquire(t1, "j", TTL) is not None
            async with cluster.store.transaction() as t2:
                assert await b.try_acquire(t2, "j", TTL) is not None
            # t2 committed; t1 commits when this block ends

    # Both read the empty record and both write; the second commit must conflict.
    with pytest.raises(TransactionConflict):
        await interleaved()
    stored = await _stored(cluster, "j")
    assert stored is not None and stored.holder == "b" and stored.fence == 1
    # The loser's retry sees the winner's live lease.
    assert await a.acquire("j", TTL) is None
    # Through the retrying API, concurrently: exactly one wins.
    results = await asyncio.gather(a.acquire("x", TTL), b.acquire("x", TTL))
    assert sum(r is not None for r in results) == 1


async def test_expiry_hands_over_with_a_new_fence(cluster: Cluster) -> None:
    a, b = cluster.leases(cluster.a, "a"), cluster.leases(cluster.b, "b")
    held = await a.acquire("j", TTL)
    assert held is not None
    cluster.clock.advance(TTL - 1)
    assert await b.acquire("j", TTL) is None
    cluster.clock.advance(1)  # expiry is exclusive: at `expires` the lease has lapsed
    taken = await b.acquire("j", TTL)
    assert taken is not None and taken.holder == "b" and taken.fence == 2
    # The old tenure is over for good: no renewal, no writes under it, no quiet re-acquisition.
    with pytest.raises(LeaseLost):
        await a.renew(held, TTL)
    async with cluster.store.transaction() as tx:
        with pytest.raises(LeaseLost):
            await a.check(tx, held)
    assert await a.acquire("j", TTL) is None


async def test_a_lapsed_lease_retaken_by_its_holder_is_a_new_tenure(cluster: Cluster) -> None:
    a = cluster.leases(cluster.a, "a")
    first = await a.acquire("j", TTL)
    assert first is not None
    cluster.clock.advance(TTL + 1)
    second = await a.acquire("j", TTL)
    assert second is not None and second.fence == 2
    async with cluster.store.transaction() as tx:
        with pytest.raises(LeaseLost):
            await a.check(tx, first)
        await a.check(tx, second)


async def test_renew_extends_the_same_tenure(cluster: Cluster) -> None:
    a, b = cluster.leases(cluster.a, "a"), cluster.leases(cluster.b, "b")
    held = await a.acquire("j", TTL)
    assert held is not None
    cluster.clock.advance(20)
    renewed = await a.renew(held, TTL)
    assert renewed.fence == held.fence and renewed.expires == cluster.clock.now() + TTL
    cluster.clock.advance(20)  # past the first expiry, within the renewed one
    assert await b.acquire("j", TTL) is None


async def test_release_lets_another_take_over_at_once_and_fences_keep_growing(cluster: Cluster) -> None:
    a, b = cluster.leases(cluster.a, "a"), cluster.leases(cluster.b, "b")
    held = await a.acquire("j", TTL)
    assert held is not None
    assert await a.release(held) is True
    taken = await b.acquire("j", TTL)
    assert taken is not None and taken.fence == 2
    assert await a.release(held) is False  # not its tenure any more: nothing changes
    assert await b.acquire("j", TTL) == Lease("j", "b", taken.expires, 2)  # its renewal: same tenure
    assert await b.release(taken) is True
    again = await a.acquire("j", TTL)
    assert again is not None and again.fence == 3


async def test_lease_records_are_barrier_records(cluster: Cluster) -> None:
    a = cluster.leases(cluster.a, "holder-in-clear?")
    await a.acquire("j", TTL)
    async with cluster.store.transaction() as tx:
        rows = await tx.range(b"", b"\xff")
    assert not any(b"holder-in-clear?" in key + value for key, value in rows)
    assert not any(b'"fence"' in value for _, value in rows)


async def test_leases_need_the_root_namespace_unsealed(cluster: Cluster) -> None:
    cluster.a.root.seal()
    with pytest.raises(Sealed):
        await cluster.leases(cluster.a, "a").acquire("j", TTL)
    assert await _stored(cluster, "j") is None


async def test_a_damaged_lease_record_is_refused(cluster: Cluster) -> None:
    a = cluster.leases(cluster.a, "a")
    keys = cluster.a.root.keys
    assert keys is not None
    async with cluster.store.transaction() as tx:
        keys.records(tx, "sys").put(("lease", "j"), b"not json")
    with pytest.raises(CorruptRecord):
        await a.acquire("j", TTL)


# -- the runner -----------------------------------------------------------------------------------------


def _runner(node: Node, holder: str, *jobs: Job) -> BackgroundRunner:
    runner = BackgroundRunner(node, interval=10, lease_ttl=TTL, holder=holder)
    for job in jobs:
        runner.register(job)
    return runner


def _recording(name: str, log: list[str], tag: str) -> Job:
    async def run(_: JobRun) -> None:
        log.append(tag)

    return Job(name, run)


async def test_only_one_runner_runs_a_job_until_its_holder_stops(cluster: Cluster) -> None:
    ran: list[str] = []
    ra = _runner(cluster.a, "a", _recording("j", ran, "a"))
    rb = _runner(cluster.b, "b", _recording("j", ran, "b"))
    assert await ra.run_once() == {"j": Outcome.RAN}
    assert await rb.run_once() == {"j": Outcome.BUSY}
    # The holder keeps its lease from tick to tick (each tick extends it).
    for _ in range(5):
        cluster.clock.advance(10)
        assert await ra.run_once() == {"j": Outcome.RAN}
        assert await rb.run_once() == {"j": Outcome.BUSY}
    assert ran == ["a"] * 6
    await ra.stop()  # releases: the other node takes over at its next tick
    assert await rb.run_once() == {"j": Outcome.RAN}
    assert ran[-1] == "b"


async def test_a_node_dying_mid_job_leaves_the_job_to_another_after_expiry(cluster: Cluster) -> None:
    started = asyncio.Event()
    runs: list[JobRun] = []

    async def hangs(run: JobRun) -> None:
        runs.append(run)
        started.set()
        await asyncio.Event().wait()  # never returns: the node dies here

    ran: list[str] = []
    ra = _runner(cluster.a, "a", Job("j", hangs))
    rb = _runner(cluster.b, "b", _recording("j", ran, "b"))
    tick = asyncio.create_task(ra.run_once())
    await asyncio.wait_for(started.wait(), 10)
    tick.cancel()  # the process is gone: no release, no further writes
    with pytest.raises(asyncio.CancelledError):
        await tick
    assert await rb.run_once() == {"j": Outcome.BUSY}
    cluster.clock.advance(TTL)
    assert await rb.run_once() == {"j": Outcome.RAN}
    assert ran == ["b"]
    # Had the dead runner only stalled, its next write would be fenced off.
    async with cluster.store.transaction() as tx:
        with pytest.raises(LeaseLost):
            await runs[0].check(tx)


async def test_a_job_whose_lease_passed_on_stops_as_lost(cluster: Cluster) -> None:
    b = cluster.leases(cluster.b, "b")

    async def stalls_then_writes(run: JobRun) -> None:
        cluster.clock.advance(TTL + 1)  # the job stalled past its lease ...
        assert await b.acquire("j", TTL) is not None  # ... and another runner took over
        async with cluster.store.transaction() as tx:
            await run.check(tx)

    ra = _runner(cluster.a, "a", Job("j", stalls_then_writes))
    assert await ra.run_once() == {"j": Outcome.LOST}
    assert await ra.run_once() == {"j": Outcome.BUSY}


async def test_keep_alive_renews_after_a_third_of_the_ttl(cluster: Cluster) -> None:
    seen: list[Lease] = []

    async def long_job(run: JobRun) -> None:
        first = run.lease
        await run.keep_alive()
        seen.append(run.lease)  # too early: unchanged
        cluster.clock.advance(TTL / 3)
        await run.keep_alive()
        seen.append(run.lease)
        assert run.lease.fence == first.fence

    ra = _runner(cluster.a, "a", Job("j", long_job))
    start = cluster.clock.now()
    assert await ra.run_once() == {"j": Outcome.RAN}
    assert seen[0].expires == start + TTL
    assert seen[1].expires == start + TTL / 3 + TTL


async def test_sealed_node_runs_nothing_and_takes_no_lease(cluster: Cluster) -> None:
    ran: list[str] = []
    ra = _runner(cluster.a, "a", _recording("j", ran, "a"))
    cluster.a.root.seal()
    assert await ra.run_once() == {"j": Outcome.SEALED}
    assert ran == []
    assert await _stored(cluster, "j") is None


async def test_a_failing_job_does_not_stop_the_others(cluster: Cluster) -> None:
    attempts: list[int] = []

    async def broken(_: JobRun) -> None:
        attempts.append(1)
        raise RuntimeError("boom")

    ran: list[str] = []
    ra = _runner(cluster.a, "a", Job("bad", broken), _recording("good", ran, "a"))
    assert await ra.run_once() == {"bad": Outcome.FAILED, "good": Outcome.RAN}
    assert await ra.run_once() == {"bad": Outcome.FAILED, "good": Outcome.RAN}
    assert len(attempts) == 2 and ran == ["a", "a"]


async def test_job_names_are_unique(cluster: Cluster) -> None:
    ra = _runner(cluster.a, "a", _recording("j", [], "a"))
    with pytest.raises(ValueError, match="already registered"):
        ra.register(_recording("j", [], "again"))


async def test_start_ticks_and_stop_releases(cluster: Cluster) -> None:
    ticked = asyncio.Event()

    async def job(_: JobRun) -> None:
        ticked.set()

    runner = BackgroundRunner(cluster.a, interval=3600, holder="a")
    runner.register(Job("j", job))
    runner.start()
    with pytest.raises(RuntimeError):
        runner.start()
    await asyncio.wait_for(ticked.wait(), 10)
    await runner.stop()
    # Released on stop: another node takes the lease at once, with the next fence.
    taken = await cluster.leases(cluster.b, "b").acquire("j", TTL)
    assert taken is not None and taken.fence == 2
