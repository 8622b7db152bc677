"""``strongroom server`` with TLS and with a Vault-style config file, as real processes."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.support.server import ServerProcess, free_port, start_strongroom


def _self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "strongroom test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


def _ctx(cert: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(cert))


def _wait_tls(addr: str, cert: Path, server: ServerProcess) -> None:
    import time

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(addr + "/v1/sys/health", verify=_ctx(cert), timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.05)
    raise AssertionError(server.log())


def test_https_with_tls_cert_and_key(tmp_path: Path) -> None:
    import subprocess
    import sys

    cert, key = _self_signed(tmp_path)
    port = free_port()
    addr = f"https://127.0.0.1:{port}"
    log = tmp_path / "server.log"
    exe = str(Path(sys.executable).parent / "strongroom")
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [exe, "server", "--dev", "--dev-root-token-id", "root", "--storage", "memory://",
             "--listen", f"127.0.0.1:{port}", "--tls-cert", str(cert), "--tls-key", str(key)],
            stdout=out, stderr=subprocess.STDOUT, cwd=tmp_path,
        )
    server = ServerProcess(proc, addr, log)
    try:
        _wait_tls(addr, cert, server)
        r = httpx.get(addr + "/v1/secret/metadata/", headers={"X-Vault-Token": "root"},
                      params={"list": "true"}, verify=_ctx(cert))
        assert r.status_code == 404  # nothing stored yet, but served over verified TLS
        r = httpx.post(addr + "/v1/secret/data/x", headers={"X-Vault-Token": "root"},
                       json={"data": {"a": "b"}}, verify=_ctx(cert))
        assert r.status_code == 200
        with pytest.raises(httpx.ConnectError):
            httpx.get(addr + "/v1/sys/health", timeout=2)  # an unknown CA is refused by the client
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{port}/v1/sys/health", timeout=2)  # no plain HTTP on that port
    finally:
        server.kill()


def test_vault_style_config_file(tmp_path: Path) -> None:
    port = free_port()
    config = tmp_path / "strongroom.hcl"
    config.write_text(
        f'storage "sqlite" {{\n  path = "{tmp_path / "data" / "store.db"}"\n}}\n'
        f'listener "tcp" {{\n  address = "127.0.0.1:{port}"\n  tls_disable = true\n  max_request_size = 4096\n}}\n'
        'api_addr = "http://127.0.0.1"\nui = false\n'
    )
    # Flags override the file: --listen wins over the listener address.
    other = free_port()
    server = start_strongroom(["--config", str(config)], tmp_path, port=other)
    try:
        status = httpx.get(server.addr + "/v1/sys/seal-status").json()
        assert status["initialized"] is False
        assert status["storage_type"] == "sqlite"
        assert (tmp_path / "data" / "store.db").exists()
        r = httpx.put(server.addr + "/v1/sys/init", content=b'{"secret_shares":1,"secret_threshold":1,"pad":"'
                      + b"x" * 5000 + b'"}')
        assert r.status_code == 413  # max_request_size from the listener block
        r = httpx.put(server.addr + "/v1/sys/init", json={"secret_shares": 1, "secret_threshold": 1})
        assert r.status_code == 200
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://127.0.0.1:{port}/v1/sys/health", timeout=1)
    finally:
        server.kill()


def test_plain_http_beyond_loopback_needs_an_explicit_choice(tmp_path: Path) -> None:
    import subprocess
    import sys

    exe = str(Path(sys.executable).parent / "strongroom")
    result = subprocess.run(
        [exe, "server", "--storage", "memory://", "--listen", f"0.0.0.0:{free_port()}"],
        capture_output=True, text=True, timeout=30, cwd=tmp_path, check=False,
    )
    assert result.returncode == 1
    assert "refusing to serve plain HTTP" in result.stderr
