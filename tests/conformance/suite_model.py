"""Randomized conformance test: interleaved transactions checked against a model of the guarantees.

Several transactions are open at once; random gets, ranges, sets, clears and commits are interleaved.
Every read must equal the transaction's snapshot (a copy of committed state at its first read) overlaid
with its own writes. A commit that succeeds must be serializable at its commit point: every value it read
from its snapshot (not decided by its own writes) must still be current. A reported conflict requires that
something committed after the snapshot. The final store must equal the model.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

import pytest

from strongroom.errors import TransactionConflict
from strongroom.storage.base import Store

KEYS = [
    b"\x00",
    b"\x00\xff",
    b"a",
    b"a\x00",
    b"ab",
    b"b",
    b"b\x00\x00",
    b"c",
    b"cc",
    b"\xfe",
    b"\xff",
    b"\xff\xff",
]
BOUNDS = [b"\x00", b"a", b"a\x00", b"b", b"c", b"d", b"\xff", b"\xff\xff\xff"]


@dataclass
class ModelTx:
    cm: Any
    tx: Any
    snapshot: dict[bytes, bytes]
    commits_at_start: int
    view: dict[bytes, bytes]
    local_keys: set[bytes] = field(default_factory=set)
    local_ranges: list[tuple[bytes, bytes]] = field(default_factory=list)
    # (begin, end) of snapshot regions whose values the transaction observed.
    observed: list[tuple[bytes, bytes, frozenset[bytes], tuple[tuple[bytes, bytes], ...]]] = field(
        default_factory=list
    )

    def decided_locally(self, key: bytes) -> bool:
        return key in self.local_keys or any(b <= key < e for b, e in self.local_ranges)


def _select(
    view: dict[bytes, bytes], b: bytes, e: bytes, limit: int, reverse: bool
) -> list[tuple[bytes, bytes]]:
    rows = sorted((k, v) for k, v in view.items() if b <= k < e)
    if reverse:
        rows.reverse()
    return rows[:limit] if limit else rows


def _region(data: dict[bytes, bytes], b: bytes, e: bytes, skip: Any) -> dict[bytes, bytes]:
    return {k: v for k, v in data.items() if b <= k < e and not skip(k)}


async def _run(store: Store, seed: int, steps: int) -> tuple[int, int]:
    rng = random.Random(seed)
    committed: dict[bytes, bytes] = {}
    commits = 0
    open_txs: list[ModelTx] = []
    outcomes = [0, 0]
    for _ in range(steps):
        if (len(open_txs) < 3 and rng.random() < 0.3) or not open_txs:
            cm = store.transaction()
            tx = await cm.__aenter__()
            m = ModelTx(cm, tx, dict(committed), commits, dict(committed))
            # A first read fixes the snapshot now on every backend.
            key = rng.choice(KEYS)
            assert await tx.get(key) == committed.get(key)
            m.observed.append((key, key + b"\x00", frozenset(), ()))
            open_txs.append(m)
            continue
        m = rng.choice(open_txs)
        op = rng.random()
        if op < 0.25:
            key = rng.choice(KEYS)
            assert await m.tx.get(key) == m.view.get(key), (seed, "get", key)
            if not m.decided_locally(key):
                m.observed.append((key, key + b"\x00", frozenset(), ()))
        elif op < 0.45:
            b, e = sorted(rng.sample(BOUNDS, 2))
            limit = rng.choice([0, 0, 1, 2, 3])
            reverse = rng.random() < 0.5
            got = await m.tx.range(b, e, limit=limit, reverse=reverse)
            assert got == _select(m.view, b, e, limit, reverse), (seed, "range", b, e, limit, reverse)
            if limit and len(got) == limit:
                if reverse:
                    b = got[-1][0]
                else:
                    e = got[-1][0] + b"\x00"
            m.observed.append((b, e, frozenset(m.local_keys), tuple(m.local_ranges)))
        elif op < 0.65:
            key = rng.choice(KEYS)
            value = b"%d" % rng.randrange(1000)
            m.tx.set(key, value)
            m.view[key] = value
            m.local_keys.add(key)
        elif op < 0.72:
            key = rng.choice(KEYS)
            m.tx.clear(key)
            m.view.pop(key, None)
            m.local_keys.add(key)
        elif op < 0.77:
            b, e = sorted(rng.sample(BOUNDS, 2))
            m.tx.clear_range(b, e)
            for k in [k for k in m.view if b <= k < e]:
                del m.view[k]
            m.local_ranges.append((b, e))
        else:
            open_txs.remove(m)
            try:
                await m.cm.__aexit__(None, None, None)
            except TransactionConflict:
                assert commits > m.commits_at_start, (seed, "conflict although nothing committed since")
                outcomes[1] += 1
                continue
            outcomes[0] += 1
            if not (m.local_keys or m.local_ranges):
                continue  # read-only: serializable at its snapshot, nothing to check at commit
            for b, e, keys, ranges in m.observed:

                def skip(k: bytes, keys: frozenset[bytes] = keys, ranges: Any = ranges) -> bool:
                    return k in keys or any(rb <= k < re for rb, re in ranges)

                assert _region(committed, b, e, skip) == _region(m.snapshot, b, e, skip), (
                    seed,
                    "committed on stale reads",
                    b,
                    e,
                )
            # Apply the net effect: keys it wrote take its view's value, others keep the committed one.
            for k in set(m.view) | set(committed):
                if m.decided_locally(k):
                    if k in m.view:
                        committed[k] = m.view[k]
                    else:
                        committed.pop(k, None)
            commits += 1
    for m in open_txs:
        await m.cm.__aexit__(ValueError, ValueError(), None)  # discard
    async with store.transaction() as tx:
        assert dict(await tx.range(b"", b"\xff\xff\xff\xff")) == committed, (seed, "final state")
    return outcomes[0], outcomes[1]


@pytest.mark.parametrize("seed", range(12))
async def test_random_interleavings_match_model(store: Store, seed: int) -> None:
    ok, conflicts = await _run(store, seed, 300)
    assert ok > 0
    assert conflicts > 0  # the seeds do exercise conflicts
