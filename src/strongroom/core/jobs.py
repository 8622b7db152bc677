"""Job leases: at most one runner of each background job at a time, across every node and worker.

A lease is one barrier record of the root namespace, ``("ns", b"root", "sys", "lease", job)``, holding
JSON ``{"holder", "expires", "fence"}`` (``docs/spec/storage-layout.md`` section 3):

* ``holder``: a random id per runner (one per node process, so also one per worker);
* ``expires``: wall-clock time (the injected :class:`~strongroom.clock.Clock`) when it lapses;
* ``fence``: a counter that grows by one each time the lease passes to a new tenure (another holder, or
  the same holder after it lapsed) and never decreases: release keeps the record and its counter.

Every operation is one storage transaction, so two runners racing for a lease are serialised by the
store: both read the record, both write, and the second commit raises
:class:`~strongroom.errors.TransactionConflict`; its retry reads the winner's live lease and gives up.
A job's own transactions call :meth:`JobLeases.check` first: it reads the lease record (so a takeover
committed meanwhile makes the job's commit conflict) and refuses to go on once the lease is no longer
this runner's live tenure. That is the fence: a runner that stalled past its expiry cannot write after
another runner took over.

Exclusivity only saves work; it is not what makes jobs correct. Lease expiry compares wall clocks of
different machines, so a node whose clock runs ahead may see a lease lapse early. Jobs must therefore
still be idempotent, with each step re-checking in its own transaction whether it is still needed.
Keep the lease TTL far above any expected clock skew (the runner's default is three intervals).

Records are barrier records (integrity-protected; storage cannot forge a holder), so leases are only
read and written while the root namespace is unsealed, which is also the only time jobs run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from strongroom.clock import Clock
from strongroom.core.namespace import NamespaceKeys
from strongroom.core.vault import Vault
from strongroom.errors import CorruptRecord, StrongroomError
from strongroom.storage.base import Transaction, transactional

LEASE_KEY = "lease"
"""Second-level name inside the root namespace's ``sys`` area: ``("sys", "lease", job)``."""


class LeaseLost(StrongroomError):
    """This runner's lease lapsed or passed to another runner; the job must stop writing."""

    def __init__(self, job: str) -> None:
        super().__init__(f"lease of background job {job!r} is no longer held")
        self.job = job


@dataclass(frozen=True)
class Lease:
    """One tenure of a job's lease."""

    job: str
    holder: str
    expires: float
    fence: int

    def live(self, now: float) -> bool:
        """Whether the lease has not lapsed at ``now``."""
        return now < self.expires

    def to_json(self) -> bytes:
        """Stored form (the job name is the record's key)."""
        return orjson.dumps({"holder": self.holder, "expires": self.expires, "fence": self.fence})

    @classmethod
    def from_json(cls, job: str, raw: bytes) -> Lease:
        """Parse the stored form.

        Raises:
            CorruptRecord: the record is not a lease.
        """
        try:
            doc: Any = orjson.loads(raw)
            return cls(job, str(doc["holder"]), float(doc["expires"]), int(doc["fence"]))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise CorruptRecord("stored job lease is damaged") from exc


