"""Helpers for crypto tests that drive real external tools: the OpenBao server and GnuPG.

Run as a script to regenerate ``vectors/shamir_openbao.json`` from a fresh OpenBao:
``.venv/bin/python -m tests.crypto.crypto_tools`` from the project root.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.support.require import require_binary

VECTORS = Path(__file__).parent / "vectors"


def bao_path() -> str:
    """The ``bao`` wrapper next to the running interpreter (it execs the real binary, keeping the PID).

    Skips the test if absent, or fails it under STRONGROOM_REQUIRE_ALL=1.
    """
    return require_binary("bao", str(Path(sys.executable).parent / "bao"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def running_bao(bao: str, workdir: Path) -> Iterator[httpx.Client]:
    """Start a non-dev OpenBao on a free port with pebbledb storage in ``workdir``; yield a client for it.

    The server is stopped by its PID in ``finally``, whatever the test did.
    """
    port = _free_port()
    config = workdir / "bao.hcl"
    config.write_text(
        f'storage "pebbledb" {{\n  path = "{workdir / "data"}"\n}}\n'
        f'listener "tcp" {{\n  address = "127.0.0.1:{port}"\n  tls_disable = true\n}}\n'
        "disable_mlock = true\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BAO_", "VAULT_"))}
    with open(workdir / "bao.log", "wb") as log:
        process = subprocess.Popen(
            [bao, "server", f"-config={config}"], stdout=log, stderr=subprocess.STDOUT, env=env
        )
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10)
    try:
        deadline = time.monotonic() + 30
        while True:
            # Polling a child process until it listens; no test logic depends on elapsed time.
            if process.poll() is not None:
                raise RuntimeError(f"bao exited early: {(workdir / 'bao.log').read_text()[-2000:]}")
            try:
                if client.get("/v1/sys/seal-status").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("bao did not start within 30 s")
            time.sleep(0.05)
        yield client
    finally:
        client.close()
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _regenerate_openbao_vectors() -> None:
    """Initialise a fresh OpenBao 5-of-3 and record its unseal keys and the key they combine to."""
    from strongroom.crypto.shamir import combine, split

    bao = str(Path(sys.executable).parent / "bao")
    version = subprocess.run([bao, "version"], capture_output=True, text=True, check=True).stdout.strip()
    with tempfile.TemporaryDirectory() as tmp, running_bao(bao, Path(tmp)) as client:
        response = client.put("/v1/sys/init", json={"secret_shares": 5, "secret_threshold": 3})
        response.raise_for_status()
        keys = response.json()["keys"]
        combined = combine([bytes.fromhex(k) for k in keys[:3]])
        # Certify the recorded key before writing it: OpenBao must unseal with fresh shares of it.
        for share in split(combined, 3, 3):
            status = client.put("/v1/sys/unseal", json={"key": share.hex()}).json()
        if status["sealed"]:
            raise RuntimeError("OpenBao did not unseal with shares of the combined key")
    document = {
        "description": "Unseal keys from PUT /v1/sys/init {secret_shares: 5, secret_threshold: 3} on a real "
        "OpenBao, and the root key any 3 of them combine to (computed with strongroom's combine and "
        "certified at generation time by unsealing that OpenBao with 3 fresh shares of it made by "
        "strongroom's split).",
        "source": version,
        "secret_shares": 5,
        "secret_threshold": 3,
        "keys_hex": keys,
        "combined_key_hex": combined.hex(),
    }
    (VECTORS / "shamir_openbao.json").write_text(json.dumps(document, indent=2) + "\n")


if __name__ == "__main__":
    _regenerate_openbao_vectors()
