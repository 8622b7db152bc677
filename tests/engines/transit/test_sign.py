"""``sign/`` and ``verify/`` (signatures) through the API: Vault's shapes, messages, batches and version rules.

Expected messages and shapes were observed on OpenBao 2.7 (``bao server -dev``); where strongroom answers a
400 instead of OpenBao's 500 the test says so.
"""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from strongroom.crypto.transit.derive import MISSING_CONTEXT
from tests.engines.transit.conftest import b64, unb64
from tests.support.server import start_openbao_dev
from tests.support.vault import InProcessVault

MSG = b64("hello world")
SIGNING_TYPES = ["ed25519", "ecdsa-p256", "ecdsa-p384", "ecdsa-p521", "rsa-2048", "rsa-3072", "rsa-4096"]


async def _key(v: InProcessVault, name: str, key_type: str, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = await v.ok("POST", f"transit/keys/{name}", json={"type": key_type, **extra})
    return body


async def _sign(v: InProcessVault, path: str, **body: Any) -> dict[str, Any]:
    data: dict[str, Any] = (await v.ok("POST", f"transit/sign/{path}", json={"input": MSG, **body}))["data"]
    return data


async def _valid(v: InProcessVault, path: str, signature: str, **body: Any) -> bool:
    r = await v.call("POST", f"transit/verify/{path}", json={"input": MSG, "signature": signature, **body})
    assert r.status_code == 200, r.text
    valid: bool = r.json()["data"]["valid"]
    return valid


async def _error(v: InProcessVault, path: str, body: dict[str, Any], status: int = 400) -> str:
    r = await v.call("POST", f"transit/{path}", json=body)
    assert r.status_code == status, r.text
    errors: list[str] = r.json()["errors"]
    assert len(errors) == 1
    return errors[0]


def _public_key(read: dict[str, Any], version: int = 1) -> Any:
    text = read["data"]["keys"][str(version)]["public_key"]
    if read["data"]["type"] == "ed25519":
        return ed25519.Ed25519PublicKey.from_public_bytes(unb64(text))
    return serialization.load_pem_public_key(text.encode())


@pytest.mark.parametrize("key_type", SIGNING_TYPES)
async def test_sign_verify_and_check_with_the_published_public_key(transit: InProcessVault, key_type: str) -> None:
    await _key(transit, "k", key_type)
    data = await _sign(transit, "k")
    assert set(data) == {"signature", "key_version"} and data["key_version"] == 1
    assert data["signature"].startswith("vault:v1:")
    assert await _valid(transit, "k", data["signature"])
    assert not await _valid(transit, "k", data["signature"], input=b64("hello World"))
    # Independently of strongroom's verifier: the public key that keys/:name publishes checks it.
    public = _public_key(await transit.ok("GET", "transit/keys/k"))
    sig = unb64(data["signature"].removeprefix("vault:v1:"))
    if isinstance(public, ed25519.Ed25519PublicKey):
        public.verify(sig, b"hello world")
    elif isinstance(public, ec.EllipticCurvePublicKey):
        public.verify(sig, b"hello world", ec.ECDSA(hashes.SHA256()))
    else:
        assert isinstance(public, rsa.RSAPublicKey)
        public.verify(sig, b"hello world", padding.PSS(padding.MGF1(hashes.SHA256()), padding.PSS.AUTO),
                      hashes.SHA256())


async def test_hash_algorithm_comes_from_path_then_hash_algorithm_then_algorithm(transit: InProcessVault) -> None:
    await _key(transit, "ec", "ecdsa-p256")
    public = _public_key(await transit.ok("GET", "transit/keys/ec"))
    sig = (await _sign(transit, "ec", algorithm="sha2-512"))["signature"]
    public.verify(unb64(sig[9:]), b"hello world", ec.ECDSA(hashes.SHA512()))
    assert not await _valid(transit, "ec", sig)
    assert await _valid(transit, "ec", sig, hash_algorithm="sha2-512")
    assert await _valid(transit, "ec", sig, algorithm="sha2-512")
    assert await _valid(transit, "ec", sig, algorithm="sha2-384", hash_algorithm="sha2-512")
    assert await _valid(transit, "ec/sha2-512", sig, algorithm="sha2-384", hash_algorithm="sha2-384")
    assert not await _valid(transit, "ec", sig, hash_algorithm="", algorithm="")
    sig = (await _sign(transit, "ec/sha3-384", hash_algorithm="sha2-256"))["signature"]
    public.verify(unb64(sig[9:]), b"hello world", ec.ECDSA(hashes.SHA3_384()))


async def test_jws_marshaling(transit: InProcessVault) -> None:
    await _key(transit, "ec", "ecdsa-p521")
    await _key(transit, "rsa", "rsa-2048")
    for name, size in (("ec", 132), ("rsa", 256)):
        sig = (await _sign(transit, name, marshaling_algorithm="jws"))["signature"]
        payload = sig.removeprefix("vault:v1:")
        assert "=" not in payload and "+" not in payload and "/" not in payload
        assert len(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))) == size
        assert await _valid(transit, name, sig, marshaling_algorithm="jws")
        wrapped = sig[:40] + "\r\n" + sig[40:] + "\n"  # Go's decoders skip CR and LF
        assert await _valid(transit, name, wrapped, marshaling_algorithm="jws")
        assert await _error(transit, f"verify/{name}", {"input": MSG, "signature": sig}) in (
            "invalid base64 signature value", "supplied signature is invalid",
        )


