"""Fixtures for the client-command tests: real Vault-API servers and a ``strongroom`` runner.

Servers are described by :class:`tests.cli.targets.VaultTarget`, so the same tests can later be
parametrized to run against a strongroom server process as well as OpenBao.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tests.cli.targets import CliResult, Runner, VaultTarget, free_port, start_bao, stop


@pytest.fixture(scope="module")
def bao_dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VaultTarget]:
    """``bao server -dev``: in memory, unsealed, KV v2 at secret/, root token ``root``."""
    port = free_port()
    addr = f"http://127.0.0.1:{port}"
    log = tmp_path_factory.mktemp("bao-dev") / "bao.log"
    args = ["server", "-dev", "-dev-root-token-id=root", f"-dev-listen-address=127.0.0.1:{port}"]
    proc = start_bao(args, log, addr)
    try:
        yield VaultTarget(addr, "root")
    finally:
        stop(proc)


BAO_CONFIG = """
storage "pebbledb" {{
  path = "{data}"
}}
listener "tcp" {{
  address = "127.0.0.1:{port}"
  tls_disable = true
  disable_unauthed_rekey_endpoints = false
}}
disable_mlock = true
"""


@pytest.fixture
def bao_fresh(tmp_path: Path) -> Iterator[VaultTarget]:
    """A non-dev ``bao server``: uninitialised and sealed, on its own storage (one per test)."""
    port = free_port()
    addr = f"http://127.0.0.1:{port}"
    data = tmp_path / "data"
    data.mkdir()
    config = tmp_path / "bao.hcl"
    config.write_text(BAO_CONFIG.format(data=data, port=port))
    proc = start_bao(["server", f"-config={config}"], tmp_path / "bao.log", addr)
    try:
        yield VaultTarget(addr, "")
    finally:
        stop(proc)


@pytest.fixture
def dev_target(bao_dev: VaultTarget) -> VaultTarget:
    """The server the kv/token/policy tests drive: unsealed, KV v2 at secret/, a root token.

    Today that is OpenBao; parametrize this fixture to run the same tests against strongroom.
    """
    return bao_dev


@pytest.fixture
def fresh_target(bao_fresh: VaultTarget) -> VaultTarget:
    """The server the operator tests drive: uninitialised and sealed, one per test."""
    return bao_fresh


@pytest.fixture
def cli(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> Callable[[VaultTarget], Runner]:
    """``cli(target)(*argv, stdin=..., keys=[...])`` runs ``strongroom`` in-process against ``target``.

    The environment is cleaned of VAULT_*/STRONGROOM_* and HOME points at an empty directory, so no
    developer setting or ``~/.vault-token`` leaks in. ``keys`` feeds the no-echo prompt (getpass); a test
    sees the prompts it got in ``CliResult.prompts``.
    """
    from strongroom.cli.main import main

    for name in list(os.environ):
        if name.startswith(("VAULT_", "STRONGROOM_", "BAO_")) and name != "STRONGROOM_REQUIRE_ALL":
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))

    def bind(target: VaultTarget) -> Runner:
        def run(
            *argv: str, stdin: str = "", keys: list[str] | None = None, token: str | None = None
        ) -> CliResult:
            prompts: list[str] = []
            pending = list(keys or [])

            def fake_getpass(prompt: str = "") -> str:
                prompts.append(prompt)
                if not pending:
                    raise EOFError
                return pending.pop(0)

            monkeypatch.setenv("VAULT_ADDR", target.addr)
            tok = target.token if token is None else token
            if tok:
                monkeypatch.setenv("VAULT_TOKEN", tok)
            else:
                monkeypatch.delenv("VAULT_TOKEN", raising=False)
            monkeypatch.setattr("getpass.getpass", fake_getpass)
            monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
            capsys.readouterr()
            code = main(list(argv))
            captured = capsys.readouterr()
            return CliResult(code, captured.out, captured.err, prompts)

        return run

    return bind
