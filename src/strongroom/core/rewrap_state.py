"""The stored state of a keyring re-wrap, what it covers, and how its progress is reported.

One re-wrap exists per keyring **owner** (the platform, or a tenant) that was rotated: a barrier record of
the root namespace, ``("ns", b"root", "sys", "rewrap", owner id)``, encrypted under the platform keyring like
the tenants' ceremony records (``docs/spec/namespaces.md`` section 3). ``sys/rotate`` writes it in the
rotation's own transaction (:func:`start`), so a rotation without its re-wrap cannot commit; the job
(:mod:`strongroom.core.rewrap`) advances it one bounded transaction at a time.

State machine (each arrow is taken in the transaction of the step that ends a pass)::

    COUNTING ──pass found older-term records──► REWRAPPING ──pass──► VERIFYING ──pass found none──► COMPLETE
        │                                                               │  (older terms dropped)
        └──pass found none (nothing to re-wrap)───────────────────────────────────────────────► COMPLETE
    VERIFYING ──found some it could re-wrap──► VERIFYING (another pass)
    VERIFYING ──only undecryptable ones left──► COMPLETE (older terms kept: ``failed`` > 0)
    any ──the owner's active term changed (rotated again)──► COUNTING toward the new term

What the job covers for one owner (:func:`owned_spaces`): the owner's subspace ``("ns", id)`` and the
subspaces of every plain namespace whose key owner it is (plain namespaces share their owner's keyring),
minus the two records that are not barrier records: the clear seal configuration and the root-key-sealed
keyring. A tenant's subspace belongs to the tenant, never to the platform; the tenant's key copy is a
platform record and so is covered by the platform's re-wrap.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from strongroom.barrier.keyring import Keyring
from strongroom.clock import rfc3339
from strongroom.core.namespace import ROOT_NAMESPACE_ID, NamespaceKeys
from strongroom.core.namespaces import registry
from strongroom.errors import CorruptRecord
from strongroom.storage.base import Transaction
from strongroom.storage.subspace import Subspace, namespace

AREA = "rewrap"
"""Second-level name in the root namespace's ``sys`` area: ``("sys", "rewrap", owner id)``."""
PENDING = "rewrap-pending"
"""``("sys", "rewrap-pending", owner id)``: a marker per unfinished re-wrap, so that each run of the job reads
the unfinished ones only, not the state of every owner that was ever rotated."""


class Phase(StrEnum):
    """Where a re-wrap stands (see the module docstring's state machine)."""

    COUNTING = "counting"
    REWRAPPING = "rewrapping"
    VERIFYING = "verifying"
    COMPLETE = "complete"


@dataclass(frozen=True)
class RewrapState:
    """The stored progress of one owner's re-wrap. Counters are records (not bytes)."""

    term: int
    """The active term every record is brought to."""
    phase: Phase
    started: float
    cursor: bytes | None = None
    """First physical key the current pass has not examined yet (``None``: the pass starts)."""
    total: int = 0
    """Records the counting pass found."""
    pending: int = 0
    """Of those, records under an older term when counted."""
    done: int = 0
    """Records the current pass examined."""
    found: int = 0
    """Records of the current pass under an older term."""
    failed: int = 0
    """Records of the current pass that did not decrypt (left untouched)."""
    rewrapped: int = 0
    """Records re-encrypted so far, all passes together."""
    passes: int = 0
    """Passes completed."""
    finished: float | None = None
    dropped: tuple[int, ...] = ()
    """Terms removed from the keyring when the re-wrap completed."""

    def to_json(self) -> dict[str, Any]:
        """The stored form (inside a barrier record)."""
        return {
            "term": self.term, "phase": self.phase.value, "started": self.started,
            "cursor": self.cursor.hex() if self.cursor is not None else None,
            "total": self.total, "pending": self.pending, "done": self.done, "found": self.found,
            "failed": self.failed, "rewrapped": self.rewrapped, "passes": self.passes,
            "finished": self.finished, "dropped": list(self.dropped),
        }  # fmt: skip

    @classmethod
    def from_json(cls, doc: Any) -> RewrapState:
        """Parse the stored form.

        Raises:
            CorruptRecord: the record is not a re-wrap state.
        """
        try:
            cursor = doc["cursor"]
            finished = doc["finished"]
            return cls(
                term=int(doc["term"]), phase=Phase(doc["phase"]), started=float(doc["started"]),
                cursor=bytes.fromhex(cursor) if cursor is not None else None,
                total=int(doc["total"]), pending=int(doc["pending"]), done=int(doc["done"]),
                found=int(doc["found"]), failed=int(doc["failed"]), rewrapped=int(doc["rewrapped"]),
                passes=int(doc["passes"]), finished=float(finished) if finished is not None else None,
                dropped=tuple(int(t) for t in doc["dropped"]),
            )  # fmt: skip
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise CorruptRecord("stored re-wrap state is damaged") from exc

    def next_pass(self, phase: Phase) -> RewrapState:
        """The state at the start of a new pass in ``phase`` (per-pass counters reset)."""
        return replace(self, phase=phase, cursor=None, done=0, found=0, failed=0, passes=self.passes + 1)


