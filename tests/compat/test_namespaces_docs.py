"""Every ```sh example of docs/namespaces.md runs, in document order, as one bash script against a real
``strongroom server --dev`` with the real ``bao`` CLI.

The script stops at the first failing command (``set -e``). A line ``! command`` in the document is an
example that must fail: it is run as ``if command; then exit 1; fi``. The reader's setup lines
(``export BAO_ADDR=...``) are replaced by the test's own environment.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.support.server import ROOT, VENV_BIN, bao_binary, start_strongroom

pytestmark = pytest.mark.slow

DOC = ROOT / "docs" / "namespaces.md"


def doc_script(text: str) -> str:
    """The document's ```sh blocks as one bash script (negative examples turned into checks)."""
    lines = ["set -euo pipefail"]
    for block in re.findall(r"```sh\n(.*?)```", text, re.S):
        for line in block.splitlines():
            if line.startswith("export BAO_ADDR"):
                continue
            if line.startswith("! "):
                command = re.sub(r"\s+#\s.*$", "", line[2:])
                line = f"if {command}; then echo 'unexpected success: {command}' >&2; exit 1; fi"
            lines.append(line)
    return "\n".join(lines) + "\n"


def test_negative_lines_are_checked() -> None:
    script = doc_script("```sh\n! false   # must fail\ntrue\n```\n")
    assert "if false; then" in script


def test_namespaces_doc_examples_run(tmp_path: Path) -> None:
    bao = bao_binary()
    server = start_strongroom(["--dev", "--dev-root-token-id", "root", "--storage", "memory://"], tmp_path)
    try:
        env = {
            "PATH": f"{Path(bao).parent}:{VENV_BIN}:{os.environ.get('PATH', '')}",
            "HOME": str(tmp_path),
            "BAO_ADDR": server.addr,
            "BAO_TOKEN": "root",
        }
        script = doc_script(DOC.read_text())
        result = subprocess.run(
            ["bash", "-x", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False
        )
        assert result.returncode == 0, (
            f"exit {result.returncode}\nstderr (tail):\n{result.stderr[-4000:]}\nstdout (tail):\n{result.stdout[-1500:]}"
            f"\nserver log tail:\n{server.log()[-1500:]}"
        )
        assert "unexpected success" not in result.stderr
    finally:
        server.kill()
