"""Fixtures for the client-command tests: real Vault-API servers and a ``strongroom`` runner.

Servers are described by :class:`tests.cli.targets.VaultTarget`; ``dev_target`` and ``fresh_target`` are
parametrized over :data:`SERVER_KINDS`, so every client-command test runs against OpenBao (the oracle) and
against a strongroom server process. ``target.kind`` says which, for the few documented differences.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.cli.targets import CliResult, Runner, VaultTarget, free_port, start_bao, stop
from tests.support.server import start_strongroom

SERVER_KINDS = ("openbao", "strongroom")
"""Every client-command test runs against each of these; the test id names the server (``[strongroom]``)."""


def _start_bao_dev(workdir: Path) -> tuple[VaultTarget, Callable[[], None]]:
    """``bao server -dev``: in memory, unsealed, KV v2 at secret/, root token ``root``."""
    port = free_port()
    addr = f"http://127.0.0.1:{port}"
    args = ["server", "-dev", "-dev-root-token-id=root", f"-dev-listen-address=127.0.0.1:{port}"]
    proc = start_bao(args, workdir / "bao.log", addr)
    return VaultTarget(addr, "root", "openbao"), lambda: stop(proc)


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


def _start_bao_fresh(workdir: Path) -> tuple[VaultTarget, Callable[[], None]]:
    """A non-dev ``bao server``: uninitialised and sealed, on its own pebbledb storage."""
    port = free_port()
    addr = f"http://127.0.0.1:{port}"
    data = workdir / "data"
    data.mkdir()
    config = workdir / "bao.hcl"
    config.write_text(BAO_CONFIG.format(data=data, port=port))
    proc = start_bao(["server", f"-config={config}"], workdir / "bao.log", addr)
    return VaultTarget(addr, "", "openbao"), lambda: stop(proc)


def _start_strongroom(args: list[str], workdir: Path, token: str) -> tuple[VaultTarget, Callable[[], None]]:
    """A ``strongroom server`` process on in-memory storage (it needs no external binary, so never skips)."""
    server = start_strongroom([*args, "--storage", "memory://"], workdir)
    return VaultTarget(server.addr, token, "strongroom"), server.kill


def _start(kind: str, dev: bool, workdir: Path) -> tuple[VaultTarget, Callable[[], None]]:
    if kind == "openbao":
        return _start_bao_dev(workdir) if dev else _start_bao_fresh(workdir)
    if dev:
        return _start_strongroom(["--dev", "--dev-root-token-id", "root"], workdir, "root")
    return _start_strongroom([], workdir, "")


@pytest.fixture(scope="module", params=SERVER_KINDS)
def dev_target(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[VaultTarget]:
    """The server the kv/token/policy tests drive: unsealed, KV v2 at secret/, root token ``root``.

    One server per module and kind (tests use fresh secret and policy names, so they cannot couple), which
    keeps the whole directory well under a minute.
    """
    kind: str = request.param
    target, stop_it = _start(kind, True, tmp_path_factory.mktemp(f"{kind}-dev"))
    try:
        yield target
    finally:
        stop_it()


@pytest.fixture(params=SERVER_KINDS)
def fresh_target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[VaultTarget]:
    """The server the operator tests drive: uninitialised and sealed, one per test (init is once only)."""
    kind: str = request.param
    target, stop_it = _start(kind, False, tmp_path)
    try:
        yield target
    finally:
        stop_it()


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