async def test_rsa_options(transit: InProcessVault) -> None:
    await _key(transit, "rsa", "rsa-2048")
    public = _public_key(await transit.ok("GET", "transit/keys/rsa"))
    pkcs = (await _sign(transit, "rsa/sha2-384", signature_algorithm="pkcs1v15"))["signature"]
    public.verify(unb64(pkcs[9:]), b"hello world", padding.PKCS1v15(), hashes.SHA384())
    assert pkcs == (await _sign(transit, "rsa/sha2-384", signature_algorithm="pkcs1v15"))["signature"]
    salted = (await _sign(transit, "rsa", salt_length="hash"))["signature"]
    public.verify(unb64(salted[9:]), b"hello world", padding.PSS(padding.MGF1(hashes.SHA256()), 32), hashes.SHA256())
    assert await _valid(transit, "rsa", salted, salt_length="32")
    assert not await _valid(transit, "rsa", salted, salt_length="31")
    digest = b64(hashlib.sha256(b"hello world").digest())
    pre = (await _sign(transit, "rsa", input=digest, prehashed=True))["signature"]
    assert await _valid(transit, "rsa", pre)
    raw = (await _sign(transit, "rsa/none", input=digest, prehashed=True, signature_algorithm="pkcs1v15"))["signature"]
    assert public.recover_data_from_signature(unb64(raw[9:]), padding.PKCS1v15(), None) == unb64(digest)
    assert await _valid(transit, "rsa/none", raw, input=digest, prehashed=True, signature_algorithm="pkcs1v15")


SIGN_ERRORS: list[tuple[str, dict[str, Any], str]] = [
    ("sign/ec/bogus", {}, 'invalid hash algorithm "bogus"'),
    ("sign/ec", {"marshaling_algorithm": "xx"}, 'invalid marshaling type "xx"'),
    ("sign/ec", {"marshaling_algorithm": ""}, 'invalid marshaling type ""'),
    ("sign/ec", {"salt_length": "abc"}, "salt length neither 'auto', 'hash', nor an int: abc"),
    ("sign/ec", {"salt_length": "-2"}, "salt length is invalid: -2"),
    ("sign/missing", {}, "signing key not found"),
    ("sign/missing", {"salt_length": "x"}, "salt length neither 'auto', 'hash', nor an int: x"),
    ("sign/missing/md5", {}, "signing key not found"),
    ("sign/aes", {}, "key type aes256-gcm96 does not support signing"),
    ("sign/hm", {}, "key type hmac does not support signing"),
    ("sign/ec/none", {}, "hash_algorithm=none requires both prehashed=true and signature_algorithm=pkcs1v15"),
    ("sign/ec/none", {"prehashed": True}, "hash_algorithm=none requires both prehashed=true and signature_algorithm=pkcs1v15"),
    ("sign/ec/none", {"batch_input": []}, "hash_algorithm=none requires both prehashed=true and signature_algorithm=pkcs1v15"),
    ("sign/ec/md5", {"batch_input": []}, 'invalid hash algorithm "md5"'),
    ("sign/ec", {"batch_input": []}, "missing batch input to process"),
    ("sign/ec", {"input": "!!"}, "unable to decode input as base64: illegal base64 data at input byte 0"),
    ("sign/ed-derived", {"context": "!!"}, "failed to base64-decode context"),
    # OpenBao answers these with a 500; the message is the same.
    ("sign/ec", {"key_version": -1}, "requested version for signing is negative"),
    ("sign/ec", {"key_version": 2}, "requested version for signing is higher than the latest key version"),
    ("sign/ed-derived", {}, f"error deriving key: {MISSING_CONTEXT}"),
    ("sign/ec", {"input": "", "prehashed": True}, "ecdsa: hash cannot be empty"),
    ("sign/rsa", {"prehashed": True}, "crypto/rsa: input must be hashed with given hash"),
    ("sign/rsa", {"prehashed": True, "signature_algorithm": "pkcs1v15"}, "crypto/rsa: input must be hashed message"),
    ("sign/rsa/none", {"input": b64(bytes(300)), "prehashed": True, "signature_algorithm": "pkcs1v15"},
     "crypto/rsa: message too long for RSA key size"),
    ("sign/rsa", {"signature_algorithm": "foo"}, "unsupported rsa signature algorithm foo"),
    ("sign/rsa", {"salt_length": "223"}, "requested salt length 223 is invalid"),
    ("sign/ec", {"batch_input": [{"input": True}]},
     "failed to parse batch input: '[0][input]' expected type 'string', got unconvertible type 'bool'"),
    ("sign/ec", {"batch_input": "x"}, "failed to parse batch input: batch_input must be a list of objects"),
]


