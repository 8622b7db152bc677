"""Snapshot files and restore (``strongroom.core.snapshot``, ``snapshot_format``, ``crypto.snapshot_mac``).

A small hand-made snapshot is mutated at every byte and cut at every length: each variant must be
refused before anything is written. Restores go to real sqlite stores, including one that fails half-way.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import struct
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from strongroom.clock import FakeClock
from strongroom.core import snapshot
from strongroom.core.seal import ShareCollector, decode_share
from strongroom.core.snapshot_format import (
    MAGIC,
    SnapshotHeader,
    SnapshotReader,
    SnapshotRejected,
    SnapshotWriter,
)
from strongroom.crypto.aead import generate_key
from strongroom.crypto.secret import SecretBytes
from strongroom.crypto.snapshot_mac import MAC_INFO, PairDigest, SnapshotMac
from strongroom.errors import DecryptionFailed, InvalidShare, StorageError, StorageUnavailable
from strongroom.storage.base import StoreLimits
from strongroom.storage.migrate import MARKER_KEY, new_marker, read_marker
from strongroom.storage.subspace import LAYOUT_KEY, namespace
from tests.storage.support_migrate import (
    SpyStore,
    assert_not_servable,
    dump,
    open_backend,
    read_back,
    vault_with_secrets,
)

ROOT = namespace(b"root")
KEK = SecretBytes(bytes(range(32)))
CLUSTER = "11111111-2222-3333-4444-555555555555"
SID = bytes(range(100, 116))
PAIRS = [
    (LAYOUT_KEY, b'{"major":1,"minor":0}'),
    (ROOT.key("keyring"), b"keyring-ciphertext"),
    (ROOT.key("seal"), b'{"type":"shamir"}'),
    (ROOT.key("sys", "mounts"), b"\x00\x01barrier-record\xff"),
]


def make(
    pairs: list[tuple[bytes, bytes]] = PAIRS, *, kek: SecretBytes = KEK, cluster: str = CLUSTER
) -> bytes:
    out = io.BytesIO()
    writer = SnapshotWriter(out, SnapshotHeader(SID, 1_700_000_000, cluster, "memory"), SnapshotMac(kek, SID))
    for k, v in sorted(pairs):
        writer.add(k, v)
    writer.finish()
    return out.getvalue()


def verify(data: bytes, **kw: object) -> snapshot.VerifiedSnapshot:
    args: dict[object, object] = {"kek": KEK, "limits": StoreLimits(), "cluster_id": CLUSTER, "force": False}
    args.update(kw)
    return snapshot.verify_snapshot(io.BytesIO(data), **args)  # type: ignore[arg-type]


def test_format_layout_and_mac_match_the_specification() -> None:
    data = make()
    # header: magic, version, id, created, cluster id, storage kind
    assert data[:8] == MAGIC == b"\x93SRSNP\r\n"
    assert struct.unpack(">H", data[8:10]) == (1,)
    assert data[10:26] == SID
    assert struct.unpack(">Q", data[26:34]) == (1_700_000_000,)
    n = struct.unpack(">H", data[34:36])[0]
    assert data[36 : 36 + n] == CLUSTER.encode()
    # trailer: 0x00, count, pair digest, HMAC over everything before the HMAC
    body, tag = data[:-32], data[-32:]
    assert body[-41] == 0 and struct.unpack(">Q", body[-40:-32]) == (4,)
    digest = hashlib.sha256()
    for k, v in sorted(PAIRS):
        digest.update(len(k).to_bytes(8, "big") + k + len(v).to_bytes(8, "big") + v)
    assert body[-32:] == digest.digest()
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=SID, info=MAC_INFO).derive(bytes(range(32)))
    assert MAC_INFO == b"strongroom/snapshot-hmac/v1"
    assert tag == hmac.digest(key, body, "sha256")
    # and each record is 0x01, u32 key length, key, u32 value length, value
    first_key = sorted(PAIRS)[0][0]
    start = 36 + n + 2 + len(b"memory")
    assert data[start] == 1 and struct.unpack(">I", data[start + 1 : start + 5]) == (len(first_key),)


def test_mac_object_hides_its_key_and_refuses_pickling() -> None:
    import pickle

    mac = SnapshotMac(KEK, SID)
    assert "hidden" in repr(mac)
    with pytest.raises(TypeError):
        pickle.dumps(mac)
    mac.update(b"x")
    with pytest.raises(DecryptionFailed):
        mac.verify(b"\x00" * 32)


def test_round_trip_is_authenticated() -> None:
    verified = verify(make())
    assert verified.authenticated
    assert verified.summary.count == 4
    assert [k for k, _ in verified.first] == [ROOT.key("seal")]
    assert sorted(k for k, _ in verified.last) == sorted([LAYOUT_KEY, ROOT.key("keyring")])
    reader = SnapshotReader(io.BytesIO(make()))
    assert list(reader.records()) == sorted(PAIRS)
    assert reader.header.cluster_id == CLUSTER and reader.header.storage_kind == "memory"


def test_every_flipped_byte_is_refused() -> None:
    data = make()
    for i in range(len(data)):
        for bit in (0x01, 0x80):
            bad = bytearray(data)
            bad[i] ^= bit
            with pytest.raises(SnapshotRejected):
                verify(bytes(bad))


def test_every_truncation_and_any_trailing_data_is_refused() -> None:
    data = make()
    for n in range(len(data)):
        with pytest.raises(SnapshotRejected):
            verify(data[:n])
    with pytest.raises(SnapshotRejected, match="after the end"):
        verify(data + b"\x00")


def test_consistent_forgery_without_the_kek_fails_authentication() -> None:
    # An attacker who rewrites a record can recompute count and digest, but not the HMAC.
    forged = make(
        [*PAIRS[:3], (ROOT.key("sys", "mounts"), b"attacker's record")],
        kek=SecretBytes(generate_key().reveal()),
    )
    with pytest.raises(SnapshotRejected, match="failed authentication"):
        verify(forged)
    with pytest.raises(SnapshotRejected, match="failed authentication"):
        verify(forged, force=True)  # force never waives authentication of this cluster's snapshots


def test_other_cluster_needs_force_and_is_then_unauthenticated() -> None:
    other = make(kek=SecretBytes(generate_key().reveal()), cluster="other-cluster")
    with pytest.raises(SnapshotRejected, match=r"cluster other-cluster.*snapshot-force"):
        verify(other)
    forced = verify(other, force=True)
    assert not forced.authenticated
    # integrity is still checked when forced
    bad = bytearray(other)
    bad[60] ^= 1
    with pytest.raises(SnapshotRejected):
        verify(bytes(bad), force=True)


def test_without_a_kek_only_force_accepts() -> None:
    with pytest.raises(SnapshotRejected):
        verify(make(), kek=None, cluster_id=None)
    assert not verify(make(), kek=None, cluster_id=None, force=True).authenticated
    assert verify(make(), cluster_id=None).authenticated  # offline with the snapshot's own KEK


def test_limits_order_markers_and_required_records() -> None:
    with pytest.raises(SnapshotRejected, match="exceeds"):
        verify(make(), limits=StoreLimits(max_value_bytes=10))
    with pytest.raises(SnapshotRejected, match="exceeds"):
        verify(make(), limits=StoreLimits(max_key_bytes=5))
    with pytest.raises(SnapshotRejected, match="unfinished"):
        verify(make([*PAIRS, (MARKER_KEY, new_marker("restore"))]))
    with pytest.raises(SnapshotRejected, match="no initialised root"):
        verify(make(PAIRS[1:]))
    # out of order: the writer refuses, and a file written out of order is refused
    out = io.BytesIO()
    writer = SnapshotWriter(out, SnapshotHeader(SID, 0, CLUSTER, "x"), SnapshotMac(KEK, SID))
    writer.add(b"b", b"")
    with pytest.raises(ValueError, match="increase"):
        writer.add(b"a", b"")
    raw = make([(b"a", b"1"), (b"b", b"2")])
    swapped = raw.replace(
        b"\x01\x00\x00\x00\x01a\x00\x00\x00\x011", b"\x01\x00\x00\x00\x01c\x00\x00\x00\x011"
    )
    with pytest.raises(SnapshotRejected, match="out of order"):
        verify(swapped)
    with pytest.raises(SnapshotRejected, match="bad magic"):
        verify(b"PK\x03\x04" + raw)
    with pytest.raises(SnapshotRejected, match="version"):
        verify(raw[:8] + b"\x00\x02" + raw[10:])


async def test_save_restore_round_trip_and_interrupted_restore(tmp_path: Path) -> None:
    source = open_backend("sqlite", tmp_path)
    vault, written = await vault_with_secrets(source, count=30)
    target = open_backend("sqlite", tmp_path)
    try:
        keys = vault.node.root.keys
        assert keys is not None
        kek = keys.keyring.kek
        chunks = [c async for c in snapshot.save_stream(source, kek, now=vault.clock.now())]
        data = b"".join(chunks)
        async with source.transaction() as tx:
            cluster = await snapshot.current_cluster_id(tx)
        verified = verify(data, kek=kek, cluster_id=cluster)
        assert verified.authenticated
        assert verified.summary.count == len(await dump(source))
        # the target holds unrelated data: restore replaces all of it
        async with target.transaction() as tx:
            tx.set(b"unrelated", b"data")
        # a restore that stops half-way leaves a marked store that nobody can serve
        broken = SpyStore(target, fail_after=2)
        with pytest.raises(StorageUnavailable):
            await snapshot.restore_verified(broken, io.BytesIO(data), verified, chunk_ops=8, retry_delay=0)
        assert (await read_marker(target) or {}).get("operation") == "restore"
        assert ROOT.key("keyring") not in await dump(target)
        await assert_not_servable(target, vault.keys[:2])
        # re-run: completes, contents equal the snapshot, the secrets read back after unseal
        sealed: list[bool] = []

        async def seal() -> None:
            sealed.append(True)

        after = await snapshot.restore_verified(target, io.BytesIO(data), verified, before_write=seal)
        assert sealed == [True]
        assert after == verified.summary
        assert await dump(target) == await dump(source)
        await read_back(target, vault.keys[:2], vault.root_token, written)
    finally:
        await vault.client.aclose()
        await vault.node.close()
        await target.close()


async def test_snapshot_of_a_store_with_an_unfinished_replacement_is_refused(tmp_path: Path) -> None:
    store = open_backend("memory", tmp_path)
    vault, _ = await vault_with_secrets(store, count=1)
    try:
        keys = vault.node.root.keys
        assert keys is not None
        async with store.transaction() as tx:
            tx.set(MARKER_KEY, new_marker("restore"))
        with pytest.raises(StorageError, match="unfinished"):
            await snapshot.write_snapshot(store, keys.keyring.kek, io.BytesIO(), now=0)
    finally:
        await vault.client.aclose()
        await vault.node.close()


async def test_offline_authentication_with_the_snapshots_unseal_keys(tmp_path: Path) -> None:
    store = open_backend("memory", tmp_path)
    vault, _ = await vault_with_secrets(store, count=2)
    other = open_backend("memory", tmp_path)
    stranger, _ = await vault_with_secrets(other, count=1)
    try:
        keys = vault.node.root.keys
        assert keys is not None
        out = io.BytesIO()
        await snapshot.write_snapshot(store, keys.keyring.kek, out, now=0)
        out.seek(0)
        _, config, keyring = snapshot.read_root_seal(out)
        assert config.secret_threshold == 2
        collector = ShareCollector(FakeClock())
        root = None
        for share in vault.keys[:2]:
            root = collector.add(decode_share(share), config)
        assert root is not None
        kek = snapshot.kek_from_root_key(keyring, root)
        assert kek == keys.keyring.kek
        assert verify(out.getvalue(), kek=kek, cluster_id=None).authenticated
        # the shares of another cluster do not open this snapshot's keyring
        wrong = ShareCollector(FakeClock())
        wrong_root = None
        for share in stranger.keys[:2]:
            wrong_root = wrong.add(decode_share(share), config)
        assert wrong_root is not None
        with pytest.raises(InvalidShare):
            snapshot.kek_from_root_key(keyring, wrong_root)
    finally:
        for v in (vault, stranger):
            await v.client.aclose()
            await v.node.close()


def test_pair_digest_of_reader_equals_migrate_digest() -> None:
    reader = SnapshotReader(io.BytesIO(make()))
    list(reader.records())
    d = PairDigest()
    for k, v in sorted(PAIRS):
        d.update(k, v)
    assert reader.digest.hexdigest() == d.hexdigest()
