"""Every ```sh example of docs/tenants.md runs, in document order, as one bash script: the offline platform
ceremony with real gpg keys, a real ``strongroom server`` started by the document itself, the real ``bao``
CLI, the ``strongroom`` CLI and hvac.

As in tests/compat/test_namespaces_docs.py: ``set -e``; a line ``! command`` must fail. The harness only
(1) gives the custodians' keys (alice and bob) to gpg through ``GNUPGHOME`` — in real life each custodian
holds only their own secret key — (2) replaces the document's address ``127.0.0.1:8200`` by a free port and
(3) turns the document's ``strongroom server ... &`` line into the same command with its PID recorded and a
wait until it answers; the server is stopped by that PID afterwards.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
from pathlib import Path

import pytest

from tests.support.gpg import gpg_home
from tests.support.server import ROOT, VENV_BIN, bao_binary, free_port

pytestmark = pytest.mark.slow

DOC = ROOT / "docs" / "tenants.md"
DOC_ADDRESS = "127.0.0.1:8200"


def doc_script(text: str, port: int) -> str:
    """The document's ```sh blocks as one bash script (negative examples turned into checks)."""
    lines = ["set -euo pipefail"]
    for block in re.findall(r"```sh\n(.*?)```", text, re.S):
        for line in block.replace(DOC_ADDRESS, f"127.0.0.1:{port}").splitlines():
            if line.startswith("strongroom server ") and line.rstrip().endswith("&"):
                line = (
                    f"{line.rstrip()[:-1].rstrip()} > strongroom-server.log 2>&1 & echo $! > server.pid; "
                    f"for i in $(seq 300); do curl -s -o /dev/null http://127.0.0.1:{port}/v1/sys/seal-status "
                    "&& break; sleep 0.1; done"
                )
            elif line.startswith("! "):
                command = re.sub(r"\s+#\s.*$", "", line[2:])
                line = f"if {command}; then echo 'unexpected success: {command}' >&2; exit 1; fi"
            lines.append(line)
    return "\n".join(lines) + "\n"


def test_the_server_line_is_rewritten() -> None:
    script = doc_script("```sh\nstrongroom server --listen 127.0.0.1:8200 &\n! false   # no\n```\n", 9999)
    assert "--listen 127.0.0.1:9999 > strongroom-server.log 2>&1 & echo $! > server.pid" in script
    assert "if false; then" in script


def test_tenants_doc_examples_run(tmp_path: Path) -> None:
    bao = bao_binary()
    port = free_port()
    with gpg_home() as gpg:
        gpg.generate("Alice <alice@example.com>")
        gpg.generate("Bob <bob@example.com>")
        env = {
            "PATH": f"{Path(bao).parent}:{VENV_BIN}:{os.environ.get('PATH', '')}",
            "HOME": str(tmp_path),
            "GNUPGHOME": gpg.home,
        }
        script = doc_script(DOC.read_text(), port)
        try:
            result = subprocess.run(
                ["bash", "-x", "-c", script],
                cwd=tmp_path,
                env=env,
                capture_output=True,
                text=True,
                timeout=600,
                check=False,
            )
        finally:
            pid_file = tmp_path / "server.pid"
            if pid_file.exists():
                pid = int(pid_file.read_text().strip())
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
        log = tmp_path / "strongroom-server.log"
        assert result.returncode == 0, (
            f"exit {result.returncode}\nstderr (tail):\n{result.stderr[-4000:]}\nstdout (tail):\n{result.stdout[-1500:]}"
            f"\nserver log tail:\n{log.read_text(errors='replace')[-1500:] if log.exists() else ''}"
        )
        assert "unexpected success" not in result.stderr
        assert "False" in result.stdout and "aGVsbG8=" in result.stdout  # the hvac examples' output