@pytest.fixture
async def keys(transit: InProcessVault) -> InProcessVault:
    await _key(transit, "ec", "ecdsa-p256")
    await _key(transit, "rsa", "rsa-2048")
    await _key(transit, "ed", "ed25519")
    await _key(transit, "ed-derived", "ed25519", derived=True)
    await _key(transit, "aes", "aes256-gcm96")
    await _key(transit, "hm", "hmac")
    return transit


@pytest.mark.parametrize(("path", "body", "message"), SIGN_ERRORS, ids=[f"{p}-{m[:40]}" for p, _, m in SIGN_ERRORS])
async def test_sign_errors(keys: InProcessVault, path: str, body: dict[str, Any], message: str) -> None:
    assert await _error(keys, path, {"input": MSG, **body}) == message


async def test_ed25519_ignores_hash_and_rsa_options(keys: InProcessVault) -> None:
    """Pure Ed25519 whatever the hash algorithm says (deterministic, so the signatures are equal)."""
    base = (await _sign(keys, "ed"))["signature"]
    assert (await _sign(keys, "ed/sha2-512"))["signature"] == base
    assert (await _sign(keys, "ed/none", prehashed=True, signature_algorithm="pkcs1v15"))["signature"] == base
    assert (await _sign(keys, "ed", signature_algorithm="bogus", salt_length="9999"))["signature"] == base
    jws = (await _sign(keys, "ed", marshaling_algorithm="jws"))["signature"]
    assert jws == base.replace("+", "-").replace("/", "_").rstrip("=")


async def test_missing_input_signs_the_empty_message(keys: InProcessVault) -> None:
    r = await keys.ok("POST", "transit/sign/ed", json={})
    public = _public_key(await keys.ok("GET", "transit/keys/ed"))
    public.verify(unb64(r["data"]["signature"][9:]), b"")


async def test_derived_ed25519(keys: InProcessVault) -> None:
    one = await _sign(keys, "ed-derived", context=b64("tenant-1"))
    two = await _sign(keys, "ed-derived", context=b64("tenant-2"))
    assert set(one) == {"signature", "key_version", "public_key"}
    assert one["public_key"] != two["public_key"]
    ed25519.Ed25519PublicKey.from_public_bytes(unb64(one["public_key"])).verify(unb64(one["signature"][9:]),
                                                                                b"hello world")
    assert await _valid(keys, "ed-derived", one["signature"], context=b64("tenant-1"))
    assert not await _valid(keys, "ed-derived", one["signature"], context=b64("tenant-2"))
    message = await _error(keys, "verify/ed-derived", {"input": MSG, "signature": one["signature"]})
    assert message == f"error deriving key: {MISSING_CONTEXT}"


