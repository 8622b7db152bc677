"""Barrier records: format, associated data binding, terms."""

from __future__ import annotations

import pytest

from strongroom.barrier.barrier import Barrier
from strongroom.barrier.keyring import Keyring
from strongroom.errors import CorruptRecord


def test_record_layout_and_round_trip() -> None:
    ring = Keyring.generate(now=0.0)
    barrier = Barrier(ring)
    record = barrier.encrypt(b"key-a", b"plaintext")
    assert record[:4] == (1).to_bytes(4, "big")
    assert record[4] == 1
    assert len(record) == 5 + 12 + len(b"plaintext") + 16
    assert b"plaintext" not in record
    assert barrier.decrypt(b"key-a", record) == b"plaintext"
    assert Barrier.term_of(record) == 1


def test_record_is_bound_to_its_physical_key() -> None:
    barrier = Barrier(Keyring.generate(now=0.0))
    record = barrier.encrypt(b"key-a", b"value")
    with pytest.raises(CorruptRecord):
        barrier.decrypt(b"key-b", record)


@pytest.mark.parametrize("position", [0, 3, 4, 10, 20, -1])
def test_any_flipped_byte_is_detected(position: int) -> None:
    barrier = Barrier(Keyring.generate(now=0.0))
    record = bytearray(barrier.encrypt(b"k", b"value"))
    record[position] ^= 0x01
    with pytest.raises(CorruptRecord):
        barrier.decrypt(b"k", bytes(record))


def test_truncated_record_is_corrupt() -> None:
    barrier = Barrier(Keyring.generate(now=0.0))
    with pytest.raises(CorruptRecord):
        barrier.decrypt(b"k", b"\x00\x00")


def test_old_terms_stay_readable_after_rotation() -> None:
    ring = Keyring.generate(now=0.0)
    old = Barrier(ring).encrypt(b"k", b"old")
    rotated = Barrier(ring.rotated(now=1.0))
    new = rotated.encrypt(b"k", b"new")
    assert Barrier.term_of(new) == 2
    assert rotated.decrypt(b"k", old) == b"old"
    with pytest.raises(CorruptRecord):
        Barrier(ring).decrypt(b"k", new)  # a node without term 2 cannot read it


def test_encryptions_are_counted() -> None:
    barrier = Barrier(Keyring.generate(now=0.0))
    for _ in range(3):
        barrier.encrypt(b"k", b"v")
    assert barrier.encryptions == 3
