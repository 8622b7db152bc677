"""``hmac/`` and ``verify/`` with ``hmac`` through the API (messages and shapes as OpenBao 2.7 answers)."""

from __future__ import annotations

import hashlib
import hmac as std_hmac
from pathlib import Path
from typing import Any

import pytest

from tests.engines.transit.conftest import b64, unb64
from tests.support.server import start_openbao_dev
from tests.support.vault import InProcessVault

MSG = b64("hello world")


async def _hmac(v: InProcessVault, path: str, **body: Any) -> str:
    r = await v.ok("POST", f"transit/hmac/{path}", json={"input": MSG, **body})
    assert set(r["data"]) == {"hmac"}
    out: str = r["data"]["hmac"]
    return out


async def _error(v: InProcessVault, path: str, body: dict[str, Any]) -> str:
    r = await v.call("POST", f"transit/{path}", json=body)
    assert r.status_code == 400, r.text
    errors: list[str] = r.json()["errors"]
    return errors[0]


async def _verify(v: InProcessVault, path: str, mac: str, **body: Any) -> Any:
    r = await v.ok("POST", f"transit/verify/{path}", json={"input": MSG, "hmac": mac, **body})
    return r["data"]


@pytest.fixture
async def keys(transit: InProcessVault) -> InProcessVault:
    await transit.ok("POST", "transit/keys/hm", json={"type": "hmac", "key_size": 48, "exportable": True})
    await transit.ok("POST", "transit/keys/ed", json={"type": "ed25519", "exportable": True})
    await transit.ok("POST", "transit/keys/aes", json={"type": "aes256-gcm96", "exportable": True})
    return transit


async def _exported_hmac_key(v: InProcessVault, name: str, version: int = 1) -> bytes:
    r = await v.ok("GET", f"transit/export/hmac-key/{name}")
    return unb64(r["data"]["keys"][str(version)])


@pytest.mark.parametrize(
    ("algorithm", "digest"),
    [("sha1", "sha1"), ("sha2-224", "sha224"), ("sha2-256", "sha256"), ("sha2-384", "sha384"),
     ("sha2-512", "sha512"), ("sha3-224", "sha3_224"), ("sha3-256", "sha3_256"), ("sha3-384", "sha3_384"),
     ("sha3-512", "sha3_512")],
)
async def test_every_algorithm_matches_an_independent_hmac(keys: InProcessVault, algorithm: str, digest: str) -> None:
    for name in ("hm", "ed", "aes"):
        key = await _exported_hmac_key(keys, name)
        expected = std_hmac.new(key, b"hello world", getattr(hashlib, digest)).digest()
        assert await _hmac(keys, f"{name}/{algorithm}") == "vault:v1:" + b64(expected)
        assert await _hmac(keys, name, algorithm=algorithm) == "vault:v1:" + b64(expected)
        assert await _verify(keys, f"{name}/{algorithm}", "vault:v1:" + b64(expected)) == {"valid": True}


async def test_hmac_key_is_never_the_encryption_or_signing_key(keys: InProcessVault) -> None:
    hm_key = await _exported_hmac_key(keys, "hm")
    assert len(hm_key) == 48
    exported = await keys.ok("GET", "transit/export/encryption-key/aes")
    assert unb64(exported["data"]["keys"]["1"]) != await _exported_hmac_key(keys, "aes")


async def test_algorithm_selection(keys: InProcessVault) -> None:
    key = await _exported_hmac_key(keys, "hm")
    sha512 = "vault:v1:" + b64(std_hmac.new(key, b"hello world", hashlib.sha512).digest())
    assert await _hmac(keys, "hm/sha2-512", algorithm="sha2-256") == sha512
    assert await _hmac(keys, "hm", urlalgorithm="sha2-512") == sha512
    # hmac/ ignores hash_algorithm; verify/ takes the path, then hash_algorithm, then algorithm.
    assert await _hmac(keys, "hm", hash_algorithm="sha2-512") != sha512
    assert await _verify(keys, "hm", sha512, hash_algorithm="sha2-512") == {"valid": True}
    assert await _verify(keys, "hm", sha512, algorithm="sha2-512") == {"valid": True}
    assert await _verify(keys, "hm", sha512, algorithm="sha2-384", hash_algorithm="sha2-512") == {"valid": True}
    assert await _verify(keys, "hm", sha512, algorithm="sha2-512", hash_algorithm="sha2-384") == {"valid": False}
    assert await _verify(keys, "hm", sha512, algorithm="") == {"valid": False}


