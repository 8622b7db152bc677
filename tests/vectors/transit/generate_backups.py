"""Make tests/vectors/transit/openbao_backups.json: real OpenBao transit backups, exports and outputs.

A ``bao server -dev`` (``.venv/bin/bao``) creates one exportable, plaintext-backup-allowed key per case
(every key type, rotated and trimmed keys, derived and convergent keys), then records, per case:

* ``backup``: the ``backup/:name`` answer (base64 of Vault's JSON: big integers as JSON numbers);
* ``exports``: ``export/:kind/:name[/:version]?format=`` for every kind and format, each with the HTTP
  status and either the ``keys`` map or the error messages;
* ``ciphertexts``, ``signatures``, ``hmacs``: outputs made by OpenBao with that key (random nonces and
  salts, so each run differs), which tests decrypt and verify with the key restored from ``backup``.

Nothing here imports strongroom. Usage::

    .venv/bin/python tests/vectors/transit/generate_backups.py
"""

from __future__ import annotations

import base64
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
BAO = Path(sys.executable).parent / "bao"
KINDS = ("encryption-key", "signing-key", "hmac-key", "public-key", "certificate-chain")
FORMATS = ("", "raw", "der", "pem")

# name -> (create parameters, rotations, config after rotations, trim to, context for operations)
CASES: dict[str, dict[str, Any]] = {
    "aes128": {"create": {"type": "aes128-gcm96"}},
    "aes256-rotated": {"create": {"type": "aes256-gcm96"}, "rotate": 3,
                       "config": {"min_decryption_version": 2, "min_encryption_version": 3}, "trim": 2},
    "chacha": {"create": {"type": "chacha20-poly1305"}},
    "xchacha": {"create": {"type": "xchacha20-poly1305"}, "rotate": 1},
    "aes256-derived": {"create": {"type": "aes256-gcm96", "derived": True}, "context": b"tenant-7"},
    "aes256-convergent": {"create": {"type": "aes256-gcm96", "derived": True, "convergent_encryption": True},
                          "context": b"user-42", "rotate": 1},
    "chacha-convergent": {"create": {"type": "chacha20-poly1305", "derived": True,
                                     "convergent_encryption": True}, "context": b"row-1"},
    "ed25519": {"create": {"type": "ed25519"}, "rotate": 1},
    "ed25519-derived": {"create": {"type": "ed25519", "derived": True}, "context": b"device-9"},
    "ecdsa-p256": {"create": {"type": "ecdsa-p256"}},
    "ecdsa-p384": {"create": {"type": "ecdsa-p384"}},
    "ecdsa-p521": {"create": {"type": "ecdsa-p521"}},
    "rsa-2048": {"create": {"type": "rsa-2048"}, "rotate": 1},
    "rsa-3072": {"create": {"type": "rsa-3072"}},
    "rsa-4096": {"create": {"type": "rsa-4096"}},
    "hmac": {"create": {"type": "hmac", "key_size": 64}, "rotate": 1},
}
PLAINTEXTS = (b"", b"attack at dawn", bytes(range(150)))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _ok(c: httpx.Client, method: str, path: str, body: Any = None) -> Any:
    r = c.request(method, f"/v1/{path}", json=body)
    assert r.status_code < 300, (path, r.status_code, r.text)
    return r.json()["data"] if r.status_code == 200 else None


def _case(c: httpx.Client, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    create = {**spec["create"], "exportable": True, "allow_plaintext_backup": True}
    _ok(c, "POST", f"transit/keys/{name}", create)
    for _ in range(spec.get("rotate", 0)):
        _ok(c, "POST", f"transit/keys/{name}/rotate", {})
    if "config" in spec:
        _ok(c, "POST", f"transit/keys/{name}/config", spec["config"])
    if "trim" in spec:
        _ok(c, "POST", f"transit/keys/{name}/trim", {"min_available_version": spec["trim"]})
    key = _ok(c, "GET", f"transit/keys/{name}")
    ctx = {"context": _b64(spec["context"])} if "context" in spec else {}
    out: dict[str, Any] = {"create": create, "context": _b64(spec.get("context", b"")),
                           "ciphertexts": [], "signatures": [], "hmacs": []}
    for version in range(max(key["min_encryption_version"], key["min_decryption_version"]), key["latest_version"] + 1):
        for pt in PLAINTEXTS:
            if key["supports_encryption"]:
                ct = _ok(c, "POST", f"transit/encrypt/{name}", {"plaintext": _b64(pt), "key_version": version, **ctx})
                out["ciphertexts"].append({"plaintext": _b64(pt), "ciphertext": ct["ciphertext"]})
            if key["supports_signing"]:
                algos = ["pss", "pkcs1v15"] if key["type"].startswith("rsa") else [""]
                for algo in algos:
                    body = {"input": _b64(pt), "key_version": version, **ctx}
                    if algo:
                        body["signature_algorithm"] = algo
                    sig = _ok(c, "POST", f"transit/sign/{name}/sha2-256", body)
                    out["signatures"].append({"input": _b64(pt), "hash_algorithm": "sha2-256",
                                              "signature_algorithm": algo, "signature": sig["signature"]})
            mac = _ok(c, "POST", f"transit/hmac/{name}/sha2-256", {"input": _b64(pt), "key_version": version})
            out["hmacs"].append({"input": _b64(pt), "algorithm": "sha2-256", "hmac": mac["hmac"]})
    exports: list[dict[str, Any]] = []
    for kind in KINDS:
        for fmt in FORMATS:
            for version in ("", "/latest"):
                r = c.get(f"/v1/transit/export/{kind}/{name}{version}", params={"format": fmt} if fmt else None)
                body = r.json()
                exports.append({"kind": kind, "format": fmt, "version": version.lstrip("/"), "status": r.status_code,
                                "keys": body.get("data", {}).get("keys"), "errors": body.get("errors")})
    out["exports"] = exports
    out["backup"] = _ok(c, "GET", f"transit/backup/{name}")["backup"]
    return out


def main() -> None:
    port = _free_port()
    addr = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([str(BAO), "server", "-dev", "-dev-root-token-id=root",
                             f"-dev-listen-address=127.0.0.1:{port}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        with httpx.Client(base_url=addr, headers={"X-Vault-Token": "root"}, timeout=60) as c:
            for _ in range(200):
                try:
                    c.get("/v1/sys/health")
                    break
                except httpx.HTTPError:
                    time.sleep(0.05)
            _ok(c, "POST", "sys/mounts/transit", {"type": "transit"})
            version = c.get("/v1/sys/seal-status").json().get("version", "")
            cases = {name: _case(c, name, spec) for name, spec in CASES.items()}
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(10)
    doc = {"description": __doc__.split("\n\n")[0], "openbao_version": version, "cases": cases}
    (HERE / "openbao_backups.json").write_text(json.dumps(doc, indent=1) + "\n")


if __name__ == "__main__":
    main()
