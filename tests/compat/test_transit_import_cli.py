"""Transit BYOK with real clients: the ``bao transit import`` CLI, and OpenBao as the reference.

The first part drives ``bao transit import`` / ``bao transit import-version`` (OpenBao 2.7) against a
strongroom server process: the CLI fetches our ``wrapping_key``, wraps the key file itself (RSA-OAEP +
AES-KWP) and calls ``import``. The CLI's KEY argument is base64 of the key: the raw bytes of a
symmetric or HMAC key, or a PKCS#8 DER private key. Each imported key is then used through the API and
checked here against the original material.

The second part is differential: the same import requests (each server's own wrapping key) against
OpenBao in dev mode and strongroom, comparing outcomes, error texts and the imported keys' read bodies.
Documented differences (docs/transit/byok.md): OpenBao answers most refusals with 500 and wraps the
text as ``1 error occurred:\\n\\t* ...``; strongroom answers 400 with the bare text.

Skipped when the ``bao`` binary is absent, unless ``STRONGROOM_REQUIRE_ALL=1`` (then it fails).
"""

from __future__ import annotations

import base64
import hmac
import os
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from hashlib import sha256
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.keywrap import aes_key_wrap_with_padding

from tests.support.server import ServerProcess, bao_binary, start_openbao_dev, start_strongroom

pytestmark = pytest.mark.slow

OAEP = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def pkcs8(key: Any) -> bytes:
    der: bytes = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                   serialization.NoEncryption())
    return der


def public_pem(key: Any) -> str:
    text: str = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return text


def payload(versioned: str) -> tuple[int, bytes]:
    _, version, data = versioned.split(":", 2)
    return int(version[1:]), base64.b64decode(data)


@dataclass
class Cli:
    """``bao`` against one strongroom process, with an httpx client for checking results."""

    exe: str
    server: ServerProcess
    work: Path
    http: httpx.Client

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = {"PATH": os.environ.get("PATH", ""), "HOME": str(self.work),
               "BAO_ADDR": self.server.addr, "BAO_TOKEN": self.server.token}
        return subprocess.run([self.exe, *args], env=env, capture_output=True, text=True, timeout=60, check=False)

    def key_file(self, name: str, key: bytes) -> str:
        path = self.work / name
        # Line-wrapped like `base64` output: Go's decoder (in the CLI) skips the line breaks.
        text = b64(key)
        path.write_text("\n".join(text[i:i + 76] for i in range(0, len(text), 76)) + "\n")
        return f"@{path}"

    def imports(self, command: str, path: str, key: bytes, *options: str) -> None:
        result = self.run("transit", command, path, self.key_file(f"{path.replace('/', '_')}.b64", key), *options)
        assert result.returncode == 0, (result.stdout, result.stderr, self.server.log()[-2000:])
        assert "Success!" in result.stdout

    def ok(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        r = self.http.request(method, f"/v1/{path}", json=body)
        assert r.status_code in (200, 204), (path, r.status_code, r.text)
        return r.json() if r.status_code == 200 else None


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cli]:
    exe = bao_binary()
    work = tmp_path_factory.mktemp("transit-import")
    server = start_strongroom(["--dev", "--dev-root-token-id", "root", "--storage", "memory://"], work)
    server.token = "root"
    try:
        with server.client() as http:
            c = Cli(exe, server, work, http)
            c.ok("POST", "sys/mounts/transit", {"type": "transit"})
            yield c
    finally:
        server.kill()


# -- the CLI against strongroom -------------------------------------------------------------------------------


def test_cli_imports_an_aes_key_and_a_new_version(cli: Cli) -> None:
    k1, k2 = os.urandom(32), os.urandom(32)
    cli.imports("import", "transit/keys/cli-aes", k1)
    version, blob = payload(cli.ok("POST", "transit/encrypt/cli-aes", {"plaintext": b64(b"v1 data")})["data"]["ciphertext"])
    assert version == 1 and AESGCM(k1).decrypt(blob[:12], blob[12:], None) == b"v1 data"
    cli.imports("import-version", "transit/keys/cli-aes", k2)
    version, blob = payload(cli.ok("POST", "transit/encrypt/cli-aes", {"plaintext": b64(b"v2 data")})["data"]["ciphertext"])
    assert version == 2 and AESGCM(k2).decrypt(blob[:12], blob[12:], None) == b"v2 data"
    data = cli.ok("GET", "transit/keys/cli-aes")["data"]
    assert data["imported_key"] is True and data["latest_version"] == 2