async def test_wrong_hmacs_are_valid_false(keys: InProcessVault) -> None:
    good = await _hmac(keys, "hm")
    assert await _verify(keys, "hm", good) == {"valid": True}
    assert await _verify(keys, "hm", good, input=b64("hello World")) == {"valid": False}
    assert await _verify(keys, "hm", "vault:v1:AA==") == {"valid": False}
    assert await _verify(keys, "hm", good[:-4] + "AAA=") == {"valid": False}
    assert await _verify(keys, "hm", "vault:v1:") == {"valid": False}
    r = await keys.ok("POST", "transit/verify/hm", json={"hmac": good})  # no input: the empty message
    assert r["data"] == {"valid": False}
    assert await _verify(keys, "aes", "vault:v1:AA==") == {"valid": False}  # any key type verifies HMACs


HMAC_ERRORS: list[tuple[str, dict[str, Any], str]] = [
    ("hmac/hm", {}, "missing input for HMAC"),
    ("hmac/hm", {"input": "!"}, "unable to decode input as base64: illegal base64 data at input byte 0"),
    ("hmac/hm/none", {"input": MSG}, "algorithm cannot be none"),
    ("hmac/hm/md5", {"input": MSG}, 'unsupported algorithm "md5"'),
    ("hmac/hm", {"input": MSG, "algorithm": ""}, 'unsupported algorithm ""'),
    ("hmac/hm/md5", {"batch_input": []}, 'unsupported algorithm "md5"'),
    ("hmac/hm/none", {"batch_input": []}, "algorithm cannot be none"),
    ("hmac/hm", {"batch_input": []}, "missing batch input to process"),
    ("hmac/missing", {"input": MSG}, "encryption key not found"),
    ("hmac/missing/md5", {"input": MSG}, "encryption key not found"),
    ("hmac/hm", {"input": MSG, "key_version": 3}, "key version does not exist; latest key version is 2"),
    ("hmac/hm", {"batch_input": [], "key_version": 9}, "key version does not exist; latest key version is 2"),
    ("hmac/hm", {"input": MSG, "key_version": -1}, "key version does not exist (cannot be negative)"),
    ("verify/hm", {"input": MSG, "hmac": ""}, "invalid HMAC to verify: no prefix"),
    ("verify/hm", {"input": MSG, "hmac": "vault:v1"}, "invalid HMAC: wrong number of fields"),
    ("verify/hm", {"input": MSG, "hmac": "vault:vx:AA=="}, "invalid HMAC: version number could not be decoded"),
    ("verify/hm", {"input": MSG, "hmac": "vault:v1:!"},
     "unable to decode verification HMAC as base64: illegal base64 data at input byte 0"),
    ("verify/hm", {"input": MSG, "hmac": "vault:v9:AA=="}, "invalid HMAC: version is too new"),
    ("verify/hm", {"input": MSG, "hmac": "vault:v0:AA=="}, "cannot verify HMAC: version is too old (disallowed by policy)"),
    ("verify/hm", {"input": MSG, "hmac": "vault:v-1:AA=="}, "cannot verify HMAC: version is too old (disallowed by policy)"),
    ("verify/hm", {"input": "!", "hmac": "vault:v1:AA=="},
     "unable to decode input as base64: illegal base64 data at input byte 0"),
    ("verify/missing", {"input": MSG, "hmac": "x"}, "encryption key not found"),
    ("verify/missing/none", {"input": MSG, "hmac": "x"}, "encryption key not found"),
    ("verify/missing/md5", {"input": MSG, "hmac": "x"}, 'invalid hash algorithm "md5"'),
    ("verify/hm/none", {"input": MSG, "hmac": "x"}, "algorithm cannot be none"),
    ("verify/hm/none", {"batch_input": [{"input": MSG, "hmac": "x"}]}, "algorithm cannot be none"),
]


@pytest.mark.parametrize(("path", "body", "message"), HMAC_ERRORS, ids=[f"{p}-{m[:40]}" for p, _, m in HMAC_ERRORS])
async def test_errors(keys: InProcessVault, path: str, body: dict[str, Any], message: str) -> None:
    await keys.ok("POST", "transit/keys/hm/rotate")
    assert await _error(keys, path, body) == message


