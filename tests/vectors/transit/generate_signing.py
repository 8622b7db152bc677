"""Make tests/vectors/transit/openbao_signing.json: signatures and HMACs made by a real OpenBao.

A ``bao server -dev`` (started here, or the one at ``--addr``) creates one exportable key per signing type
(plus a derived Ed25519 key and an ``hmac`` key), exports the private keys (``export/signing-key``) and the
per-version HMAC keys (``export/hmac-key``), and signs / HMACs one fixed message with every option set in
:data:`SIGNING_CASES`. Nothing here imports strongroom: the recorded file is what strongroom's own code is
later checked against (tests/crypto/transit/test_signing.py, test_mac.py), and the slow test there runs
:func:`record` against a fresh OpenBao to check a new sample, in both directions.

Every case is a dict of ``sign/`` request fields (``path_algorithm`` goes in the URL); ``input`` is the
message unless the case gives its own (prehashed digests, raw ``none`` payloads).

Usage::

    .venv/bin/python tests/vectors/transit/generate_signing.py [--addr http://127.0.0.1:8200 --token root]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
OUT = HERE / "openbao_signing.json"
MESSAGE = b"strongroom transit signing vector: the quick brown fox jumps over the lazy dog"

HASHES = ("sha1", "sha2-224", "sha2-256", "sha2-384", "sha2-512", "sha3-224", "sha3-256", "sha3-384", "sha3-512")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _ecdsa_cases() -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = [{"path_algorithm": h} for h in HASHES]
    cases += [
        {"marshaling_algorithm": "jws"},
        {"hash_algorithm": "sha2-512", "marshaling_algorithm": "jws"},
        {"prehashed": True, "input": b64(hashlib.sha256(MESSAGE).digest())},
        {"prehashed": True, "input": b64(hashlib.sha512(MESSAGE).digest()), "hash_algorithm": "sha2-512"},
        {"path_algorithm": "none", "prehashed": True, "signature_algorithm": "pkcs1v15", "input": b64(MESSAGE[:20])},
    ]
    return cases


def _rsa_cases() -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = []
    for h in HASHES:
        cases.append({"path_algorithm": h})
        cases.append({"path_algorithm": h, "signature_algorithm": "pkcs1v15"})
    cases += [
        {"salt_length": "hash"},
        {"salt_length": "20"},
        {"salt_length": "hash", "hash_algorithm": "sha2-512"},
        {"marshaling_algorithm": "jws"},
        {"marshaling_algorithm": "jws", "signature_algorithm": "pkcs1v15"},
        {"prehashed": True, "input": b64(hashlib.sha256(MESSAGE).digest())},
        {"prehashed": True, "signature_algorithm": "pkcs1v15", "input": b64(hashlib.sha384(MESSAGE).digest()),
         "hash_algorithm": "sha2-384"},
        {"path_algorithm": "none", "prehashed": True, "signature_algorithm": "pkcs1v15",
         "input": b64(hashlib.sha256(MESSAGE).digest())},
        {"path_algorithm": "none", "prehashed": True, "signature_algorithm": "pkcs1v15", "input": b64(MESSAGE)},
    ]
    return cases


SIGNING_CASES: dict[str, list[dict[str, Any]]] = {
    "ed25519": [{}, {"marshaling_algorithm": "jws"}, {"path_algorithm": "sha2-512"}, {"input": ""}],
    "ed25519-derived": [{"context": b64(b"tenant-1")}, {"context": b64(b"tenant-2"), "marshaling_algorithm": "jws"}],
    "ecdsa-p256": _ecdsa_cases(),
    "ecdsa-p384": _ecdsa_cases(),
    "ecdsa-p521": _ecdsa_cases(),
    "rsa-2048": _rsa_cases(),
    "rsa-3072": [{}, {"signature_algorithm": "pkcs1v15", "hash_algorithm": "sha2-512"}],
    "rsa-4096": [{}, {"signature_algorithm": "pkcs1v15"}, {"salt_length": "hash", "hash_algorithm": "sha3-512"}],
}

HMAC_ALGORITHMS = HASHES


def record(client: httpx.Client, mount: str = "transit") -> dict[str, Any]:
    """Create keys on the OpenBao behind ``client`` and return the vector document."""
    r = client.post(f"/v1/sys/mounts/{mount}", json={"type": "transit"})
    assert r.status_code in (200, 204), r.text

    def ok(method: str, path: str, body: Any = None) -> dict[str, Any]:
        resp = client.request(method, f"/v1/{mount}/{path}", json=body)
        assert resp.status_code == 200, (path, body, resp.status_code, resp.text)
        data: dict[str, Any] = resp.json()["data"]
        return data

    keys: list[dict[str, Any]] = []
    for label, cases in SIGNING_CASES.items():
        derived = label.endswith("-derived")
        key_type = label.removesuffix("-derived")
        name = f"vec-{label}"
        ok("POST", f"keys/{name}", {"type": key_type, "exportable": True, "derived": derived})
        exported = ok("GET", f"export/signing-key/{name}")["keys"]["1"]
        hmac_key = ok("GET", f"export/hmac-key/{name}")["keys"]["1"]
        signatures = []
        for case in cases:
            body = {k: v for k, v in case.items() if k != "path_algorithm"}
            body.setdefault("input", b64(MESSAGE))
            path = f"sign/{name}" + (f"/{case['path_algorithm']}" if "path_algorithm" in case else "")
            data = ok("POST", path, body)
            entry = {"case": case, "signature": data["signature"]}
            if "public_key" in data:
                entry["public_key"] = data["public_key"]
            signatures.append(entry)
        hmacs = [{"algorithm": a, "hmac": ok("POST", f"hmac/{name}/{a}", {"input": b64(MESSAGE)})["hmac"]}
                 for a in HMAC_ALGORITHMS]
        keys.append({"label": label, "type": key_type, "derived": derived, "private_key": exported,
                     "hmac_key": hmac_key, "signatures": signatures, "hmacs": hmacs})
    ok("POST", "keys/vec-hmac", {"type": "hmac", "key_size": 48, "exportable": True})
    hmac_key = ok("GET", "export/hmac-key/vec-hmac")["keys"]["1"]
    hmacs = [{"algorithm": a, "hmac": ok("POST", f"hmac/vec-hmac/{a}", {"input": b64(MESSAGE)})["hmac"]}
             for a in HMAC_ALGORITHMS]
    keys.append({"label": "hmac", "type": "hmac", "derived": False, "private_key": "", "hmac_key": hmac_key,
                 "signatures": [], "hmacs": hmacs})
    version = client.get("/v1/sys/seal-status").json().get("version", "")
    return {
        "description": "Signatures and HMACs made by OpenBao over 'message' with exported keys "
                       "(tests/vectors/transit/generate_signing.py). private_key is export/signing-key's "
                       "value (Ed25519: base64 of Go's 64-byte seed||public; ECDSA/RSA: PEM); hmac_key is "
                       "export/hmac-key's value.",
        "producer": f"OpenBao {version} (bao server -dev)",
        "message": b64(MESSAGE),
        "keys": keys,
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--addr", help="an OpenBao to use instead of starting bao server -dev")
    parser.add_argument("--token", default="root")
    args = parser.parse_args()
    proc = None
    addr = args.addr
    if addr is None:
        port = _free_port()
        addr = f"http://127.0.0.1:{port}"
        bao = str(Path(sys.executable).parent / "bao")
        proc = subprocess.Popen([bao, "server", "-dev", "-dev-root-token-id=root",
                                 f"-dev-listen-address=127.0.0.1:{port}"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(300):
            try:
                httpx.get(addr + "/v1/sys/seal-status", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
    try:
        with httpx.Client(base_url=addr, headers={"X-Vault-Token": args.token}, timeout=60) as client:
            doc = record(client, mount=f"transit-vectors-{os.getpid()}")
    finally:
        if proc is not None:
            os.kill(proc.pid, signal.SIGTERM)
            proc.wait(10)
    OUT.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
