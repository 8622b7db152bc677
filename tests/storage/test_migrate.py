"""``strongroom.storage.migrate``: whole-store copies between backends, chunked replacement, fingerprints.

Backends are real: memory and sqlite always; PostgreSQL, Redis and etcd through their conformance
factories (a skip locally when the service is missing, a failure in CI).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from strongroom.crypto.snapshot_mac import PairDigest
from strongroom.errors import InvalidRequest, RecordTooLarge, StorageError, StorageUnavailable
from strongroom.storage.base import Store, StoreLimits
from strongroom.storage.migrate import (
    BODY,
    FIRST,
    LAST,
    MARKER_KEY,
    ContentWriter,
    DestinationNotEmpty,
    migrate,
    new_marker,
    phase,
    read_marker,
    summarize,
    write_order,
)
from strongroom.storage.subspace import LAYOUT_KEY, namespace
from strongroom.storage.tuple import pack
from tests.storage.support_migrate import (
    SpyStore,
    assert_not_servable,
    dump,
    open_backend,
    read_back,
    vault_with_secrets,
)

BINARY = {
    b"": b"empty key", b"\x00": b"", b"\x00\xff": b"\x00" * 3, b"a": b"A", b"a\x00": b"\xff" * 5,
    b"\xff": b"ff", b"\xff\xff": b"ffff", b"\xff" * 40: b"long ff key",
}  # fmt: skip
# (source, destination): the embedded backends always, each networked backend both ways with sqlite.
PAIRS = [
    ("sqlite", "sqlite"), ("memory", "sqlite"), ("sqlite", "memory"),
    ("sqlite", "postgresql"), ("postgresql", "sqlite"), ("sqlite", "redis"), ("redis", "sqlite"),
    ("sqlite", "etcd"), ("etcd", "postgresql"),
]  # fmt: skip


async def put(store: Store, items: dict[bytes, bytes]) -> None:
    """Write ``items`` in transactions of 50 (etcd allows 128 operations per transaction)."""
    pairs = list(items.items())
    for start in range(0, len(pairs), 50):
        async with store.transaction() as tx:
            for k, v in pairs[start : start + 50]:
                tx.set(k, v)


def reference_digest(pairs: dict[bytes, bytes]) -> str:
    """The documented digest computed independently: SHA-256 of u64be(len k) k u64be(len v) v, in order."""
    h = hashlib.sha256()
    for k in sorted(pairs):
        v = pairs[k]
        h.update(len(k).to_bytes(8, "big") + k + len(v).to_bytes(8, "big") + v)
    return h.hexdigest()


def test_pair_digest_matches_its_definition() -> None:
    d = PairDigest()
    for k in sorted(BINARY):
        d.update(k, BINARY[k])
    assert d.hexdigest() == reference_digest(BINARY)
    # the length prefixes keep (ab, c) and (a, bc) apart
    a, b = PairDigest(), PairDigest()
    a.update(b"ab", b"c")
    b.update(b"a", b"bc")
    assert a.hexdigest() != b.hexdigest()


def test_phases() -> None:
    root = namespace(b"root")
    other = namespace(b"\x00\xff" + bytes(14))
    assert phase(LAYOUT_KEY) == LAST
    assert phase(root.key("keyring")) == LAST
    assert phase(other.key("keyring")) == LAST
    assert phase(root.key("seal")) == FIRST
    assert phase(other.key("seal")) == FIRST
    for key in (root.key("sys", "seal"), root.key("m", "uuid", "keyring"), pack(("seal",)), b"\xff", b""):
        assert phase(key) == BODY, key


@pytest.mark.parametrize(("src_kind", "dst_kind"), PAIRS)
async def test_round_trip_between_backends(tmp_path: Path, src_kind: str, dst_kind: str) -> None:
    source = open_backend(src_kind, tmp_path)
    dest = open_backend(dst_kind, tmp_path)
    try:
        items = dict(BINARY)
        items.update({pack(("bulk", i)): bytes([i % 256]) * (i * 13 % 3000) for i in range(600)})
        await put(source, items)
        report = await migrate(source, dest, PairDigest, chunk_ops=64)
        assert report.verified
        assert report.copied.count == len(items)
        assert report.copied.digest == reference_digest(items)
        assert report.transactions >= len(items) // 64
        assert await dump(dest) == items
        assert await read_marker(dest) is None
        assert await dump(source) == items  # the source is only read
    finally:
        await source.close()
        await dest.close()


@pytest.mark.parametrize("dst_kind", ["sqlite", "postgresql", "redis", "etcd"])
async def test_kv_secrets_readable_after_migrate(tmp_path: Path, dst_kind: str) -> None:
    source = open_backend("sqlite", tmp_path)
    dest = open_backend(dst_kind, tmp_path)
    vault, written = await vault_with_secrets(source)
    try:
        vault.node.root.seal()  # offline: no node serves the source while it is copied
        report = await migrate(source, dest, PairDigest)
        assert report.verified
        await read_back(dest, vault.keys[:2], vault.root_token, written)
    finally:
        await vault.client.aclose()
        await vault.node.close()
        await dest.close()


async def test_chunks_respect_the_destination_limits(tmp_path: Path) -> None:
    limits = StoreLimits(
        max_key_bytes=64, max_value_bytes=1024, max_transaction_bytes=4096, max_transaction_ops=10
    )
    source = open_backend("sqlite", tmp_path)
    dest = SpyStore(open_backend("memory", tmp_path, limits))
    try:
        items = {pack(("k", i)): bytes(range(256)) * (1 + i % 4) for i in range(200)}
        await put(source, items)
        report = await migrate(source, dest, PairDigest)
        assert report.verified
        assert dest.commits, "nothing was written"
        assert max(ops for ops, _ in dest.commits) <= limits.max_transaction_ops
        assert max(size for _, size in dest.commits) <= limits.max_transaction_bytes
        # every commit succeeded the first time: the chunking, not the split-on-refusal path, kept the limits
        assert len(dest.commits) == report.transactions
    finally:
        await source.close()
        await dest.close()


async def test_etcd_request_limits_with_large_values(tmp_path: Path) -> None:
    source = open_backend("sqlite", tmp_path)
    dest = open_backend("etcd", tmp_path)
    try:
        big = dest.limits.max_value_bytes - 64
        items = {pack(("big", i)): bytes([i]) * big for i in range(3)}
        items.update({pack(("small", i)): b"v" * 100 for i in range(400)})  # > 128 operations
        await put(source, items)
        report = await migrate(source, dest, PairDigest)
        assert report.verified and report.transactions >= 4
        assert await dump(dest) == items
    finally:
        await source.close()
        await dest.close()


async def test_refuses_a_non_empty_destination_and_writes_nothing(tmp_path: Path) -> None:
    source = open_backend("sqlite", tmp_path)
    dest = open_backend("sqlite", tmp_path)
    try:
        await put(source, {b"a": b"1"})
        await put(dest, {b"precious": b"data"})
        with pytest.raises(DestinationNotEmpty) as caught:
            await migrate(source, dest, PairDigest)
        assert isinstance(caught.value, InvalidRequest)
        assert await dump(dest) == {b"precious": b"data"}
    finally:
        await source.close()
        await dest.close()


async def test_record_too_large_for_destination_fails_before_writing(tmp_path: Path) -> None:
    source = open_backend("sqlite", tmp_path)
    dest = open_backend("memory", tmp_path, StoreLimits(max_key_bytes=4, max_value_bytes=100))
    try:
        await put(source, {b"a": b"small", b"b": b"x" * 101})
        with pytest.raises(RecordTooLarge, match="101 bytes"):
            await migrate(source, dest, PairDigest)
        assert await dump(dest) == {}
        async with source.transaction() as tx:
            tx.clear(b"b")
            tx.set(b"abcde", b"")
        with pytest.raises(RecordTooLarge, match="key"):
            await migrate(source, dest, PairDigest)
        assert await dump(dest) == {}
    finally:
        await source.close()
        await dest.close()


async def test_source_with_an_unfinished_replacement_is_refused(tmp_path: Path) -> None:
    source = open_backend("memory", tmp_path)
    dest = open_backend("memory", tmp_path)
    await put(source, {b"a": b"1", MARKER_KEY: new_marker("restore")})
    with pytest.raises(StorageError, match="unfinished"):
        await migrate(source, dest, PairDigest)
    assert await dump(dest) == {}


async def test_interrupted_migration_is_never_servable_and_a_rerun_completes(tmp_path: Path) -> None:
    source = open_backend("sqlite", tmp_path)
    inner = open_backend("sqlite", tmp_path)
    vault, written = await vault_with_secrets(source, count=40)
    try:
        vault.node.root.seal()
        broken = SpyStore(inner, fail_after=2)
        with pytest.raises(StorageUnavailable):
            await migrate(source, broken, PairDigest, chunk_ops=16, retry_delay=0)
        half = await dump(inner)
        marker = json.loads(half[MARKER_KEY])
        assert marker["operation"] == "migrate"
        root = namespace(b"root")
        assert root.key("seal") in half  # written first: sys/init refuses this store
        assert root.key("keyring") not in half and LAYOUT_KEY not in half  # written last: nobody can unseal
        # a server started on the half-copied store can neither initialise it anew nor be unsealed
        await assert_not_servable(inner, vault.keys[:2])
        # re-running into the interrupted destination is allowed and completes
        report = await migrate(source, inner, PairDigest, chunk_ops=16)
        assert report.verified
        await read_back(inner, vault.keys[:2], vault.root_token, written)
    finally:
        await vault.client.aclose()
        await vault.node.close()
        await inner.close()


async def test_verification_detects_a_destination_that_lost_a_write(tmp_path: Path) -> None:
    source = open_backend("memory", tmp_path)
    dest = SpyStore(open_backend("memory", tmp_path), drop_key=b"b")
    await put(source, {b"a": b"1", b"b": b"2", b"c": b"3"})
    report = await migrate(source, dest, PairDigest)
    assert not report.verified
    assert report.copied == report.source
    assert report.destination.count == 2
    assert report.destination.digest != report.source.digest


async def test_a_later_replacement_takes_over_and_the_earlier_stops(tmp_path: Path) -> None:
    store = open_backend("sqlite", tmp_path)
    try:
        first = ContentWriter(store, new_marker("restore"), chunk_ops=2)
        second = ContentWriter(store, new_marker("restore"), chunk_ops=2)

        async def second_pairs() -> AsyncIterator[tuple[bytes, bytes]]:
            for i in range(6):
                yield (b"k%d" % i, b"second")

        async def first_pairs() -> AsyncIterator[tuple[bytes, bytes]]:
            for i in range(6):
                if i == 4:  # the first writer has committed its first chunk and holds the next
                    assert first.transactions == 1
                    await second.write(second_pairs())
                yield (b"k%d" % i, b"first")

        with pytest.raises(StorageError, match="took over"):
            await first.write(first_pairs())
        assert await dump(store) == {b"k%d" % i: b"second" for i in range(6)}
    finally:
        await store.close()


async def test_concurrent_replacements_never_mix(tmp_path: Path) -> None:
    store = open_backend("sqlite", tmp_path)
    try:

        async def run(tag: bytes) -> None:
            async def pairs() -> AsyncIterator[tuple[bytes, bytes]]:
                for i in range(40):
                    await asyncio.sleep(0)
                    yield (b"k%03d" % i, tag)

            await ContentWriter(store, new_marker("restore"), chunk_ops=3).write(pairs())

        outcomes = await asyncio.gather(run(b"one"), run(b"two"), return_exceptions=True)
        for outcome in outcomes:
            assert outcome is None or (isinstance(outcome, StorageError) and "took over" in outcome.message)
        results = [outcome is None for outcome in outcomes]
        contents = await dump(store)
        if all(results):
            pytest.fail("two replacements both claimed success")
        if any(results):
            winner = b"one" if results[0] else b"two"
            assert contents == {b"k%03d" % i: winner for i in range(40)}
        else:
            assert MARKER_KEY in contents  # both stopped: the store stays marked, never half-served
    finally:
        await store.close()


async def test_write_order_and_summarize(tmp_path: Path) -> None:
    store = open_backend("memory", tmp_path)
    root = namespace(b"root")
    items = {LAYOUT_KEY: b"L", root.key("seal"): b"S", root.key("keyring"): b"K", root.key("sys", "x"): b"X"}

    async def body() -> AsyncIterator[tuple[bytes, bytes]]:
        for k in sorted(items):
            yield k, items[k]

    order = [
        k
        async for k, _ in write_order(
            [(root.key("seal"), b"S")], body(), [(root.key("keyring"), b"K"), (LAYOUT_KEY, b"L")]
        )
    ]
    assert order == [root.key("seal"), root.key("sys", "x"), root.key("keyring"), LAYOUT_KEY]
    await put(store, items)
    summary = await summarize(store, PairDigest)
    assert summary.count == 4 and summary.digest == reference_digest(items)
