"""The IAM key pair: serialisation for encrypted storage, public key export, no leaks."""

from __future__ import annotations

import copy
import pickle

import pytest

from strongroom.auth.iam import (
    IamKey,
    IamPublicKey,
    IamVerifier,
    InMemoryRevocationList,
    issue_token,
    public_key_document,
)
from strongroom.crypto.secret import SecretBytes
from strongroom.errors import CorruptRecord, InvalidRequest
from tests.auth.iam.conftest import HOUR, KV2, NOW, request


def test_private_key_round_trip_signs_the_same() -> None:
    key = IamKey.generate(9)
    data = key.to_bytes()
    assert isinstance(data, SecretBytes) and len(data) == 37 and data.reveal()[:5] == b"\x01\x00\x00\x00\x09"
    loaded = IamKey.from_bytes(data)
    assert loaded.key_id == 9 and loaded.public_key == key.public_key
    token = issue_token(loaded, tenant="acme", role="user", ttl=HOUR, now=NOW)
    IamVerifier([key.public_key], InMemoryRevocationList()).authorize(token, request("secret/data/x", "read", KV2))
    assert IamKey.from_bytes(data.reveal()).public_key == key.public_key


@pytest.mark.parametrize(
    "data", [b"", b"\x01", b"\x02" + bytes(36), b"\x01" + bytes(35), b"\x01" + bytes(37), "text"]
)
def test_malformed_private_key_is_corrupt_record(data: bytes) -> None:
    with pytest.raises(CorruptRecord) as info:
        IamKey.from_bytes(data)  # type: ignore[arg-type]
    assert info.value.message == "malformed IAM signing key"


def test_key_material_stays_inside() -> None:
    key = IamKey.generate(1)
    secret = key.to_bytes().reveal()[5:]
    assert secret.hex() not in repr(key) and secret.hex() not in str(key)
    with pytest.raises(TypeError):
        pickle.dumps(key)
    with pytest.raises(TypeError):
        copy.deepcopy(key)
    with pytest.raises(TypeError):
        pickle.dumps(key.to_bytes())


def test_public_key_text_forms() -> None:
    key = IamKey.generate(4).public_key
    text = key.to_text()
    assert text.startswith("ed25519/") and len(text) == 8 + 64
    for form in (text, text.removeprefix("ed25519/"), text.upper().replace("ED25519/", "ed25519/"), f" {text}\n"):
        assert IamPublicKey.parse(form, key_id=4) == key
    assert IamPublicKey.parse(text) != key  # another key id
    for bad in ("", "ed25519/", "ed25519/zz", "secp256r1/" + "00" * 32, "00" * 31, "00" * 33):
        with pytest.raises(InvalidRequest):
            IamPublicKey.parse(bad)
    with pytest.raises(InvalidRequest):
        IamPublicKey(-1, key.to_bytes())
    with pytest.raises(InvalidRequest):
        IamKey.generate(2**32)


def test_public_key_document() -> None:
    old, new = IamKey.generate(1).public_key, IamKey.generate(2).public_key
    doc = public_key_document(new, [old, new])
    assert doc == {
        "algorithm": "ed25519",
        "key_id": 2,
        "public_key": new.to_text(),
        "keys": {"1": old.to_text(), "2": new.to_text()},
    }
    assert public_key_document(new)["keys"] == {"2": new.to_text()}