async def load(tx: Transaction, platform: NamespaceKeys, owner: bytes) -> RewrapState | None:
    """The stored re-wrap of ``owner`` (``None``: never rotated since this feature exists).

    Raises:
        CorruptRecord: the record is damaged.
    """
    doc = await platform.records(tx, "sys", AREA).get_json(owner)
    return None if doc is None else RewrapState.from_json(doc)


def store(tx: Transaction, platform: NamespaceKeys, owner: bytes, state: RewrapState) -> None:
    """Write ``owner``'s re-wrap state in ``tx`` (a complete one also drops its pending marker)."""
    platform.records(tx, "sys", AREA).put_json((owner,), state.to_json())
    if state.phase is Phase.COMPLETE:
        platform.records(tx, "sys", PENDING).clear(owner)


def start(tx: Transaction, platform: NamespaceKeys, owner: bytes, term: int, now: float) -> RewrapState:
    """In the rotation's transaction: (re)start ``owner``'s re-wrap toward ``term``; return the state."""
    state = RewrapState(term, Phase.COUNTING, now)
    store(tx, platform, owner, state)
    platform.records(tx, "sys", PENDING).put((owner,), b"")
    return state


def forget(tx: Transaction, platform: NamespaceKeys, owner: bytes) -> None:
    """Drop ``owner``'s re-wrap state (the owner was deleted)."""
    platform.records(tx, "sys", AREA).clear(owner)
    platform.records(tx, "sys", PENDING).clear(owner)


async def unfinished(tx: Transaction, platform: NamespaceKeys) -> list[bytes]:
    """The owners whose re-wrap is not complete (their pending markers), the platform first.

    Raises:
        CorruptRecord: a marker does not authenticate.
    """
    owners = [bytes(key[0]) for key, _ in await platform.records(tx, "sys", PENDING).range()]
    return sorted(owners, key=lambda owner: owner != ROOT_NAMESPACE_ID)


async def owned_spaces(tx: Transaction, platform: NamespaceKeys, owner: bytes) -> list[Subspace] | None:
    """The subspaces whose records ``owner``'s keyring encrypts, in key order; ``None`` if it was deleted.

    Read from the platform's namespace registry: the owner and every plain namespace below it reached
    through plain namespaces only (a tenant below starts its own keyring). A namespace created later
    needs no re-wrap: everything it holds was written after the rotation, under the new term.

    Raises:
        CorruptRecord: a registry record is damaged.
    """
    tree = await registry(tx, platform)
    if owner != ROOT_NAMESPACE_ID and owner not in tree:
        return None
    children: dict[bytes, list[bytes]] = {}
    for child, (parent, sealable) in tree.items():
        if not sealable:
            children.setdefault(parent, []).append(child)
    owned, frontier = [owner], [owner]
    while frontier:
        below = children.get(frontier.pop(), [])
        owned.extend(below)
        frontier.extend(below)
    return sorted((namespace(ns_id) for ns_id in owned), key=lambda space: space.raw_prefix)


def describe(state: RewrapState | None, keyring: Keyring) -> dict[str, Any]:
    """The ``rewrap`` object of ``sys/key-status`` and the body of ``sys/rotate/status``.

    ``state`` is ``idle`` (no re-wrap since this feature exists), ``running`` or ``done``; ``done`` and
    ``total`` are the records the current pass examined and the records counted (``total`` is 0 while
    counting). Only counts and term numbers: nothing about what the records hold.
    """
    readable = [t.number for t in keyring.terms]
    if state is None:
        return {
            "state": "idle", "phase": "", "term": keyring.active.number, "done": 0, "total": 0,
            "started": "", "finished": "", "rewrapped": 0, "failed": 0, "passes": 0,
            "readable_terms": readable, "dropped_terms": [],
        }  # fmt: skip
    complete = state.phase is Phase.COMPLETE
    return {
        "state": "done" if complete else "running",
        "phase": state.phase.value,
        "term": state.term,
        "done": state.done if not complete else state.total,
        "total": state.total,
        "started": rfc3339(state.started),
        "finished": rfc3339(state.finished) if state.finished is not None else "",
        "rewrapped": state.rewrapped,
        "failed": state.failed,
        "passes": state.passes,
        "readable_terms": readable,
        "dropped_terms": list(state.dropped),
    }
