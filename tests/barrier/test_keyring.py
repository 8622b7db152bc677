"""The keyring: generation, rotation, sealing under the root key."""

from __future__ import annotations

import pickle

import pytest

from strongroom.barrier.keyring import Keyring
from strongroom.crypto.aead import generate_key
from strongroom.errors import CorruptRecord, DecryptionFailed

KEY = b"phys/keyring"


def test_generate_has_term_one_and_distinct_purpose_keys() -> None:
    ring = Keyring.generate(now=100.0)
    assert ring.active.number == 1
    assert ring.active.install_time == 100.0
    keys = {ring.active.key.reveal(), ring.blind_key.reveal(), ring.token_key.reveal(), ring.kek.reveal()}
    assert len(keys) == 4


def test_rotation_adds_a_term_and_keeps_purpose_keys() -> None:
    ring = Keyring.generate(now=1.0)
    rotated = ring.rotated(now=2.0)
    assert [t.number for t in rotated.terms] == [1, 2]
    assert rotated.active.number == 2
    assert rotated.term(1) == ring.term(1)
    assert rotated.term(3) is None
    assert rotated.blind_key == ring.blind_key and rotated.token_key == ring.token_key
    assert rotated.generation == ring.generation + 1


def test_seal_and_open_round_trip() -> None:
    root = generate_key()
    ring = Keyring.generate(now=5.0).rotated(now=6.0)
    blob = ring.seal(root, KEY)
    opened = Keyring.open(root, KEY, blob)
    assert opened == ring


def test_wrong_root_key_or_moved_record_fails() -> None:
    root = generate_key()
    blob = Keyring.generate(now=5.0).seal(root, KEY)
    with pytest.raises(DecryptionFailed):
        Keyring.open(generate_key(), KEY, blob)
    with pytest.raises(DecryptionFailed):
        Keyring.open(root, b"another/key", blob)


def test_decrypted_garbage_is_corrupt_not_a_crash() -> None:
    from strongroom.crypto.aead import XChaCha20Poly1305

    root = generate_key()
    blob = XChaCha20Poly1305(root).encrypt(b'{"format": 1}', KEY)
    with pytest.raises(CorruptRecord):
        Keyring.open(root, KEY, blob)


def test_no_key_material_in_repr_and_no_pickling() -> None:
    ring = Keyring.generate(now=1.0)
    text = repr(ring) + repr(ring.active) + str(ring.terms)
    for key in (ring.active.key, ring.blind_key, ring.token_key, ring.kek):
        assert key.reveal().hex() not in text
    with pytest.raises(TypeError):
        pickle.dumps(ring)