VERIFY_ERRORS: list[tuple[dict[str, Any], str]] = [
    ({"input": MSG}, "neither a 'signature' nor an 'hmac' were given to verify"),
    ({"signature": ""}, "invalid signature: no prefix"),
    ({"signature": "vault:v1"}, "invalid signature: wrong number of fields"),
    ({"signature": "vault:vx:abc"}, "invalid signature: version number could not be decoded"),
    ({"signature": "vault:v+-1:abc"}, "invalid signature: version number could not be decoded"),
    ({"signature": "vault:v2:abc"}, "invalid signature: version is too new"),
    ({"signature": "vault:v0:abc"}, "ciphertext or signature version is disallowed by policy (too old)"),
    ({"signature": "vault:v-1:abc"}, "ciphertext or signature version is disallowed by policy (too old)"),
    ({"signature": "vault:v1:ab!c"}, "invalid base64 signature value"),
    ({"signature": "vault:v1:YWJj"}, "supplied signature is invalid"),
    ({"signature": "vault:v1:MEUCIQCEujuiLsKSGOiX4nO2hS/FVj54yaKN6itU2iX0sFZXJgIgQ4Wubiu3jORE0uytPboxsAYqAWH7OO0Nqw881nf8tjYA"},
     "supplied signature contains extra data"),
    ({"signature": "vault:v1:MAcCAgABAgEB"}, "supplied signature is invalid"),
    ({"signature": "vault:v1:YWJj+", "marshaling_algorithm": "jws"}, "invalid base64 signature value"),
    ({"signature": "vault:v1:YWI=", "marshaling_algorithm": "jws"}, "invalid base64 signature value"),
    ({"signature": "vault:v1:YWJj", "marshaling_algorithm": "bad"}, 'invalid marshaling type "bad"'),
    ({"signature": "vault:v1:YWJj", "input": "!"}, "unable to decode input as base64: illegal base64 data at input byte 0"),
    ({"signature": "x", "salt_length": "x"}, "salt length neither 'auto', 'hash', nor an int: x"),
    ({"batch_input": []}, "missing batch input to process"),
    ({"batch_input": [{"input": MSG}]}, "no batch_input elements have 'signature' or 'hmac'"),
    ({"batch_input": [{"input": MSG, "signature": "x"}, {"input": MSG, "hmac": "x"}]},
     "elements of batch_input must all provide 'signature' or all provide 'hmac'"),
    ({"batch_input": [{"input": MSG, "signature": "x"}, {"input": MSG}]},
     "some elements of batch_input are missing 'signature'"),
    ({"batch_input": [{"input": MSG, "hmac": "x"}, {"input": MSG}]}, "some elements of batch_input are missing 'hmac'"),
]


@pytest.mark.parametrize(("body", "message"), VERIFY_ERRORS, ids=[m[:50] for _, m in VERIFY_ERRORS])
async def test_verify_errors(keys: InProcessVault, body: dict[str, Any], message: str) -> None:
    assert await _error(keys, "verify/ec", {"input": MSG, **body}) == message


async def test_verify_key_errors(keys: InProcessVault) -> None:
    body = {"input": MSG, "signature": "vault:v1:YWJj"}
    assert await _error(keys, "verify/missing", body) == "signature verification key not found"
    assert await _error(keys, "verify/aes", body) == "key type aes256-gcm96 does not support verification"
    assert await _error(keys, "verify/ec/md5", body) == 'invalid hash algorithm "md5"'
    assert await _error(keys, "verify/rsa/none", body) == (
        "hash_algorithm=none requires both prehashed=true and signature_algorithm=pkcs1v15"
    )


WRONG = {
    "ed": ["vault:v1:", "vault:v1:" + b64(bytes(64)), "vault:v1:" + "A" * 86 + "=="],
    "ec": ["vault:v1:MAYCAQECAQE=", "vault:v1:MAYCAf8CAQE=", "vault:v1:MAkCAQECAQECAQE="],
    "rsa": ["vault:v1:", "vault:v1:" + b64(bytes(256)), "vault:v1:" + b64(b"\xff" * 256)],
}


@pytest.mark.parametrize("name", sorted(WRONG))
async def test_wrong_signatures_are_valid_false(keys: InProcessVault, name: str) -> None:
    for junk in WRONG[name]:
        r = await keys.call("POST", "transit/verify/" + name, json={"input": MSG, "signature": junk})
        assert r.status_code == 200 and r.json()["data"] == {"valid": False}, (junk, r.text)
    for junk in ("vault:v1:", "vault:v1:YWJj", "vault:v1:" + "A" * 86):
        r = await keys.call("POST", "transit/verify/ec", json={"input": MSG, "signature": junk,
                                                              "marshaling_algorithm": "jws"})
        assert r.json()["data"] == {"valid": False}


async def test_signature_wins_over_hmac_in_a_single_verify(keys: InProcessVault) -> None:
    sig = (await _sign(keys, "ed"))["signature"]
    r = await keys.ok("POST", "transit/verify/ed", json={"input": MSG, "signature": sig, "hmac": "junk"})
    assert r["data"] == {"valid": True}


