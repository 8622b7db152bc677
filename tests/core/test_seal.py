"""The share-collecting state machine behind sys/unseal."""

from __future__ import annotations

import pytest

from strongroom.clock import FakeClock
from strongroom.core.seal import SealConfig, ShareCollector, decode_share
from strongroom.crypto.aead import generate_key
from strongroom.crypto.shamir import split_key
from strongroom.errors import InvalidRequest, InvalidShare

CONFIG = SealConfig("shamir", 3, 2)


def test_decode_share_hex_then_base64() -> None:
    raw = bytes(range(33))
    assert decode_share(raw.hex()) == raw
    import base64

    assert decode_share(base64.b64encode(raw).decode()) == raw
    with pytest.raises(InvalidRequest):
        decode_share("not a key!")


def test_collects_until_threshold_and_resets() -> None:
    key = generate_key()
    shares = split_key(key, 3, 2)
    c = ShareCollector(FakeClock())
    assert c.add(shares[0], CONFIG) is None
    assert c.progress == 1 and c.nonce
    assert c.add(shares[0], CONFIG) is None  # a repeated share is ignored, as in Vault
    assert c.progress == 1
    assert c.add(shares[2], CONFIG) == key
    assert c.progress == 0 and c.nonce == ""


def test_wrong_length_share_is_rejected_without_progress() -> None:
    c = ShareCollector(FakeClock())
    with pytest.raises(InvalidShare):
        c.add(b"\x01" * 10, CONFIG)
    assert c.progress == 0


def test_nonce_must_match_a_running_ceremony() -> None:
    shares = split_key(generate_key(), 3, 2)
    c = ShareCollector(FakeClock())
    c.add(shares[0], CONFIG)
    with pytest.raises(InvalidRequest):
        c.add(shares[1], CONFIG, nonce="other")
    assert c.progress == 1


def test_progress_expires_when_configured() -> None:
    clock = FakeClock()
    shares = split_key(generate_key(), 3, 2)
    c = ShareCollector(clock, expiry_seconds=60)
    c.add(shares[0], CONFIG)
    clock.advance(61)
    assert c.progress == 0
    # the next share starts a new ceremony instead of completing the stale one
    assert c.add(shares[1], CONFIG) is None
    assert c.progress == 1


def test_single_share_threshold_one_is_the_raw_key() -> None:
    key = generate_key()
    c = ShareCollector(FakeClock())
    assert c.add(key.reveal(), SealConfig("shamir", 1, 1)) == key


def test_repr_shows_no_share() -> None:
    shares = split_key(generate_key(), 3, 2)
    c = ShareCollector(FakeClock())
    c.add(shares[0], CONFIG)
    assert shares[0].hex() not in repr(c)


def test_hex_is_used_only_at_a_plausible_key_length() -> None:
    import base64

    # As Vault: 80 hex digits would be 40 bytes, longer than any key, so the text is read as base64.
    text = "ab" * 40
    assert decode_share(text) == base64.b64decode(text)
    # 32 hex digits are 16 bytes, the shortest key Vault accepts: read as hex.
    assert decode_share("00" * 16) == bytes(16)
