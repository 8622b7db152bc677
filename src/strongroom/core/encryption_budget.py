"""Counting barrier encryptions per keyring term, in blocks, and rotating before AES-GCM's bound.

Records are encrypted with AES-256-GCM under random 96-bit nonces, safe for about 2^32 encryptions per
key. Every node reserves encryptions of the active term in blocks of :data:`BLOCK` through a counter
record ``("ns", id, "ctr", "enc", term)`` (a barrier record), so the stored total is always at least the
number of encryptions done under that term by all nodes together, and no request ever writes a hot
counter: a node reserves its next block once it has used half of the current one, in a transaction of
its own after a request committed. When the stored total passes
:data:`~strongroom.barrier.barrier.ROTATION_THRESHOLD` the keyring is rotated (a new term) in that same
transaction, as Vault does automatically.

A node that crashes loses at most the unused rest of its block: the count can only overestimate, which
errs on the safe side (an earlier rotation).
"""

from __future__ import annotations

from dataclasses import dataclass

from strongroom.barrier.barrier import ROTATION_THRESHOLD
from strongroom.barrier.keyring import Keyring
from strongroom.clock import Clock
from strongroom.core.namespace import NamespaceKeys
from strongroom.errors import DecryptionFailed
from strongroom.storage.base import Store, Transaction, transactional

BLOCK = 1 << 16


@dataclass
class Reservation:
    """What this node may still encrypt under one term, and the stored total after its last block."""

    term: int
    allowed: int = 0
    stored_total: int = 0


class EncryptionBudget:
    """Per-node accounting of one namespace's barrier encryptions (see the module docstring)."""

    def __init__(self, store: Store, clock: Clock, threshold: int = ROTATION_THRESHOLD) -> None:
        self.store = store
        self.clock = clock
        self.threshold = threshold
        self._reservation: Reservation | None = None
        self.reserving = False

    def _current(self, keys: NamespaceKeys) -> Reservation:
        term = keys.keyring.active.number
        if self._reservation is None or self._reservation.term != term:
            # A new term (rotation here or elsewhere) or a new barrier: counting restarts for this node.
            self._reservation = Reservation(term)
            keys.barrier.encryptions = 0
        return self._reservation

    def needs_block(self, keys: NamespaceKeys) -> bool:
        """Whether this node has used half of its reserved encryptions (or has none reserved yet)."""
        r = self._current(keys)
        return keys.barrier.encryptions + BLOCK // 2 > r.allowed

    async def reserve(self, keys: NamespaceKeys) -> NamespaceKeys | None:
        """Reserve one more block; return rotated keys if the term passed the rotation threshold.

        The returned keys are already committed to storage; the caller installs them. Conflicts with
        other nodes' reservations are retried by :func:`transactional`.
        """
        r = self._current(keys)

        async def run(tx: Transaction) -> tuple[int, NamespaceKeys | None]:
            # The keyring storage holds, read in this transaction (so a concurrent rotation or rekey
            # conflicts). The counter is written with it, never with older keys held in memory: a
            # re-wrap may have dropped their terms (core/rewrap.py relies on every writer doing this).
            physical = keys.space.key("keyring")
            blob = await tx.get(physical)
            if blob is None:
                return r.stored_total, None  # the namespace is gone: write nothing into its subspace
            try:
                stored_ring = Keyring.open(keys.root_key, physical, blob)
            except DecryptionFailed:
                return r.stored_total, None  # rekeyed elsewhere: this node seals at its next request
            current = keys
            if stored_ring.generation != keys.keyring.generation:
                current = NamespaceKeys.build(keys.ns_id, keys.path, keys.root_key, stored_ring)
            records = current.records(tx, "ctr")
            stored = await records.get_json("enc", r.term)
            total = (int(stored) if stored is not None else 0) + BLOCK
            records.put_json(("enc", r.term), total)
            if total <= self.threshold:
                return total, None
            # Rotate only if the stored keyring is still the one this node serves: otherwise another node
            # changed it and this node adopts that change on its next request instead.
            if stored_ring.generation != keys.keyring.generation:
                return total, None
            rotated = stored_ring.rotated(self.clock.now())
            new_keys = NamespaceKeys.build(keys.ns_id, keys.path, keys.root_key, rotated)
            tx.set(physical, rotated.seal(keys.root_key, physical))
            return total, new_keys

        total, rotated = await transactional(self.store, run)
        r.allowed += BLOCK
        r.stored_total = total
        return rotated

    def encryptions(self, keys: NamespaceKeys) -> int:
        """Best estimate of encryptions under the active term by all nodes: the stored total less what
        this node reserved but has not used (exact with one node)."""
        r = self._current(keys)
        return max(keys.barrier.encryptions, r.stored_total - (r.allowed - keys.barrier.encryptions))