async def test_prefix_versions_parse_as_go_atoi(keys: InProcessVault) -> None:
    sig = (await _sign(keys, "ed"))["signature"]
    for variant in ("vault:v01:", "vault:v+1:"):
        assert await _valid(keys, "ed", sig.replace("vault:v1:", variant))


async def test_sign_batch(keys: InProcessVault) -> None:
    body = {"batch_input": [
        {"input": MSG, "reference": "a"},
        {"input": "!"},
        {"context": "eA=="},
        {"input": MSG, "reference": 5},
        {"input": None, "reference": None},
    ]}
    r = await keys.call("POST", "transit/sign/ec", json=body)
    assert r.status_code == 200
    results = r.json()["data"]["batch_results"]
    assert [set(x) for x in results] == [
        {"signature", "key_version", "reference"},
        {"key_version", "error", "reference"},
        {"key_version", "error", "reference"},
        {"signature", "key_version", "reference"},
        {"signature", "key_version", "reference"},
    ]
    assert [x["reference"] for x in results] == ["a", "", "", "5", ""]
    assert results[1] == {"key_version": 0, "reference": "",
                          "error": "unable to decode input as base64: illegal base64 data at input byte 0"}
    assert results[2]["error"] == "missing input" and results[2]["key_version"] == 0
    assert results[0]["key_version"] == 1
    assert await _valid(keys, "ec", results[0]["signature"])
    assert await _valid(keys, "ec", results[4]["signature"], input="")


async def test_sign_batch_version_errors_are_per_item(keys: InProcessVault) -> None:
    r = await keys.ok("POST", "transit/sign/ec", json={"batch_input": [{"input": MSG}], "key_version": 5})
    assert r["data"]["batch_results"] == [{"key_version": 0, "reference": "",
                                           "error": "requested version for signing is higher than the latest key version"}]


async def test_sign_batch_derived_public_keys(keys: InProcessVault) -> None:
    r = await keys.ok("POST", "transit/sign/ed-derived", json={"batch_input": [
        {"input": MSG, "context": b64("a")}, {"input": MSG},
    ]})
    first, second = r["data"]["batch_results"]
    single = await _sign(keys, "ed-derived", context=b64("a"))
    assert first["publickey"] == single["public_key"] and first["signature"] == single["signature"]
    assert second == {"key_version": 0, "reference": "", "error": f"error deriving key: {MISSING_CONTEXT}"}


async def test_verify_batch(keys: InProcessVault) -> None:
    sig = (await _sign(keys, "ec"))["signature"]
    r = await keys.call("POST", "transit/verify/ec", json={"batch_input": [
        {"input": MSG, "signature": sig, "reference": "r1"},
        {"input": MSG, "signature": "vault:v1:YWJj"},
        {"signature": sig},
        {"input": b64("other"), "signature": sig, "reference": "r4"},
    ]})
    assert r.status_code == 200
    assert r.json()["data"]["batch_results"] == [
        {"valid": True, "reference": "r1"},
        {"valid": False, "error": "supplied signature is invalid", "reference": ""},
        {"valid": False, "error": "missing input", "reference": ""},
        {"valid": False, "reference": "r4"},
    ]


async def test_partial_failure_response_code_opts_into_status_rules(keys: InProcessVault) -> None:
    mixed = {"batch_input": [{"input": MSG}, {"input": "!"}]}
    assert (await keys.call("POST", "transit/sign/ec", json=mixed)).status_code == 200
    r = await keys.call("POST", "transit/sign/ec", json={**mixed, "partial_failure_response_code": 207})
    assert r.status_code == 207 and len(r.json()["data"]["batch_results"]) == 2
    failed = {"batch_input": [{"input": "!"}], "partial_failure_response_code": 207}
    assert (await keys.call("POST", "transit/sign/ec", json=failed)).status_code == 400
    good = {"batch_input": [{"input": MSG}], "partial_failure_response_code": 207}
    assert (await keys.call("POST", "transit/sign/ec", json=good)).status_code == 200
    r = await keys.call("POST", "transit/sign/ec", json={**mixed, "partial_failure_response_code": 999})
    assert r.status_code == 400 and r.json()["warnings"]


