"""Differential test: the same transit requests against a real OpenBao and a strongroom process.

Both servers run in dev mode (root token ``root``) with ``transit/`` mounted. The steps run in order on both
servers. A step can keep its response under a name (``save``), and later steps can build their bodies from
the server's own earlier answers (callables of that state): ciphertexts, signatures and backups are random
or per-server.

For each step we compare:

- the status code;
- the shape of the JSON body (keys, recursively, and JSON types; see :func:`shape_diff`);
- the error and warning texts (always);
- the ``data`` values when the step says ``same_data`` (for deterministic answers such as hashes, plaintexts
  and config reads, after times have been normalised).

Where strongroom differs on purpose, the step states the difference, and docs/api-compatibility.md
("Transit") explains it:

- ``known``: a shape difference;
- ``bao_errors``: OpenBao's own message;
- ``bao_status``: OpenBao's status, when it differs. A 500 from OpenBao carries Go's multierror text, so its
  message is not compared.

The test asserts that exact difference, so a difference that disappears or appears is noticed either way.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.server import start_openbao_dev, start_strongroom

pytestmark = pytest.mark.slow

State = dict[str, Any]
Body = dict[str, Any] | Callable[[State], dict[str, Any]] | None
AUTH = "cipher: message authentication failed"
TOO_OLD = "ciphertext or signature version is disallowed by policy (too old)"
_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)")


def b64(data: bytes | str) -> str:
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()


@dataclass(frozen=True)
class Step:
    """One request and what is compared."""

    method: str
    path: str
    body: Body = None
    save: str = ""
    same_data: bool = False
    known: frozenset[str] = frozenset()
    bao_status: int | None = None
    bao_errors: list[str] | None = None
    bao_warnings: list[str] | None = None
    note: str = ""

    @property
    def name(self) -> str:
        return f"{self.method} {self.path}" + (f" ({self.note})" if self.note else "")


def K(*items: str) -> frozenset[str]:
    return frozenset(items)


def ct(saved: str, index: int | None = None) -> Callable[[State], str]:
    """The ciphertext (or signature, hmac) a saved response carried."""
    def get(state: State) -> str:
        data = state[saved]["data"]
        if index is not None:
            data = data["batch_results"][index]
        for key in ("ciphertext", "signature", "hmac"):
            if key in data:
                return str(data[key])
        raise KeyError(saved)
    return get


def with_ct(saved: str, **extra: Any) -> Callable[[State], dict[str, Any]]:
    return lambda state: {"ciphertext": ct(saved)(state), **extra}


def tampered(saved: str) -> Callable[[State], dict[str, Any]]:
    def body(state: State) -> dict[str, Any]:
        prefix, payload = ct(saved)(state).rsplit(":", 1)
        raw = bytearray(base64.b64decode(payload))
        raw[len(raw) // 2] ^= 1
        return {"ciphertext": f"{prefix}:{b64(bytes(raw))}"}
    return body


P = b64("the same plaintext on both servers")
CTX = b64("context-1")

KEYS = [
    Step("POST", "sys/mounts/transit", {"type": "transit"}),
    Step("LIST", "transit/keys", note="empty mount"),
    Step("POST", "transit/keys/k-aes", {}),
    Step("GET", "transit/keys/k-aes"),
    Step("POST", "transit/keys/k-aes", {}, known=K("~warnings"), note="again: Vault's warning, OpenBao none"),
    Step("GET", "transit/keys/nope"),
    Step("POST", "transit/keys/k-128", {"type": "aes128-gcm96"}),
    Step("POST", "transit/keys/k-chacha", {"type": "chacha20-poly1305"}),
    Step("POST", "transit/keys/k-x", {"type": "xchacha20-poly1305"}),
    Step("POST", "transit/keys/k-derived", {"derived": True}),
    Step("POST", "transit/keys/k-conv", {"derived": True, "convergent_encryption": True}),
    Step("GET", "transit/keys/k-conv"),
    Step("POST", "transit/keys/k-ed", {"type": "ed25519"}),
    Step("POST", "transit/keys/k-ed-derived", {"type": "ed25519", "derived": True}),
    Step("GET", "transit/keys/k-ed-derived", note="no context: empty public key"),
    Step("GET", "transit/keys/k-ed-derived?context=" + CTX.replace("=", "%3D"), note="public key for a context"),
    Step("GET", "transit/keys/k-ed"),
    Step("POST", "transit/keys/k-p256", {"type": "ecdsa-p256"}),
    Step("GET", "transit/keys/k-p256"),
    Step("POST", "transit/keys/k-rsa", {"type": "rsa-2048"}),
    Step("GET", "transit/keys/k-rsa"),
    Step("POST", "transit/keys/k-hmac", {"type": "hmac", "key_size": 48}),
    Step("GET", "transit/keys/k-hmac"),
    Step("POST", "transit/keys/k-export", {"exportable": True, "allow_plaintext_backup": True}),
    Step("LIST", "transit/keys", note="sorted names"),
    Step("POST", "transit/keys/bad", {"type": "aes512"}),
    Step("POST", "transit/keys/bad", {"convergent_encryption": True}),
    Step("POST", "transit/keys/bad", {"type": "ecdsa-p256", "derived": True}, bao_status=500),
    Step("POST", "transit/keys/bad", {"type": "rsa-2048", "convergent_encryption": True, "derived": True},
         bao_status=500),
    Step("POST", "transit/keys/bad", {"auto_rotate_period": "5m"}),
    Step("POST", "transit/keys/bad", {"type": "aes256-gcm96", "key_size": 64}),
    Step("POST", "transit/keys/bad", {"type": "hmac", "key_size": 16}),
    Step("POST", "transit/keys/k-aes/config", {"min_decryption_version": 5}),
    Step("POST", "transit/keys/k-aes/config", {"min_encryption_version": 5}),
    Step("POST", "transit/keys/k-aes/config", {"min_decryption_version": -1}),
    Step("POST", "transit/keys/k-aes/config", {"auto_rotate_period": "30s"}),
    Step("POST", "transit/keys/k-aes/config", {"min_decryption_version": 0}, note="forced to 1 with a warning",
         bao_warnings=["since Vault 0.3 (prior to the OpenBao fork), transit key numbering starts at 1; "
                       "forcing minimum to 1"]),
    Step("POST", "transit/keys/k-aes/config", {"deletion_allowed": True, "auto_rotate_period": "24h"}),
    Step("POST", "transit/keys/k-aes/config", {"exportable": True}),
    Step("POST", "transit/keys/k-aes/config", {"exportable": False}, note="cannot be turned off"),
    Step("GET", "transit/keys/k-aes"),
    Step("POST", "transit/keys/nope/config", {"deletion_allowed": True}),
    Step("POST", "transit/keys/k-aes/rotate"),
    Step("POST", "transit/keys/k-aes/rotate"),
    Step("POST", "transit/keys/nope/rotate"),
    Step("POST", "transit/keys/k-aes/config", {"min_decryption_version": 2, "min_encryption_version": 1}),
    Step("GET", "transit/keys/k-aes"),
    Step("DELETE", "transit/keys/k-derived", note="deletion not allowed"),
    Step("DELETE", "transit/keys/nope"),
    Step("DELETE", "transit/keys/k-aes"),
    Step("GET", "transit/keys/k-aes"),
    Step("GET", "transit/config/keys"),
    Step("GET", "transit/cache-config", same_data=True),
    Step("POST", "transit/cache-config", {"size": 5}),
    Step("POST", "transit/cache-config", {"size": 20}),
    Step("GET", "transit/cache-config", same_data=True),
]

ENCRYPT = [
    Step("POST", "transit/encrypt/e1", {"plaintext": P}, save="e1", note="upsert"),
    Step("GET", "transit/keys/e1"),
    Step("POST", "transit/decrypt/e1", with_ct("e1"), same_data=True),
    Step("POST", "transit/encrypt/e1", {"plaintext": "not base64!"}),
    Step("POST", "transit/encrypt/e1", {"plaintext": "dGhl\r\nIHNh\n"}, note="Go skips CR and LF"),
    Step("POST", "transit/encrypt/e1", {"plaintext": "dGhl IHNh"}),
    Step("POST", "transit/encrypt/e1", {}),
    Step("POST", "transit/encrypt/e1", {"plaintext": P, "key_version": 3}),
    Step("POST", "transit/encrypt/e1", {"plaintext": P, "key_version": -1}),
    Step("POST", "transit/encrypt/e1", {"plaintext": P, "nonce": b64(bytes(12))}, bao_status=200, note="caller nonce: refused here, ignored by OpenBao"),
    Step("POST", "transit/decrypt/e1", {"ciphertext": "garbage"}),
    Step("POST", "transit/decrypt/e1", {"ciphertext": "vault:v1"}),
    Step("POST", "transit/decrypt/e1", {"ciphertext": "vault:vx:AAAA"}),
    Step("POST", "transit/decrypt/e1", {"ciphertext": "vault:v1:!!!!"}),
    Step("POST", "transit/decrypt/e1", {"ciphertext": "vault:v-1:" + b64(bytes(40))}),
    Step("POST", "transit/decrypt/e1", {"ciphertext": "vault:v+1:" + b64(bytes(40))}),
    Step("POST", "transit/decrypt/e1", {"ciphertext": "vault:v+-1:" + b64(bytes(40))}),
    Step("POST", "transit/decrypt/e1", {"ciphertext": "vault:v0:" + b64(bytes(40))}, note="v0 reads as v1"),
    Step("POST", "transit/decrypt/e1", {"ciphertext": "vault:v1:" + b64(bytes(40)) + "\n"}),
    Step("POST", "transit/decrypt/e1", {"ciphertext": "vault:v1:AAAA"}, bao_errors=["invalid ciphertext length"],
         note="shorter than a nonce"),
    Step("POST", "transit/decrypt/e1", {"ciphertext": "vault:v1:" + b64(bytes(40))}),
    Step("POST", "transit/decrypt/e1", tampered("e1")),
    Step("POST", "transit/decrypt/e1", {"ciphertext": "vault:v7:" + b64(bytes(40))}),
    Step("POST", "transit/decrypt/e1", {}),
    Step("POST", "transit/decrypt/unknown", {"ciphertext": "vault:v1:" + b64(bytes(40))}),
    Step("POST", "transit/rewrap/e1", with_ct("e1"), save="e1-rewrapped"),
    Step("POST", "transit/keys/e1/rotate"),
    Step("POST", "transit/rewrap/e1", with_ct("e1"), note="to version 2"),
    Step("POST", "transit/rewrap/e1", with_ct("e1", key_version=1), note="to an older version"),
    Step("POST", "transit/encrypt/e1", {"plaintext": P, "associated_data": b64("ad")}, save="e1-ad"),
    Step("POST", "transit/decrypt/e1", with_ct("e1-ad", associated_data=b64("ad")), same_data=True),
    Step("POST", "transit/decrypt/e1", with_ct("e1-ad"), note="associated data missing"),
    Step("POST", "transit/decrypt/e1", with_ct("e1-ad", associated_data="%%"), bao_status=500,
         note="associated data not base64"),
    Step("POST", "transit/keys/e1/config", {"min_decryption_version": 2}),
    Step("POST", "transit/decrypt/e1", with_ct("e1"), note="below min_decryption_version"),
    Step("POST", "transit/rewrap/e1", with_ct("e1"), note="below min_decryption_version"),
    Step("POST", "transit/keys/e1/config", {"min_encryption_version": 2}),
    Step("POST", "transit/encrypt/e1", {"plaintext": P, "key_version": 1}),
    # batches
    Step("POST", "transit/encrypt/e1", {"batch_input": [{"plaintext": P, "reference": "a"}, {"plaintext": P}]},
         save="batch"),
    Step("POST", "transit/encrypt/e1", {"batch_input": [{"plaintext": P}, {"plaintext": "%%%"},
                                                         {"plaintext": P, "key_version": 9}]},
         note="mixed good and bad"),
    Step("POST", "transit/encrypt/e1", {"batch_input": [{"plaintext": P}, {"plaintext": "%%%"}],
                                        "partial_failure_response_code": 207}),
    Step("POST", "transit/encrypt/e1", {"batch_input": [{"plaintext": "%%%"}], "partial_failure_response_code": 207},
         note="nothing succeeded: 400 regardless"),
    Step("POST", "transit/encrypt/e1", {"batch_input": []}),
    Step("POST", "transit/encrypt/e1", {"batch_input": "nope"}, bao_status=500,
         note="OpenBao fails to decode it with a 500"),
    Step("POST", "transit/decrypt/e1", lambda s: {"batch_input": [
        {"ciphertext": ct("batch", 0)(s), "reference": "r0"}, {"ciphertext": "vault:v1:" + b64(bytes(40))},
        {"ciphertext": "junk"}, {"ciphertext": ct("batch", 1)(s)}]}, same_data=False, note="mixed"),
    Step("POST", "transit/decrypt/e1", lambda s: {"batch_input": [
        {"ciphertext": ct("batch", 0)(s)}, {"ciphertext": ct("batch", 1)(s)}]}, same_data=True),
    Step("POST", "transit/decrypt/e1", lambda s: {"batch_input": [
        {"ciphertext": ct("batch", 0)(s)}, {"ciphertext": "junk"}], "partial_failure_response_code": 299}),
    Step("POST", "transit/rewrap/e1", lambda s: {"batch_input": [
        {"ciphertext": ct("batch", 0)(s)}, {"ciphertext": "junk"}]}),
    # derived and convergent keys
    Step("POST", "transit/encrypt/k-derived", {"plaintext": P}, note="missing context"),
    Step("POST", "transit/encrypt/k-derived", {"plaintext": P, "context": "%%"}),
    Step("POST", "transit/encrypt/k-derived", {"plaintext": P, "context": CTX}, save="derived"),
    Step("POST", "transit/decrypt/k-derived", with_ct("derived", context=CTX), same_data=True),
    Step("POST", "transit/decrypt/k-derived", with_ct("derived", context=b64("other"))),
    Step("POST", "transit/decrypt/k-derived", with_ct("derived")),
    Step("POST", "transit/encrypt/k-derived", {"batch_input": [{"plaintext": P, "context": CTX}, {"plaintext": P}]}),
    Step("POST", "transit/encrypt/k-conv", {"plaintext": P, "context": CTX}, save="conv"),
    Step("POST", "transit/decrypt/k-conv", with_ct("conv", context=CTX), same_data=True),
    Step("POST", "transit/rewrap/k-conv", with_ct("conv", context=CTX)),
    Step("POST", "transit/encrypt/up-derived", {"plaintext": P, "context": CTX}, note="upsert derived"),
    Step("GET", "transit/keys/up-derived"),
    Step("POST", "transit/encrypt/up-conv", {"plaintext": P, "context": CTX, "convergent_encryption": True,
                                             "type": "chacha20-poly1305"}),
    Step("GET", "transit/keys/up-conv"),
    Step("POST", "transit/encrypt/up-conv2", {"plaintext": P, "convergent_encryption": True},
         note="convergent upsert without context"),
    Step("POST", "transit/encrypt/up-bad", {"plaintext": P, "type": "ed25519"}),
    Step("POST", "transit/encrypt/up-bad", {"plaintext": P, "type": "nonsense"}),
    # other key types
    Step("POST", "transit/encrypt/k-chacha", {"plaintext": P}, save="chacha"),
    Step("POST", "transit/decrypt/k-chacha", tampered("chacha"),
         bao_errors=["chacha20poly1305: message authentication failed"]),
    Step("POST", "transit/encrypt/k-x", {"plaintext": P}, save="xchacha"),
    Step("POST", "transit/decrypt/k-x", with_ct("xchacha"), same_data=True),
    Step("POST", "transit/decrypt/k-x", tampered("xchacha"),
         bao_errors=["chacha20poly1305: message authentication failed"]),
    Step("POST", "transit/encrypt/k-128", {"plaintext": P}, save="aes128"),
    Step("POST", "transit/decrypt/k-128", with_ct("aes128"), same_data=True),
    Step("POST", "transit/encrypt/k-rsa", {"plaintext": P}, save="rsa"),
    Step("POST", "transit/decrypt/k-rsa", with_ct("rsa"), same_data=True),
    Step("POST", "transit/decrypt/k-rsa", tampered("rsa"), bao_status=500, note="RSA failure: 400 here"),
    Step("POST", "transit/encrypt/k-rsa", {"plaintext": P, "associated_data": b64("ad")}),
    Step("POST", "transit/encrypt/k-rsa", {"plaintext": b64(bytes(191))}, bao_status=500, note="too long"),
    Step("POST", "transit/encrypt/k-ed", {"plaintext": P}, note="wrong key type"),
    Step("POST", "transit/decrypt/k-ed", {"ciphertext": "vault:v1:" + b64(bytes(40))}, note="wrong key type"),
    Step("POST", "transit/encrypt/k-hmac", {"plaintext": P}, note="wrong key type"),
    # upserts switched off
    Step("POST", "transit/config/keys", {"disable_upsert": True}),
    Step("GET", "transit/config/keys", same_data=True),
    Step("POST", "transit/encrypt/never", {"plaintext": P}),
    Step("POST", "transit/config/keys", {"disable_upsert": False}),
]

OTHER_ENDPOINTS = [
    # data keys
    Step("POST", "transit/datakey/plaintext/k-128", {}, save="dk"),
    Step("POST", "transit/decrypt/k-128", lambda s: {"ciphertext": s["dk"]["data"]["ciphertext"]}),
    Step("POST", "transit/datakey/wrapped/k-128", {"bits": 512}),
    Step("POST", "transit/datakey/plaintext/k-128", {"bits": 100}),
    Step("POST", "transit/datakey/other/k-128", {}),
    Step("POST", "transit/datakey/plaintext/nope", {}),
    Step("POST", "transit/datakey/plaintext/k-derived", {}, note="missing context"),
    Step("POST", "transit/datakey/plaintext/k-derived", {"context": CTX}),
    Step("POST", "transit/datakey/plaintext/k-ed", {}),
    # random and hash
    Step("POST", "transit/random", {}),
    Step("POST", "transit/random/16", {"format": "hex"}),
    Step("POST", "transit/random/platform/8", {}),
    Step("POST", "transit/random", {"bytes": -1}),
    Step("POST", "transit/random", {"bytes": 1024 * 1024}),
    Step("POST", "transit/random", {"format": "base32"}),
    Step("POST", "transit/random/moon", {}),
    Step("POST", "transit/hash", {"input": P}, same_data=True),
    Step("POST", "transit/hash/sha2-512", {"input": P, "format": "base64"}, same_data=True),
    Step("POST", "transit/hash", {"input": P, "algorithm": "sha3-256"}, same_data=True),
    Step("POST", "transit/hash", {"input": P, "algorithm": "md5"}),
    Step("POST", "transit/hash", {"input": "%%"}),
    Step("POST", "transit/hash", {}),
    # hmac and signatures
    Step("POST", "transit/hmac/k-hmac", {"input": P}, save="mac"),
    Step("POST", "transit/verify/k-hmac", lambda s: {"input": P, "hmac": ct("mac")(s)}, same_data=True),
    Step("POST", "transit/verify/k-hmac", lambda s: {"input": b64("other"), "hmac": ct("mac")(s)}, same_data=True),
    Step("POST", "transit/hmac/k-hmac/sha2-384", {"batch_input": [{"input": P}, {"input": "%%"}]}),
    Step("POST", "transit/hmac/k-hmac", {"input": P, "algorithm": "md5"},
         bao_errors=["unsupported algorithm '\\x00'"], note="OpenBao formats the name as a character"),
    Step("POST", "transit/hmac/nope", {"input": P}),
    Step("POST", "transit/sign/k-ed", {"input": P}, save="sig-ed"),
    Step("POST", "transit/verify/k-ed", lambda s: {"input": P, "signature": ct("sig-ed")(s)}, same_data=True),
    Step("POST", "transit/verify/k-ed", lambda s: {"input": b64("x"), "signature": ct("sig-ed")(s)}, same_data=True),
    Step("POST", "transit/sign/k-p256", {"input": P, "marshaling_algorithm": "jws"}, save="sig-p256"),
    Step("POST", "transit/verify/k-p256", lambda s: {"input": P, "signature": ct("sig-p256")(s),
                                                     "marshaling_algorithm": "jws"}, same_data=True),
    Step("POST", "transit/sign/k-rsa/sha2-512", {"input": P, "signature_algorithm": "pkcs1v15"}, save="sig-rsa"),
    Step("POST", "transit/verify/k-rsa/sha2-512", lambda s: {"input": P, "signature": ct("sig-rsa")(s),
                                                             "signature_algorithm": "pkcs1v15"}, same_data=True),
    Step("POST", "transit/sign/k-rsa", {"batch_input": [{"input": P}, {"input": "%%"}]}),
    Step("POST", "transit/sign/k-aes", {"input": P}, note="deleted key"),
    Step("POST", "transit/sign/e1", {"input": P}, note="wrong key type"),
    Step("POST", "transit/sign/k-ed", {"input": P, "prehashed": True}),
    Step("POST", "transit/sign/k-p256", {"input": P, "marshaling_algorithm": "der"}),
    Step("POST", "transit/verify/k-ed", {"input": P}),
    # export, backup, restore, trim
    Step("GET", "transit/export/encryption-key/k-export"),
    Step("GET", "transit/export/encryption-key/k-export/latest"),
    Step("GET", "transit/export/hmac-key/k-export/1"),
    Step("GET", "transit/export/signing-key/k-export"),
    Step("GET", "transit/export/encryption-key/k-export/9"),
    Step("GET", "transit/export/bogus-key/k-export"),
    Step("GET", "transit/export/encryption-key/e1"),
    Step("GET", "transit/export/encryption-key/nope"),
    Step("GET", "transit/backup/k-export", save="backup"),
    Step("GET", "transit/backup/e1", bao_status=500, note="not exportable"),
    Step("POST", "transit/restore/k-restored", lambda s: {"backup": s["backup"]["data"]["backup"]}),
    Step("GET", "transit/keys/k-restored"),
    Step("POST", "transit/restore/k-restored", lambda s: {"backup": s["backup"]["data"]["backup"]},
         bao_status=500, note="exists"),
    Step("POST", "transit/restore", {"backup": "%%"}, bao_status=500),
    Step("POST", "transit/restore", {}),
    Step("POST", "transit/keys/e1/trim", {"min_available_version": 2}),
    Step("GET", "transit/keys/e1"),
    Step("POST", "transit/keys/e1/trim", {"min_available_version": 1}),
    Step("POST", "transit/keys/e1/trim", {"min_available_version": 5}),
    Step("POST", "transit/keys/k-chacha/trim", {"min_available_version": 1}),
    # BYOK
    Step("GET", "transit/wrapping_key"),
    Step("POST", "transit/keys/imp/import", {"ciphertext": b64(bytes(600)), "type": "aes256-gcm96"},
         bao_status=500, note="does not unwrap"),
    Step("POST", "transit/keys/imp/import", {"type": "aes256-gcm96"}, bao_status=500, note="no key given"),
    Step("POST", "transit/keys/imp/import", {"ciphertext": b64(bytes(600)), "type": "nonsense"}),
    Step("POST", "transit/keys/e1/import", {"ciphertext": b64(bytes(600)), "type": "aes256-gcm96"},
         bao_status=500, note="existing key"),
    Step("POST", "transit/keys/e1/import_version", {"ciphertext": b64(bytes(600))}, bao_status=500,
         note="not an imported key"),
    # export after versions dropped below min_decryption_version
    Step("POST", "transit/keys/k-export/rotate"),
    Step("POST", "transit/keys/k-export/rotate"),
    Step("POST", "transit/keys/k-export/config", {"min_decryption_version": 2}),
    Step("GET", "transit/export/encryption-key/k-export"),
    Step("GET", "transit/export/encryption-key/k-export/1"),
    Step("POST", "transit/keys/k-export/config", {"min_decryption_version": 1}),
    Step("GET", "transit/keys/k-export", note="versions below the minimum come back"),
    Step("POST", "transit/keys/k-hmac-default", {"type": "hmac"}, bao_status=500,
         note="no key_size: strongroom defaults to 32 bytes"),
]

SEQUENCE = KEYS + ENCRYPT + OTHER_ENDPOINTS


@dataclass
class Outcome:
    status: int
    body: Any
    state: State = field(default_factory=dict)


def _send(client: httpx.Client, step: Step, state: State) -> Outcome:
    body = step.body(state) if callable(step.body) else step.body
    method, path = step.method, step.path
    if method == "LIST":
        method, path = "GET", path + "?list=true"
    r = client.request(method, "/v1/" + path, json=body)
    parsed = r.json() if r.content else None
    if step.save and r.status_code == 200:
        state[step.save] = parsed
    return Outcome(r.status_code, parsed)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[tuple[Outcome, Outcome]]]:
    work: Path = tmp_path_factory.mktemp("transit-diff")
    bao = start_openbao_dev(work)
    ours = start_strongroom(["--dev", "--dev-root-token-id", "root", "--storage", "memory://"], work)
    try:
        results = []
        states: tuple[State, State] = ({}, {})
        headers = {"X-Vault-Token": "root"}
        with httpx.Client(base_url=bao.addr, headers=headers, timeout=30) as b, \
                httpx.Client(base_url=ours.addr, headers=headers, timeout=30) as o:
            for step in SEQUENCE:
                results.append((_send(b, step, states[0]), _send(o, step, states[1])))
        yield results
    finally:
        bao.kill()
        ours.kill()


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__


def shape_diff(ours: Any, theirs: Any, where: str = "") -> list[str]:
    """``+k`` only strongroom has key k, ``-k`` only OpenBao, ``~k`` the JSON types differ.

    Lists compare every pair of elements (batch results differ per item).
    """
    if isinstance(ours, dict) and isinstance(theirs, dict):
        out = [f"+{where}{k}" for k in ours.keys() - theirs.keys()]
        out += [f"-{where}{k}" for k in theirs.keys() - ours.keys()]
        for k in ours.keys() & theirs.keys():
            out += shape_diff(ours[k], theirs[k], f"{where}{k}.")
        return sorted(set(out))
    if isinstance(ours, list) and isinstance(theirs, list):
        if len(ours) != len(theirs):
            return [f"~{where.rstrip('.')}"]
        return sorted({d for a, b in zip(ours, theirs, strict=True) for d in shape_diff(a, b, where)})
    if _kind(ours) != _kind(theirs):
        return [f"~{where.rstrip('.')}"]
    return []


def _normalise(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _normalise(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_normalise(v) for v in value]
    if isinstance(value, str) and _TIME.fullmatch(value):
        return "<time>"
    return value


def _messages(body: Any) -> tuple[Any, Any, list[Any]]:
    if not isinstance(body, dict):
        return None, None, []
    data = body.get("data") or {}
    batch = data.get("batch_results") if isinstance(data, dict) else None
    item_errors = [r.get("error") for r in batch] if isinstance(batch, list) else []
    return body.get("errors"), body.get("warnings"), item_errors


@pytest.mark.parametrize("index", range(len(SEQUENCE)), ids=[f"{i:03d}-{s.name}" for i, s in enumerate(SEQUENCE)])
def test_step_matches_openbao(runs: list[tuple[Outcome, Outcome]], index: int) -> None:
    step = SEQUENCE[index]
    bao, ours = runs[index]
    if step.bao_status is not None:
        assert bao.status == step.bao_status, (step, bao)
        assert ours.status != step.bao_status and ours.status < 500, (step, ours)
    else:
        assert ours.status == bao.status, (step, bao, ours)
    if bao.status >= 500:
        if ours.status >= 400:
            assert ours.body["errors"], ours  # our 4xx says what was wrong
        return
    if ours.status == bao.status:
        assert set(shape_diff(ours.body, bao.body)) == step.known, (step, bao.body, ours.body)
    bao_errors, bao_warnings, bao_items = _messages(bao.body)
    our_errors, our_warnings, our_items = _messages(ours.body)
    if step.bao_errors is not None:
        assert bao_errors == step.bao_errors, bao.body
        assert our_errors and our_errors != bao_errors, ours.body
    elif step.bao_status is None:
        assert our_errors == bao_errors, (step, bao.body, ours.body)
        assert our_items == bao_items, (step, bao.body, ours.body)
    if step.bao_warnings is not None:
        assert bao_warnings == step.bao_warnings, bao.body
        assert our_warnings and our_warnings != bao_warnings, ours.body
    elif "~warnings" not in step.known and step.bao_status is None:
        assert our_warnings == bao_warnings, (step, bao.body, ours.body)
    if step.same_data:
        assert _normalise(ours.body["data"]) == _normalise(bao.body["data"]), step


def test_sequence_covers_every_transit_route() -> None:
    """Every route the engine declares is exercised by at least one step."""
    from strongroom.engines.transit import ROUTES

    exercised = {re.sub(r"^transit/", "", s.path) for s in SEQUENCE if s.path.startswith("transit/")}
    missing = []
    for route in ROUTES:
        pattern = re.sub(r"\{[^}]+\}", "[^/]+", route.pattern.rstrip("/"))
        if not any(re.fullmatch(f"{pattern}(/.*)?", p.rstrip("/")) for p in exercised):
            missing.append(route.pattern)
    assert missing == []


def test_hash_values_are_the_standard_digests(runs: list[tuple[Outcome, Outcome]]) -> None:
    """The one hash step with a known answer, computed here too, so equal-but-wrong answers fail."""
    index = next(i for i, s in enumerate(SEQUENCE) if s.path == "transit/hash" and s.body == {"input": P})
    ours = runs[index][1].body["data"]["sum"]
    assert ours == hashlib.sha256(base64.b64decode(P)).hexdigest()
    assert json.dumps(ours)  # plain string
