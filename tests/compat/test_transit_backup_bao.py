"""Transit backups cross between OpenBao and strongroom, both ways, for every key type.

A real ``bao server -dev`` and a real ``strongroom server --dev`` run side by side. For each case:

* **OpenBao -> strongroom**: a key is created in OpenBao (exportable, plaintext backups allowed, rotated,
  version limits and trims where the case says), OpenBao encrypts, signs and HMACs with it, the key is
  backed up there and restored here. Strongroom must decrypt and verify everything OpenBao produced,
  produce ciphertexts, signatures and HMACs that OpenBao accepts, export the key exactly as OpenBao does
  (every kind and format), and back it up again to the same bytes as OpenBao's backup (apart from
  ``backup_info``/``restore_info``, which record when each happened).
* **strongroom -> OpenBao**: the same, starting from a key created here.

Convergent keys must give the same ciphertext on both servers.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.server import ServerProcess, start_openbao_dev, start_strongroom

pytestmark = pytest.mark.slow

KINDS = ("encryption-key", "signing-key", "hmac-key", "public-key", "certificate-chain")
FORMATS = ("", "raw", "der", "pem")
MESSAGES = (b"", b"attack at dawn", bytes(range(120)))
_INFO = re.compile(r'"(backup_info|restore_info)":(null|\{[^{}]*\})')


@dataclass(frozen=True)
class Case:
    """A key to move: its create options, rotations, config after rotating, trim, derivation context."""

    name: str
    create: dict[str, Any]
    rotate: int = 0
    config: dict[str, Any] = field(default_factory=dict)
    trim: int = 0
    context: bytes = b""

    @property
    def key_type(self) -> str:
        return str(self.create.get("type", "aes256-gcm96"))


CASES = [
    Case("aes128", {"type": "aes128-gcm96"}, rotate=1),
    Case("aes256", {"type": "aes256-gcm96"}, rotate=4,
         config={"min_decryption_version": 3, "min_encryption_version": 4}, trim=2),
    Case("chacha", {"type": "chacha20-poly1305"}, rotate=2, config={"min_decryption_version": 2}),
    Case("xchacha", {"type": "xchacha20-poly1305"}, rotate=1),
    Case("aes256-derived", {"type": "aes256-gcm96", "derived": True}, rotate=1, context=b"tenant-7"),
    Case("aes256-convergent", {"type": "aes256-gcm96", "derived": True, "convergent_encryption": True},
         rotate=2, config={"min_decryption_version": 2}, context=b"user-42"),
    Case("chacha-convergent", {"type": "chacha20-poly1305", "derived": True, "convergent_encryption": True},
         context=b"row-1"),
    Case("xchacha-derived", {"type": "xchacha20-poly1305", "derived": True}, context=b"file-3"),
    Case("ed25519", {"type": "ed25519"}, rotate=2, config={"min_decryption_version": 2}),
    Case("ed25519-derived", {"type": "ed25519", "derived": True}, context=b"device-9"),
    Case("ecdsa-p256", {"type": "ecdsa-p256"}, rotate=1),
    Case("ecdsa-p384", {"type": "ecdsa-p384"}),
    Case("ecdsa-p521", {"type": "ecdsa-p521"}),
    Case("rsa-2048", {"type": "rsa-2048"}, rotate=1, config={"min_decryption_version": 2}),
    Case("rsa-3072", {"type": "rsa-3072"}),
    Case("rsa-4096", {"type": "rsa-4096"}),
    Case("hmac", {"type": "hmac", "key_size": 64}, rotate=2, config={"min_decryption_version": 2}),
]
_SIGNING = ("ed25519", "ecdsa-p256", "ecdsa-p384", "ecdsa-p521", "rsa-2048", "rsa-3072", "rsa-4096")
_ENCRYPTING = ("aes128-gcm96", "aes256-gcm96", "chacha20-poly1305", "xchacha20-poly1305",
               "rsa-2048", "rsa-3072", "rsa-4096")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


class Side:
    """One server's transit mount."""

    def __init__(self, label: str, server: ServerProcess) -> None:
        self.label = label
        self.http = httpx.Client(base_url=server.addr + "/v1/transit/", headers={"X-Vault-Token": "root"},
                                 timeout=120)

    def call(self, method: str, path: str, body: dict[str, Any] | None = None, **params: str) -> httpx.Response:
        return self.http.request(method, path, json=body, params=params or None)

    def ok(self, method: str, path: str, body: dict[str, Any] | None = None, **params: str) -> Any:
        r = self.call(method, path, body, **params)
        assert r.status_code in (200, 204), (self.label, method, path, r.status_code, r.text)
        return r.json()["data"] if r.status_code == 200 else None


