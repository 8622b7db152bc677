"""CSPRNG helpers."""

from __future__ import annotations

import re
import uuid
from collections import Counter

import pytest

from strongroom.crypto.random import BASE62_ALPHABET, random_base62, random_bytes, random_uuid


def test_random_bytes() -> None:
    assert len(random_bytes(32)) == 32
    assert random_bytes(0) == b""
    assert random_bytes(32) != random_bytes(32)
    with pytest.raises(ValueError):
        random_bytes(-1)


def test_base62_alphabet_and_length() -> None:
    assert len(set(BASE62_ALPHABET)) == 62
    value = random_base62(200)
    assert len(value) == 200
    assert re.fullmatch(r"[0-9A-Za-z]{200}", value)
    assert random_base62(0) == ""
    with pytest.raises(ValueError):
        random_base62(-3)


def test_base62_is_unbiased() -> None:
    # 310,000 draws: each symbol expects 5,000 (sd ~70). A "byte % 62" generator would give the first
    # eight symbols ~6,050 and the rest ~4,840, far outside the +-400 band (about 5.7 sd).
    counts = Counter(random_base62(310_000))
    assert set(counts) == set(BASE62_ALPHABET)
    assert all(4_600 <= n <= 5_400 for n in counts.values()), counts.most_common(3)


def test_random_uuid_shape() -> None:
    values = {random_uuid() for _ in range(100)}
    assert len(values) == 100
    for value in values:
        assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", value)
        assert uuid.UUID(value).version == 4