async def test_versions(keys: InProcessVault) -> None:
    v1 = await _hmac(keys, "hm")
    await keys.ok("POST", "transit/keys/hm/rotate")
    v2 = await _hmac(keys, "hm")
    assert v2.startswith("vault:v2:") and v1.startswith("vault:v1:")
    assert await _hmac(keys, "hm", key_version=1) == v1
    assert await _hmac(keys, "hm", key_version=2) == v2
    key2 = await _exported_hmac_key(keys, "hm", 2)
    assert v2 == "vault:v2:" + b64(std_hmac.new(key2, b"hello world", hashlib.sha256).digest())
    assert await _verify(keys, "hm", v1) == {"valid": True}
    assert await _verify(keys, "hm", "vault:v2:" + v1[9:]) == {"valid": False}
    await keys.ok("POST", "transit/keys/hm/config", json={"min_encryption_version": 2})
    assert await _error(keys, "hmac/hm", {"input": MSG, "key_version": 1}) == (
        "cannot generate HMAC: version is too old (disallowed by policy)"
    )
    assert await _hmac(keys, "hm", key_version=2) == v2
    await keys.ok("POST", "transit/keys/hm/config", json={"min_decryption_version": 2})
    assert await _error(keys, "verify/hm", {"input": MSG, "hmac": v1}) == (
        "cannot verify HMAC: version is too old (disallowed by policy)"
    )


async def test_hmac_batch(keys: InProcessVault) -> None:
    r = await keys.call("POST", "transit/hmac/hm", json={"batch_input": [
        {"input": MSG, "reference": "a"}, {"input": "!"}, {}, {"input": MSG, "reference": 7}, {"input": None},
    ]})
    assert r.status_code == 200
    single = await _hmac(keys, "hm")
    empty = await _hmac(keys, "hm", input="")
    assert r.json()["data"]["batch_results"] == [
        {"hmac": single, "reference": "a"},
        {"error": "unable to decode input as base64: illegal base64 data at input byte 0", "reference": ""},
        {"error": "missing input for HMAC", "reference": ""},
        {"hmac": single, "reference": "7"},
        {"hmac": empty, "reference": ""},
    ]


async def test_verify_hmac_batch(keys: InProcessVault) -> None:
    good = await _hmac(keys, "hm")
    r = await keys.call("POST", "transit/verify/hm", json={"batch_input": [
        {"input": MSG, "hmac": good, "reference": "x"},
        {"input": MSG, "hmac": "vault:v1:!"},
        {"hmac": good},
        {"input": MSG, "hmac": "vault:v1:AA==", "reference": "y"},
    ]})
    assert r.status_code == 200
    assert r.json()["data"]["batch_results"] == [
        {"valid": True, "reference": "x"},
        {"valid": False, "error": "unable to decode verification HMAC as base64: illegal base64 data at input byte 0",
         "reference": ""},
        {"valid": False, "error": "missing input", "reference": ""},
        {"valid": False, "reference": "y"},
    ]
    coded = await keys.call("POST", "transit/verify/hm", json={"batch_input": [
        {"input": MSG, "hmac": good}, {"input": MSG, "hmac": "vault:v1:!"},
    ], "partial_failure_response_code": 207})
    assert coded.status_code == 207


async def test_acl_needs_update_on_the_path(keys: InProcessVault) -> None:
    await keys.ok("PUT", "sys/policies/acl/hmac-only", json={"policy": 'path "transit/hmac/hm" { capabilities = ["update"] }'})
    token = await keys.token(["hmac-only"])
    r = await keys.call("POST", "transit/hmac/hm", token=token, json={"input": MSG})
    assert r.status_code == 200
    r = await keys.call("POST", "transit/hmac/hm/sha2-512", token=token, json={"input": MSG})
    assert r.status_code == 403
    r = await keys.call("POST", "transit/verify/hm", token=token, json={"input": MSG, "hmac": "vault:v1:AA=="})
    assert r.status_code == 403


@pytest.mark.slow
def test_expected_messages_are_openbaos(tmp_path: Path) -> None:
    """HMAC_ERRORS against OpenBao itself; the one wording we changed on purpose is mapped back."""
    ours_to_theirs = {'unsupported algorithm "md5"': "unsupported algorithm '\\x00'",
                      'unsupported algorithm ""': "unsupported algorithm '\\x00'"}
    bao = start_openbao_dev(tmp_path)
    try:
        with bao.client() as client:
            client.post("/v1/sys/mounts/transit", json={"type": "transit"}).raise_for_status()
            client.post("/v1/transit/keys/hm", json={"type": "hmac", "key_size": 48}).raise_for_status()
            client.post("/v1/transit/keys/hm/rotate").raise_for_status()
            for path, body, message in HMAC_ERRORS:
                r = client.post(f"/v1/transit/{path}", json=body)
                assert (r.status_code, r.json()["errors"]) == (400, [ours_to_theirs.get(message, message)]), path
    finally:
        bao.kill()
