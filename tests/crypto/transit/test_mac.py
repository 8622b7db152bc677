"""Transit HMACs (crypto/transit/mac.py): RFC 4231 vectors, OpenBao-made HMACs for SHA-1/2/3, key choice."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from strongroom.crypto.transit import mac
from strongroom.crypto.transit.digest import ALGORITHMS, HMAC_NAMES, lookup
from strongroom.crypto.transit.keytypes import KeyType
from strongroom.crypto.transit.material import KeyMaterial
from tests.crypto.transit.test_signing import material_of, refused

TESTS = Path(__file__).resolve().parents[2]
RFC4231_ALL: list[dict[str, str]] = json.loads((TESTS / "vectors/transit/hmac_rfc4231.json").read_text())["cases"]
RFC4231_SHA256: list[dict[str, str]] = json.loads((TESTS / "crypto/vectors/hmac_rfc4231.json").read_text())["cases"]
OPENBAO: dict[str, Any] = json.loads((TESTS / "vectors/transit/openbao_signing.json").read_text())


def _alg(name: str) -> Any:
    alg = lookup(name)
    assert alg is not None
    return alg


@pytest.mark.parametrize("case", RFC4231_ALL, ids=lambda c: c["name"])
@pytest.mark.parametrize("name", ["sha2-224", "sha2-256", "sha2-384", "sha2-512"])
def test_rfc4231_every_sha2(case: dict[str, str], name: str) -> None:
    out = mac.compute(bytes.fromhex(case["key"]), _alg(name), bytes.fromhex(case["data"]))
    assert out.hex() == case[name]


@pytest.mark.parametrize("case", RFC4231_SHA256, ids=lambda c: c["name"])
def test_rfc4231_sha256_all_cases(case: dict[str, str]) -> None:
    """Cases 3-7 include keys longer than the block size (hashed first) and a truncated result (case 5)."""
    out = mac.compute(bytes.fromhex(case["key"]), _alg("sha2-256"), bytes.fromhex(case["data"]))
    assert out.hex().startswith(case["mac"])


def _openbao_cases() -> list[tuple[dict[str, Any], dict[str, str]]]:
    return [(key, entry) for key in OPENBAO["keys"] for entry in key["hmacs"]]


@pytest.mark.parametrize("pair", _openbao_cases(), ids=lambda p: f"{p[0]['label']}-{p[1]['algorithm']}")
def test_openbao_hmacs(pair: tuple[dict[str, Any], dict[str, str]]) -> None:
    """Same bytes as OpenBao for every algorithm, for an hmac key and for other types' per-version key."""
    key, entry = pair
    material = material_of(key)
    message = base64.b64decode(OPENBAO["message"])
    expected = base64.b64decode(entry["hmac"].removeprefix("vault:v1:"))
    computed = mac.compute(mac.hmac_key(material), _alg(entry["algorithm"]), message)
    assert computed == expected
    assert mac.verify(mac.hmac_key(material), _alg(entry["algorithm"]), message, expected)


def test_every_hmac_algorithm_is_covered_by_openbao_vectors() -> None:
    assert {entry["algorithm"] for _, entry in _openbao_cases()} == set(HMAC_NAMES)
    assert {name for name in ALGORITHMS if name != "none"} == HMAC_NAMES


def test_hmac_key_is_the_key_itself_for_hmac_keys_and_the_version_hmac_key_otherwise() -> None:
    hmac_material = KeyMaterial.generate(KeyType.HMAC, 40)
    assert mac.hmac_key(hmac_material) == hmac_material.reveal_key()
    assert len(mac.hmac_key(hmac_material)) == 40
    for kt in (KeyType.AES256_GCM96, KeyType.ED25519, KeyType.RSA_2048):
        material = KeyMaterial.generate(kt)
        assert mac.hmac_key(material) == material.reveal_hmac_key()
        assert mac.hmac_key(material) != material.reveal_key()
    with refused("no HMAC key exists for that key version"):
        mac.hmac_key(KeyMaterial(KeyType.ED25519, public=KeyMaterial.generate(KeyType.ED25519).public_key))


def test_verify_is_exact() -> None:
    key, data = b"k" * 32, b"data"
    good = mac.compute(key, _alg("sha2-256"), data)
    assert mac.verify(key, _alg("sha2-256"), data, good)
    assert not mac.verify(key, _alg("sha2-256"), data, good[:-1])
    assert not mac.verify(key, _alg("sha2-256"), data, good + b"\x00")
    assert not mac.verify(key, _alg("sha2-256"), data, bytes([good[0] ^ 1]) + good[1:])
    assert not mac.verify(key, _alg("sha2-512"), data, good)
    assert not mac.verify(key, _alg("sha2-256"), data, b"")


def test_none_is_refused() -> None:
    for call in (lambda: mac.compute(b"k", _alg("none"), b""), lambda: mac.verify(b"k", _alg("none"), b"", b"")):
        with refused("algorithm cannot be none"):
            call()