def test_cli_passes_options_through(cli: Cli) -> None:
    key = os.urandom(64)
    cli.imports("import", "transit/keys/cli-hmac", key, "type=hmac", "allow_rotation=true",
                "auto_rotate_period=2h", "exportable=true")
    data = cli.ok("GET", "transit/keys/cli-hmac")["data"]
    assert (data["type"], data["key_size"], data["auto_rotate_period"], data["exportable"]) == ("hmac", 64, 7200, True)
    assert data["imported_key_allow_rotation"] is True
    mac = cli.ok("POST", "transit/hmac/cli-hmac", {"input": b64(b"m")})["data"]["hmac"]
    assert payload(mac)[1] == hmac.new(key, b"m", sha256).digest()


def test_cli_imports_an_rsa_key(cli: Cli) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cli.imports("import", "transit/keys/cli-rsa", pkcs8(key), "type=rsa-2048")
    assert cli.ok("GET", "transit/keys/cli-rsa")["data"]["keys"]["1"]["public_key"] == public_pem(key)
    _, blob = payload(cli.ok("POST", "transit/encrypt/cli-rsa", {"plaintext": b64(b"secret")})["data"]["ciphertext"])
    assert key.decrypt(blob, OAEP) == b"secret"
    signed = cli.ok("POST", "transit/sign/cli-rsa", {"input": b64(b"doc"), "signature_algorithm": "pkcs1v15"})
    key.public_key().verify(payload(signed["data"]["signature"])[1], b"doc", padding.PKCS1v15(), hashes.SHA256())


def test_cli_imports_ecdsa_and_ed25519_keys(cli: Cli) -> None:
    p256 = ec.generate_private_key(ec.SECP256R1())
    cli.imports("import", "transit/keys/cli-ec", pkcs8(p256), "type=ecdsa-p256")
    signed = cli.ok("POST", "transit/sign/cli-ec", {"input": b64(b"doc")})["data"]["signature"]
    p256.public_key().verify(payload(signed)[1], b"doc", ec.ECDSA(hashes.SHA256()))
    ed = ed25519.Ed25519PrivateKey.generate()
    cli.imports("import", "transit/keys/cli-ed", pkcs8(ed), "type=ed25519")
    signed = cli.ok("POST", "transit/sign/cli-ed", {"input": b64(b"doc")})["data"]["signature"]
    ed.public_key().verify(payload(signed)[1], b"doc")


def test_cli_completes_a_public_key_only_version(cli: Cli) -> None:
    key = ec.generate_private_key(ec.SECP384R1())
    cli.ok("POST", "transit/keys/cli-pub/import", {"public_key": public_pem(key), "type": "ecdsa-p384"})
    local = key.sign(b"doc", ec.ECDSA(hashes.SHA384()))
    verified = cli.ok("POST", "transit/verify/cli-pub", {
        "input": b64(b"doc"), "signature": "vault:v1:" + b64(local), "hash_algorithm": "sha2-384"})
    assert verified["data"]["valid"] is True
    assert cli.http.post("/v1/transit/sign/cli-pub", json={"input": b64(b"doc")}).status_code == 400
    cli.imports("import-version", "transit/keys/cli-pub", pkcs8(key), "version=1")
    signed = cli.ok("POST", "transit/sign/cli-pub", {"input": b64(b"doc"), "hash_algorithm": "sha2-384"})
    key.public_key().verify(payload(signed["data"]["signature"])[1], b"doc", ec.ECDSA(hashes.SHA384()))
    assert cli.ok("GET", "transit/keys/cli-pub")["data"]["latest_version"] == 1


def test_cli_reports_a_refusal(cli: Cli) -> None:
    cli.imports("import", "transit/keys/cli-twice", os.urandom(32))
    result = cli.run("transit", "import", "transit/keys/cli-twice", cli.key_file("again.b64", os.urandom(32)))
    assert result.returncode == 3, (result.stdout, result.stderr)
    assert "the import path cannot be used with an existing key" in result.stderr
    result = cli.run("transit", "import", "transit/keys/cli-short", cli.key_file("short.b64", os.urandom(16)))
    assert result.returncode == 3 and "invalid key size 16 bytes for key type aes256-gcm96" in result.stderr


