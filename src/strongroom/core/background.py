"""The per-node runner of background jobs: each registered job runs periodically under its lease.

Every node (every worker process) runs one :class:`BackgroundRunner`. On each tick (every
``interval`` seconds, 60 by default) it goes through its jobs in registration order; for each it takes
or extends the job's lease (:mod:`strongroom.core.jobs`) and runs the job only if it holds it. The lease
is kept between ticks (its TTL is three intervals by default and every tick extends it), so one node
keeps running a job while it is alive, and another node takes over at its first tick after the lease
lapsed: a node that dies mid-job leaves the job to another one TTL later. Stopping the runner (server
shutdown) releases its leases so another node takes over at its next tick.

Nothing runs while the root namespace is sealed on this node: the tick skips every job, and any
transaction a job starts fails with :class:`~strongroom.errors.Sealed` if the node seals meanwhile.

Jobs must be idempotent and re-check in each of their transactions whether a step is still due: a
lease makes a second concurrent runner unlikely, not impossible (see :mod:`strongroom.core.jobs`).
Long jobs call :meth:`JobRun.keep_alive` between steps and :meth:`JobRun.check` inside each write
transaction (the fence).

Tests call :meth:`BackgroundRunner.run_once` directly; time comes from the node's injected clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum

from strongroom.core.jobs import JobLeases, Lease, LeaseLost
from strongroom.core.node import Node
from strongroom.crypto.random import random_uuid
from strongroom.errors import Sealed, StrongroomError
from strongroom.storage.base import Transaction

log = logging.getLogger(__name__)

DEFAULT_INTERVAL = 60.0


class Outcome(StrEnum):
    """What one tick did with one job."""

    RAN = "ran"
    """This runner held the lease and the job completed."""
    BUSY = "busy"
    """Another runner holds the lease."""
    SEALED = "sealed"
    """The root namespace is sealed on this node (or sealed during the run)."""
    LOST = "lost"
    """The lease lapsed or was taken over during the run; the job stopped."""
    FAILED = "failed"
    """The job or the lease store raised an error; the next tick tries again."""


@dataclass
class JobRun:
    """What a running job receives: the node, and its lease for fencing and renewal."""

    node: Node
    lease: Lease
    leases: JobLeases
    ttl: float

    async def check(self, tx: Transaction) -> None:
        """Call first in each of the job's write transactions (see :meth:`JobLeases.check`).

        Raises:
            LeaseLost: the tenure is over; the job must stop.
            Sealed: the root namespace sealed meanwhile.
        """
        await self.leases.check(tx, self.lease)

    async def keep_alive(self) -> None:
        """Renew the lease once a third of its TTL has passed since it was last extended.

        Raises:
            LeaseLost: the tenure is over; the job must stop.
            Sealed: the root namespace sealed meanwhile.
        """
        extended_at = self.lease.expires - self.ttl
        if self.leases.clock.now() - extended_at >= self.ttl / 3:
            self.lease = await self.leases.renew(self.lease, self.ttl)


JobFunction = Callable[[JobRun], Awaitable[None]]


@dataclass(frozen=True)
class Job:
    """A named background job. ``name`` names its lease record: keep it stable across releases."""

    name: str
    run: JobFunction


class BackgroundRunner:
    """Runs registered jobs on one node, each under its lease (see the module docstring)."""

    def __init__(
        self,
        node: Node,
        *,
        interval: float = DEFAULT_INTERVAL,
        lease_ttl: float | None = None,
        holder: str | None = None,
    ) -> None:
        """``lease_ttl`` defaults to three intervals; ``holder`` (the lease holder id) to a random id."""
        self.node = node
        self.interval = interval
        self.lease_ttl = lease_ttl if lease_ttl is not None else 3 * interval
        self.leases = JobLeases(node.root, node.clock, holder or random_uuid())
        self._jobs: list[Job] = []
        self._held: dict[str, Lease] = {}
        self._task: asyncio.Task[None] | None = None
        self._tick = asyncio.Lock()

    def __repr__(self) -> str:
        return f"BackgroundRunner(holder={self.leases.holder!r}, jobs={[j.name for j in self._jobs]})"

    def register(self, job: Job) -> None:
        """Add ``job`` (run after the jobs registered before it).

        Raises:
            ValueError: a job of that name is already registered.
        """
        if any(j.name == job.name for j in self._jobs):
            raise ValueError(f"background job {job.name!r} is already registered")
        self._jobs.append(job)

    async def run_once(self) -> dict[str, Outcome]:
        """Run one tick now: every job whose lease this runner gets; return each job's outcome."""
        async with self._tick:
            return {job.name: await self._run(job) for job in self._jobs}

    async def _run(self, job: Job) -> Outcome:
        if self.node.root.sealed:
            self._held.pop(job.name, None)
            return Outcome.SEALED
        try:
            lease = await self.leases.acquire(job.name, self.lease_ttl)
        except Sealed:
            return Outcome.SEALED
        except StrongroomError as exc:
            log.warning("background job %s: could not take its lease: %s", job.name, exc.message)
            return Outcome.FAILED
        if lease is None:
            self._held.pop(job.name, None)
            return Outcome.BUSY
        self._held[job.name] = lease
        run = JobRun(self.node, lease, self.leases, self.lease_ttl)
        try:
            await job.run(run)
        except LeaseLost:
            self._held.pop(job.name, None)
            log.info("background job %s stopped: its lease passed to another runner", job.name)
            return Outcome.LOST
        except Sealed:
            return Outcome.SEALED
        except Exception:
            # A failing job must neither stop the other jobs nor kill the loop; it runs again next tick.
            log.exception("background job %s failed", job.name)
            return Outcome.FAILED
        finally:
            if job.name in self._held:
                self._held[job.name] = run.lease
        return Outcome.RAN

    def start(self) -> None:
        """Start ticking on the running event loop (first tick at once).

        Raises:
            RuntimeError: already started, or no running event loop.
        """
        if self._task is not None:
            raise RuntimeError("background runner already started")
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="strongroom-background")

    async def _loop(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception:
                # run_once already contains job failures; this guards the loop against the unforeseen.
                log.exception("background runner tick failed")
            await asyncio.sleep(self.interval)

    async def stop(self) -> None:
        """Stop ticking (cancelling a tick in progress) and release the leases this runner holds.

        A cancelled job's open transaction is discarded; its committed steps stay (jobs are idempotent).
        Releasing is best effort: if the node is sealed or the store fails, the leases simply lapse.
        """
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        held, self._held = self._held, {}
        for lease in held.values():
            try:
                await self.leases.release(lease)
            except StrongroomError as exc:
                log.info("background job %s: lease left to lapse: %s", lease.job, exc.message)