class JobLeases:
    """Acquire, renew, check and release job leases for one runner (``holder``) of one node.

    Every method that takes no transaction runs one transaction of its own (retried on conflict) and
    raises :class:`~strongroom.errors.Sealed` while the root namespace is sealed on this node.
    """

    def __init__(self, vault: Vault, clock: Clock, holder: str) -> None:
        self.vault = vault
        self.clock = clock
        self.holder = holder

    def __repr__(self) -> str:
        return f"JobLeases(holder={self.holder!r})"

    # -- inside a caller's transaction ----------------------------------------------------------------

    async def read(self, tx: Transaction, job: str) -> Lease | None:
        """Return the stored lease of ``job`` (live or not), or ``None`` if it was never taken.

        Raises:
            Sealed: the root namespace is sealed on this node.
            CorruptRecord: the record is damaged.
        """
        keys = await self.vault.current_keys(tx)
        raw = await keys.records(tx, "sys").get(LEASE_KEY, job)
        return None if raw is None else Lease.from_json(job, raw)

    async def try_acquire(self, tx: Transaction, job: str, ttl: float) -> Lease | None:
        """In ``tx``: take or extend the lease of ``job`` for ``ttl`` seconds; ``None`` if another holds it.

        A live lease of this holder is extended with the same fence; a lapsed or released one (anyone's)
        starts a new tenure with the next fence.

        Raises:
            Sealed, CorruptRecord: as :meth:`read`.
        """
        now = self.clock.now()
        current = await self.read(tx, job)
        if current is not None and current.live(now) and current.holder != self.holder:
            return None
        if current is not None and current.live(now):
            fence = current.fence
        else:
            fence = (current.fence if current is not None else 0) + 1
        lease = Lease(job, self.holder, now + ttl, fence)
        self._write(tx, await self.vault.current_keys(tx), lease)
        return lease

    async def check(self, tx: Transaction, lease: Lease) -> None:
        """In a job's transaction: make sure ``lease`` is still this runner's live tenure.

        The read joins ``tx``'s read set, so a takeover committed before ``tx`` commits makes ``tx``
        conflict (and its retry then fails here).

        Raises:
            LeaseLost: the lease lapsed, was released, or belongs to another tenure.
            Sealed, CorruptRecord: as :meth:`read`.
        """
        current = await self.read(tx, lease.job)
        if not self._same_tenure(current, lease):
            raise LeaseLost(lease.job)

    # -- one transaction each -------------------------------------------------------------------------

    async def acquire(self, job: str, ttl: float) -> Lease | None:
        """Take or extend the lease of ``job`` (see :meth:`try_acquire`) in a transaction of its own.

        Raises:
            Sealed, CorruptRecord: as :meth:`read`; StorageError: the store failed.
        """

        async def run(tx: Transaction) -> Lease | None:
            return await self.try_acquire(tx, job, ttl)

        lease = await transactional(self.vault.store, run)
        await self.vault.account_encryptions()
        return lease

    async def renew(self, lease: Lease, ttl: float) -> Lease:
        """Extend a live tenure by ``ttl`` seconds from now; the fence stays.

        Raises:
            LeaseLost: the tenure is over (lapsed, released or taken over).
            Sealed, CorruptRecord: as :meth:`read`.
        """

        async def run(tx: Transaction) -> Lease:
            await self.check(tx, lease)
            renewed = Lease(lease.job, self.holder, self.clock.now() + ttl, lease.fence)
            self._write(tx, await self.vault.current_keys(tx), renewed)
            return renewed

        renewed = await transactional(self.vault.store, run)
        await self.vault.account_encryptions()
        return renewed

    async def release(self, lease: Lease) -> bool:
        """End a tenure now so another runner may take over at once; return whether it was still held.

        The record stays (lapsed, same fence) so fences keep growing. Releasing a lease that is no
        longer this tenure's changes nothing.

        Raises:
            Sealed, CorruptRecord: as :meth:`read`.
        """

        async def run(tx: Transaction) -> bool:
            current = await self.read(tx, lease.job)
            if not self._same_tenure(current, lease):
                return False
            self._write(tx, await self.vault.current_keys(tx), Lease(lease.job, self.holder, 0.0, lease.fence))
            return True

        released = await transactional(self.vault.store, run)
        await self.vault.account_encryptions()
        return released

    # -- helpers --------------------------------------------------------------------------------------

    def _same_tenure(self, current: Lease | None, lease: Lease) -> bool:
        return (
            current is not None
            and current.holder == self.holder
            and current.fence == lease.fence
            and current.live(self.clock.now())
        )

    @staticmethod
    def _write(tx: Transaction, keys: NamespaceKeys, lease: Lease) -> None:
        keys.records(tx, "sys").put((LEASE_KEY, lease.job), lease.to_json())