# -- differential: the same imports against OpenBao and strongroom --------------------------------------------


def _wrap(pem: str, target: bytes, ephemeral: bytes | None = None) -> str:
    public = serialization.load_pem_public_key(pem.encode())
    assert isinstance(public, rsa.RSAPublicKey)
    eph = os.urandom(32) if ephemeral is None else ephemeral
    return b64(public.encrypt(eph, OAEP) + aes_key_wrap_with_padding(eph, target))


RSA_2048 = rsa.generate_private_key(public_exponent=65537, key_size=2048)
P256 = ec.generate_private_key(ec.SECP256R1())
P384 = ec.generate_private_key(ec.SECP384R1())
ED = ed25519.Ed25519PrivateKey.generate()
AES = os.urandom(32)
HMAC_KEY = os.urandom(40)
# Each step: name, path under transit/, and a body built from that server's wrapping key PEM.
Body = Callable[[str], dict[str, Any]]
STEPS: list[tuple[str, str, Body]] = [
    ("aes", "keys/d-aes/import", lambda pem: {"ciphertext": _wrap(pem, AES)}),
    ("aes again", "keys/d-aes/import", lambda pem: {"ciphertext": _wrap(pem, AES)}),
    ("aes derived", "keys/d-der/import", lambda pem: {"ciphertext": _wrap(pem, AES), "derived": True}),
    ("aes128 upper", "keys/d-128/import", lambda pem: {"ciphertext": _wrap(pem, AES[:16]), "type": "AES128-GCM96"}),
    ("wrong size", "keys/d-bad/import", lambda pem: {"ciphertext": _wrap(pem, AES[:16])}),
    ("hmac", "keys/d-hmac/import", lambda pem: {"ciphertext": _wrap(pem, HMAC_KEY), "type": "hmac"}),
    ("hmac small", "keys/d-bad/import", lambda pem: {"ciphertext": _wrap(pem, AES[:20]), "type": "hmac"}),
    ("unknown type", "keys/d-bad/import", lambda pem: {"ciphertext": _wrap(pem, AES), "type": "aes512"}),
    ("unknown hash", "keys/d-bad/import", lambda pem: {"ciphertext": _wrap(pem, AES), "hash_function": "md5"}),
    ("convergent", "keys/d-bad/import", lambda pem: {"ciphertext": _wrap(pem, AES), "convergent_encryption": True}),
    ("rotation", "keys/d-bad/import", lambda pem: {"ciphertext": _wrap(pem, AES), "auto_rotate_period": "3h"}),
    ("bad base64", "keys/d-bad/import", lambda pem: {"ciphertext": "@@@@"}),
    ("too short", "keys/d-bad/import", lambda pem: {"ciphertext": b64(os.urandom(512))}),
    ("oaep", "keys/d-bad/import", lambda pem: {"ciphertext": b64(os.urandom(520))}),
    ("eph size", "keys/d-bad/import", lambda pem: {"ciphertext": _wrap(pem, AES, os.urandom(16))}),
    ("kwp", "keys/d-bad/import", lambda pem: {"ciphertext": _wrap(pem, AES)[:-8] + "AAAAAAA="}),
    ("public for aes", "keys/d-bad/import", lambda pem: {"public_key": public_pem(P256)}),
    ("not pem", "keys/d-bad/import", lambda pem: {"public_key": "nope", "type": "ecdsa-p256"}),
    ("rsa as ec", "keys/d-bad/import", lambda pem: {"ciphertext": _wrap(pem, pkcs8(RSA_2048)), "type": "ecdsa-p256"}),
    ("rsa size", "keys/d-bad/import", lambda pem: {"ciphertext": _wrap(pem, pkcs8(RSA_2048)), "type": "rsa-4096"}),
    ("curve", "keys/d-bad/import", lambda pem: {"ciphertext": _wrap(pem, pkcs8(P384)), "type": "ecdsa-p256"}),
    ("pkcs1", "keys/d-bad/import", lambda pem: {"ciphertext": _wrap(pem, RSA_2048.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption())), "type": "rsa-2048"}),
    ("ed derived public", "keys/d-bad/import", lambda pem: {
        "public_key": public_pem(ED), "type": "ed25519", "derived": True}),
    ("rsa", "keys/d-rsa/import", lambda pem: {"ciphertext": _wrap(pem, pkcs8(RSA_2048)), "type": "rsa-2048"}),
    ("ec public", "keys/d-ec/import", lambda pem: {"public_key": public_pem(P256), "type": "ecdsa-p256"}),
    ("ec public twice", "keys/d-ec/import_version", lambda pem: {"public_key": public_pem(P256), "version": 1}),
    ("ec wrong private", "keys/d-ec/import_version", lambda pem: {
        "ciphertext": _wrap(pem, pkcs8(ec.generate_private_key(ec.SECP256R1()))), "version": 1}),
    ("ec no version", "keys/d-ec/import_version", lambda pem: {"ciphertext": _wrap(pem, pkcs8(P256)), "version": 9}),
    ("ec private", "keys/d-ec/import_version", lambda pem: {"ciphertext": _wrap(pem, pkcs8(P256)), "version": 1}),
    ("ec private again", "keys/d-ec/import_version", lambda pem: {"ciphertext": _wrap(pem, pkcs8(P256)), "version": 1}),
    ("ed public", "keys/d-ed/import", lambda pem: {"public_key": public_pem(ED), "type": "ed25519"}),
    ("ed completes latest", "keys/d-ed/import_version", lambda pem: {"ciphertext": _wrap(pem, pkcs8(ED))}),
    ("ed new version", "keys/d-ed/import_version", lambda pem: {"public_key": public_pem(ED)}),
    ("aes version", "keys/d-aes/import_version", lambda pem: {"ciphertext": _wrap(pem, AES[::-1])}),
    ("aes version n", "keys/d-aes/import_version", lambda pem: {"ciphertext": _wrap(pem, AES), "version": 1}),
    ("aes public", "keys/d-aes/import_version", lambda pem: {"public_key": "x"}),
    ("missing", "keys/d-none/import_version", lambda pem: {"ciphertext": _wrap(pem, AES)}),
]
READS = ["d-aes", "d-der", "d-128", "d-hmac", "d-rsa", "d-ec", "d-ed"]
_VOLATILE = {"creation_time", "keys"}


