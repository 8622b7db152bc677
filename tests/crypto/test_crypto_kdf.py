"""HKDF, HMAC, blind indexes and token hashes."""

from __future__ import annotations

import hashlib
import json
import pickle
from typing import Any

import pytest

from strongroom.crypto.kdf import BlindIndexer, TokenHasher, hkdf_sha256, hmac_sha256
from strongroom.crypto.secret import SecretBytes
from strongroom.errors import InvalidRequest
from tests.crypto.crypto_tools import VECTORS

HKDF_CASES: list[dict[str, Any]] = json.loads((VECTORS / "hkdf_rfc5869.json").read_text())["cases"]
HMAC_CASES: list[dict[str, Any]] = json.loads((VECTORS / "hmac_rfc4231.json").read_text())["cases"]
KEY = SecretBytes(bytes(range(32)), kind="blind key")


def textbook_hmac_sha256(key: bytes, message: bytes) -> bytes:
    """RFC 2104 spelled out with hashlib only: an implementation independent of the hmac module."""
    if len(key) > 64:
        key = hashlib.sha256(key).digest()
    key = key.ljust(64, b"\x00")
    inner = hashlib.sha256(bytes(k ^ 0x36 for k in key) + message).digest()
    return hashlib.sha256(bytes(k ^ 0x5C for k in key) + inner).digest()


@pytest.mark.parametrize("case", HKDF_CASES, ids=[c["name"] for c in HKDF_CASES])
def test_hkdf_rfc5869(case: dict[str, Any]) -> None:
    okm = hkdf_sha256(
        SecretBytes(bytes.fromhex(case["ikm"])),
        bytes.fromhex(case["info"]),
        length=case["length"],
        salt=bytes.fromhex(case["salt"]),
    )
    assert isinstance(okm, SecretBytes)
    assert okm.reveal().hex() == case["okm"]


def test_hkdf_empty_salt_is_hashlen_zeros() -> None:
    ikm = SecretBytes(b"\x0b" * 22)
    assert hkdf_sha256(ikm, b"i") == hkdf_sha256(ikm, b"i", salt=bytes(32))
    assert hkdf_sha256(ikm, b"i") != hkdf_sha256(ikm, b"j")
    assert len(hkdf_sha256(ikm, b"i").reveal()) == 32


@pytest.mark.parametrize("length", [0, -1, 255 * 32 + 1])
def test_hkdf_length_bounds(length: int) -> None:
    with pytest.raises(ValueError, match="length"):
        hkdf_sha256(KEY, b"info", length=length)


def test_hkdf_maximum_length() -> None:
    assert len(hkdf_sha256(KEY, b"info", length=255 * 32).reveal()) == 8160


@pytest.mark.parametrize("case", HMAC_CASES, ids=[c["name"] for c in HMAC_CASES])
def test_hmac_rfc4231(case: dict[str, Any]) -> None:
    key, data = bytes.fromhex(case["key"]), bytes.fromhex(case["data"])
    mac = hmac_sha256(SecretBytes(key), data)
    assert len(mac) == 32
    assert mac.hex().startswith(case["mac"])
    assert textbook_hmac_sha256(key, data) == mac


def test_blind_index_format() -> None:
    indexer = BlindIndexer(KEY)
    parent, name = b"\x01\x02parent-id", "secret/é"
    expected = textbook_hmac_sha256(
        KEY.reveal(), len(parent).to_bytes(8, "big") + parent + name.encode("utf-8")
    )[:16]
    assert indexer.index(parent, name) == expected
    assert len(expected) == 16


def test_blind_index_is_unambiguous_and_keyed() -> None:
    indexer = BlindIndexer(KEY)
    assert indexer.index(b"ab", "c") != indexer.index(b"a", "bc")
    assert indexer.index(b"", "abc") != indexer.index(b"a", "bc")
    assert indexer.index(b"p", "n") == BlindIndexer(SecretBytes(KEY.reveal())).index(b"p", "n")
    assert indexer.index(b"p", "n") != BlindIndexer(SecretBytes(bytes(32))).index(b"p", "n")


def test_blind_index_rejects_unencodable_names() -> None:
    with pytest.raises(InvalidRequest, match="not valid Unicode") as info:
        BlindIndexer(KEY).index(b"", "bad\ud800")
    assert "\ud800" not in info.value.message


def test_token_hasher() -> None:
    hasher = TokenHasher(SecretBytes(b"\x42" * 32))
    digest = hasher.hash("s.abcdefghijklmnopqrstuvwx")
    assert digest == textbook_hmac_sha256(b"\x42" * 32, b"s.abcdefghijklmnopqrstuvwx")
    assert len(digest) == 32
    assert hasher.hash("s.other") != digest
    with pytest.raises(InvalidRequest) as info:
        hasher.hash("s.\udfff")
    assert "s." not in info.value.message


@pytest.mark.parametrize("cls", [BlindIndexer, TokenHasher])
def test_keyed_hashers_hide_their_keys(cls: type[BlindIndexer] | type[TokenHasher]) -> None:
    holder = cls(SecretBytes(b"\xcd" * 32))
    assert "cdcd" not in repr(holder).lower()
    assert "\\xcd" not in repr(holder)
    with pytest.raises(TypeError):
        pickle.dumps(holder)
    with pytest.raises(TypeError):
        cls(b"\xcd" * 32)  # type: ignore[arg-type]