@pytest.fixture(scope="module")
def sides(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Side, Side]]:
    work: Path = tmp_path_factory.mktemp("transit-backup-bao")
    bao = start_openbao_dev(work)
    ours = start_strongroom(["--dev", "--dev-root-token-id", "root", "--storage", "memory://"], work)
    try:
        for server in (bao, ours):
            r = httpx.post(server.addr + "/v1/sys/mounts/transit", json={"type": "transit"},
                           headers={"X-Vault-Token": "root"}, timeout=30)
            assert r.status_code == 204, r.text
        yield Side("openbao", bao), Side("strongroom", ours)
    finally:
        bao.kill()
        ours.kill()


def _create(side: Side, name: str, case: Case) -> dict[str, Any]:
    side.ok("POST", f"keys/{name}", {**case.create, "exportable": True, "allow_plaintext_backup": True})
    for _ in range(case.rotate):
        side.ok("POST", f"keys/{name}/rotate", {})
    if case.config:
        side.ok("POST", f"keys/{name}/config", case.config)
    if case.trim:
        side.ok("POST", f"keys/{name}/trim", {"min_available_version": case.trim})
    key: dict[str, Any] = side.ok("GET", f"keys/{name}")
    return key


def _produce(side: Side, name: str, case: Case, key: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Ciphertexts, signatures and HMACs made by ``side`` with every version that may still encrypt."""
    ctx = {"context": _b64(case.context)} if case.context else {}
    first = max(key["min_encryption_version"], key["min_decryption_version"], 1)
    out: dict[str, list[dict[str, Any]]] = {"ciphertexts": [], "signatures": [], "hmacs": []}
    for version in range(first, key["latest_version"] + 1):
        for message in MESSAGES:
            data = {"input": _b64(message), "key_version": version}
            if case.key_type in _ENCRYPTING:
                ct = side.ok("POST", f"encrypt/{name}", {"plaintext": _b64(message), "key_version": version, **ctx})
                out["ciphertexts"].append({"plaintext": _b64(message), "ciphertext": ct["ciphertext"]})
            if case.key_type in _SIGNING:
                for algo in (("pss", "pkcs1v15") if case.key_type.startswith("rsa") else ("",)):
                    body = {**data, **ctx, **({"signature_algorithm": algo} if algo else {})}
                    sig = side.ok("POST", f"sign/{name}/sha2-256", body)["signature"]
                    out["signatures"].append({**body, "signature": sig})
            mac = side.ok("POST", f"hmac/{name}/sha2-256", data)["hmac"]
            out["hmacs"].append({"input": data["input"], "hmac": mac})
    return out


def _accept(side: Side, name: str, case: Case, made: dict[str, list[dict[str, Any]]], other: str) -> None:
    """``side`` decrypts and verifies what the other server made."""
    ctx = {"context": _b64(case.context)} if case.context else {}
    for item in made["ciphertexts"]:
        got = side.ok("POST", f"decrypt/{name}", {"ciphertext": item["ciphertext"], **ctx})
        assert got["plaintext"] == item["plaintext"], (side.label, other, name)
        if case.create.get("convergent_encryption"):
            version = int(item["ciphertext"].split(":")[1][1:])
            again = side.ok("POST", f"encrypt/{name}", {"plaintext": item["plaintext"], "key_version": version, **ctx})
            assert again["ciphertext"] == item["ciphertext"], (side.label, "convergent ciphertexts differ")
    for item in made["signatures"]:
        body = {k: v for k, v in item.items() if k != "key_version"}
        assert side.ok("POST", f"verify/{name}/sha2-256", body)["valid"] is True, (side.label, other, item)
        tampered = {**body, "input": _b64(b"other" + base64.b64decode(body["input"]))}
        assert side.ok("POST", f"verify/{name}/sha2-256", tampered)["valid"] is False
    for item in made["hmacs"]:
        assert side.ok("POST", f"verify/{name}/sha2-256", item)["valid"] is True, (side.label, other, item)


def _exports(side: Side, name: str) -> dict[tuple[str, str, str], tuple[int, Any]]:
    out: dict[tuple[str, str, str], tuple[int, Any]] = {}
    for kind in KINDS:
        for fmt in FORMATS:
            for version in ("", "/latest"):
                r = side.call("GET", f"export/{kind}/{name}{version}", **({"format": fmt} if fmt else {}))
                body = r.json()
                # OpenBao answers getExportKey failures with 500 and a wrapped message; strongroom with 400.
                ok = r.status_code == 200
                out[(kind, fmt, version)] = (ok, body["data"]["keys"] if ok else None)
    return out


def _backup_text(side: Side, name: str) -> str:
    text = base64.b64decode(side.ok("GET", f"backup/{name}")["backup"]).decode()
    return _INFO.sub(lambda m: f'"{m.group(1)}":<info>', text)


def _shown(entry: Any) -> Any:
    """A ``keys/:name`` version entry with ``creation_time`` in Go's form (strongroom's reads print all nine
    fraction digits, Go trims trailing zeros: the same instant)."""
    if not isinstance(entry, dict) or "." not in entry.get("creation_time", ""):
        return entry
    head, fraction = entry["creation_time"].removesuffix("Z").split(".")
    fraction = fraction.rstrip("0")
    return {**entry, "creation_time": f"{head}.{fraction}Z" if fraction else f"{head}Z"}


def _cross(source: Side, target: Side, case: Case, name: str) -> None:
    key = _create(source, name, case)
    made_there = _produce(source, name, case, key)
    backup = source.ok("GET", f"backup/{name}")["backup"]
    assert target.ok("POST", f"restore/{name}", {"backup": backup}) is None
    restored = target.ok("GET", f"keys/{name}")
    for f in ("type", "latest_version", "min_decryption_version", "min_encryption_version",
              "min_available_version", "derived", "exportable", "allow_plaintext_backup"):
        assert restored.get(f) == key.get(f), (target.label, f)
    # keys/:name lists versions from min_decryption_version on in OpenBao; strongroom's read also lists
    # the older versions it keeps (a difference of the keys endpoint, not of backups).
    live = {v for v in key.get("keys", {}) if int(v) >= key["min_decryption_version"]}
    assert {v: _shown(restored["keys"][v]) for v in live} == {v: _shown(key["keys"][v]) for v in live}
    assert restored["restore_info"]["version"] == key["latest_version"]
    _accept(target, name, case, made_there, source.label)
    made_here = _produce(target, name, case, restored)
    _accept(source, name, case, made_here, target.label)
    assert _exports(target, name) == _exports(source, name)
    # Backing the restored key up again gives the source's bytes (only the two timestamps records differ).
    assert _backup_text(target, name) == _backup_text(source, name)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_openbao_backup_restores_into_strongroom(sides: tuple[Side, Side], case: Case) -> None:
    bao, ours = sides
    _cross(bao, ours, case, f"from-bao-{case.name}")


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_strongroom_backup_restores_into_openbao(sides: tuple[Side, Side], case: Case) -> None:
    bao, ours = sides
    _cross(ours, bao, case, f"from-strongroom-{case.name}")


def test_forced_restore_and_rename_behave_alike(sides: tuple[Side, Side]) -> None:
    for side in sides:
        side.ok("POST", "keys/dup", {"exportable": True, "allow_plaintext_backup": True})
        backup = side.ok("GET", "backup/dup")["backup"]
        r = side.call("POST", "restore", {"backup": backup})
        assert r.json()["errors"][-1].strip().endswith('key "dup" already exists'), side.label
        assert side.ok("POST", "restore", {"backup": backup, "force": True}) is None
        assert side.ok("POST", "restore/dup-renamed", {"backup": backup}) is None
        assert side.ok("GET", "keys/dup-renamed")["name"] == "dup-renamed"