async def test_versions_rotation_and_min_versions(keys: InProcessVault) -> None:
    v1 = (await _sign(keys, "ed"))["signature"]
    await keys.ok("POST", "transit/keys/ed/rotate")
    v2 = await _sign(keys, "ed")
    assert v2["key_version"] == 2 and v2["signature"].startswith("vault:v2:")
    old = await _sign(keys, "ed", key_version=1)
    assert old["key_version"] == 1 and old["signature"] == v1
    assert await _valid(keys, "ed", v1) and await _valid(keys, "ed", v2["signature"])
    assert not await _valid(keys, "ed", "vault:v2:" + v1[9:])
    await keys.ok("POST", "transit/keys/ed/config", json={"min_encryption_version": 2})
    assert await _error(keys, "sign/ed", {"input": MSG, "key_version": 1}) == (
        "requested version for signing is less than the minimum encryption key version"
    )
    await keys.ok("POST", "transit/keys/ed/config", json={"min_decryption_version": 2})
    assert await _error(keys, "verify/ed", {"input": MSG, "signature": v1}) == (
        "ciphertext or signature version is disallowed by policy (too old)"
    )
    assert await _valid(keys, "ed", v2["signature"])


async def test_public_key_only_versions_verify_but_cannot_sign(transit: InProcessVault) -> None:
    private = ec.generate_private_key(ec.SECP256R1())
    pem = private.public_key().public_bytes(serialization.Encoding.PEM,
                                            serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    await transit.ok("POST", "transit/keys/pub/import", json={"type": "ecdsa-p256", "public_key": pem})
    assert await _error(transit, "sign/pub", {"input": MSG}) == (
        "requested version for signing does not contain a private part"
    )
    sig = private.sign(b"hello world", ec.ECDSA(hashes.SHA256()))
    assert await _valid(transit, "pub", "vault:v1:" + b64(sig))
    assert not await _valid(transit, "pub", "vault:v1:" + b64(sig), input=b64("hello world!"))


# -- the expectations above, checked against OpenBao itself -------------------------------------------------

OPENBAO_500 = {
    # OpenBao answers these caller mistakes with a 500 (same message, wrapped); strongroom with a 400.
    "requested version for signing is negative",
    "requested version for signing is higher than the latest key version",
    f"error deriving key: {MISSING_CONTEXT}",
    "ecdsa: hash cannot be empty",
    "crypto/rsa: input must be hashed with given hash",
    "crypto/rsa: input must be hashed message",
    "crypto/rsa: message too long for RSA key size",
    "unsupported rsa signature algorithm foo",
    "requested salt length 223 is invalid",
}
OURS_ONLY = {
    # Batch items that are not strings: OpenBao's message comes from its decoding library (and is a 500).
    "failed to parse batch input: '[0][input]' expected type 'string', got unconvertible type 'bool'",
    "failed to parse batch input: batch_input must be a list of objects",
}


def openbao_error(r: httpx.Response) -> tuple[int, str]:
    """Status and message of an OpenBao error, unwrapped from Go's multierror text for 500s."""
    message: str = r.json()["errors"][0]
    wrapped = re.fullmatch(r"1 error occurred:\n\t\* (.*)\n\n", message, re.S)
    return r.status_code, wrapped.group(1) if wrapped else message


def check_against_openbao(client: httpx.Client, cases: list[tuple[str, dict[str, Any], str]]) -> None:
    for path, body, message in cases:
        if message in OURS_ONLY:
            continue
        status, theirs = openbao_error(client.post(f"/v1/transit/{path}", json=body))
        assert theirs == message, (path, body)
        assert status == (500 if message in OPENBAO_500 else 400), (path, body, status)


@pytest.mark.slow
def test_expected_messages_are_openbaos(tmp_path: Path) -> None:
    bao = start_openbao_dev(tmp_path)
    try:
        with bao.client() as client:
            client.post("/v1/sys/mounts/transit", json={"type": "transit"}).raise_for_status()
            specs: dict[str, dict[str, Any]] = {
                "ec": {"type": "ecdsa-p256"}, "rsa": {"type": "rsa-2048"}, "ed": {"type": "ed25519"},
                "ed-derived": {"type": "ed25519", "derived": True}, "aes": {"type": "aes256-gcm96"},
                "hm": {"type": "hmac", "key_size": 32},  # OpenBao needs key_size for hmac keys
            }
            for name, spec in specs.items():
                client.post(f"/v1/transit/keys/{name}", json=spec).raise_for_status()
            check_against_openbao(client, [(p, {"input": MSG, **b}, m) for p, b, m in SIGN_ERRORS])
            check_against_openbao(client, [("verify/ec", {"input": MSG, **b}, m) for b, m in VERIFY_ERRORS])
    finally:
        bao.kill()