def _outcome(r: httpx.Response) -> tuple[str, str]:
    if r.status_code == 204:
        return ("ok", "")
    errors = r.json().get("errors") or [""]
    text = errors[0]
    # OpenBao's internal errors come wrapped by go-multierror.
    if text.startswith("1 error occurred:\n\t* "):
        text = text[len("1 error occurred:\n\t* "):].rstrip("\n")
    return ("error", text)


def _read(http: httpx.Client, name: str) -> dict[str, Any]:
    data: dict[str, Any] = http.get(f"/v1/transit/keys/{name}").json()["data"]
    keys = data.get("keys", {})
    data = {k: v for k, v in data.items() if k not in _VOLATILE}
    data["public_keys"] = {v: e.get("public_key") for v, e in keys.items()} if data["type"] in (
        "rsa-2048", "ecdsa-p256", "ed25519") else sorted(keys)
    return data


def test_imports_behave_as_in_openbao(tmp_path: Path) -> None:
    bao_binary()
    openbao = start_openbao_dev(tmp_path)
    ours = start_strongroom(["--dev", "--dev-root-token-id", "root", "--storage", "memory://"], tmp_path)
    ours.token = "root"
    try:
        with openbao.client() as theirs_http, ours.client() as ours_http:
            outcomes: dict[str, list[tuple[str, str]]] = {}
            for label, http in (("openbao", theirs_http), ("strongroom", ours_http)):
                assert http.post("/v1/sys/mounts/transit", json={"type": "transit"}).status_code in (200, 204)
                pem = http.get("/v1/transit/wrapping_key").json()["data"]["public_key"]
                results = []
                for _, path, body in STEPS:
                    r = http.post(f"/v1/transit/{path}", json=body(pem))
                    if label == "strongroom":
                        assert r.status_code in (204, 400), (path, r.status_code, r.text)
                    results.append(_outcome(r))
                outcomes[label] = results
            for (name, _, _), theirs, mine in zip(STEPS, outcomes["openbao"], outcomes["strongroom"], strict=True):
                assert mine == theirs, name
            for name in READS:
                assert _read(ours_http, name) == _read(theirs_http, name), name
    finally:
        ours.kill()
        openbao.kill()
