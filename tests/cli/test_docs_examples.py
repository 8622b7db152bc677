"""Every shell example in docs/cli.md runs against a real ``strongroom server``.

The ```sh blocks are read from the document, split into commands (``\\`` continuations joined, trailing
``# comments`` dropped, heredocs kept whole) and run in document order (plain ``strongroom`` commands
in-process, for speed; anything with shell syntax, or ``curl``, with bash): the status, kv, token
and policy examples against ``strongroom server --dev``; the operator examples against non-dev servers
(a new one before each ``operator init``, because init succeeds once). Placeholders such as ``<token>``
or ``<nonce>`` are filled from the server's state. A command fails the test if it exits non-zero, so an
example that stops working, or a new example that cannot run as written, is noticed.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.cli.targets import Runner, VaultTarget
from tests.support.gpg import gpg_home
from tests.support.server import ROOT, ServerProcess, start_strongroom

pytestmark = pytest.mark.slow

DOC = ROOT / "docs" / "cli.md"
VENV_BIN = Path(sys.executable).parent

# Lines that set up the reader's shell; the harness does the same through the environment.
SETUP = ("make run", "export VAULT_ADDR=", "export VAULT_TOKEN=")


def doc_commands(text: str) -> list[str]:
    """The commands of every ```sh block, in order."""
    commands: list[str] = []
    for block in re.findall(r"```sh\n(.*?)```", text, re.S):
        lines = block.replace("\\\n", " ").splitlines()
        i = 0
        while i < len(lines):
            line = lines[i]
            if "<<'EOF'" in line:  # a heredoc is one command, comments inside it included
                end = lines.index("EOF", i)
                commands.append("\n".join(lines[i : end + 1]) + "\n")
                i = end + 1
                continue
            line = re.sub(r"\s+#\s.*$", "", line).strip()
            if line and not line.startswith("#"):
                commands.append(line)
            i += 1
    return commands


# Commands without shell syntax run in-process (fast); the rest (pipes, redirects, heredocs, curl) in bash.
PLAIN = re.compile(r"^strongroom [^|<>;&$`'\"]*$")


@dataclass
class Shell:
    """Runs example commands against one server; keeps a transcript for failure messages."""

    cwd: Path
    addr: str
    token: str
    cli: Callable[[VaultTarget], Runner]
    transcript: list[str] = field(default_factory=list)

    def run(self, command: str, *, stdin: str = "", token: str | None = None) -> tuple[int, str]:
        """Run ``command``; return its exit code and stdout."""
        tok = self.token if token is None else token
        if PLAIN.match(command):
            # The hidden prompt gets the first stdin line, as a terminal user would type it.
            keys = [stdin.strip()] if stdin else None
            res = self.cli(VaultTarget(self.addr, tok))(*shlex.split(command)[1:], stdin=stdin, keys=keys)
            code, out, err = res.code, res.out, res.err
        else:
            env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "STRONGROOM_", "BAO_"))}
            env.update(
                PATH=f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
                HOME=str(self.cwd),
                VAULT_ADDR=self.addr,
                VAULT_TOKEN=tok,
            )
            done = subprocess.run(
                ["bash", "-c", command], cwd=self.cwd, env=env, input=stdin, capture_output=True, text=True,
                timeout=60, check=False,
            )  # fmt: skip
            code, out, err = done.returncode, done.stdout, done.stderr
        self.transcript.append(f"$ {command}\n{out}{err}[exit {code}]")
        return code, out

    def ok(self, command: str, *, stdin: str = "", token: str | None = None) -> str:
        """Run ``command`` and assert it exited 0; return its stdout."""
        code, out = self.run(command, stdin=stdin, token=token)
        assert code == 0, "\n".join(self.transcript[-3:])
        return out


def _api(server: ServerProcess, token: str, method: str, path: str, body: object = None) -> dict[str, object]:
    resp = httpx.request(method, f"{server.addr}/v1/{path}", headers={"X-Vault-Token": token}, json=body)
    assert resp.status_code < 300, resp.text
    return resp.json() if resp.content else {}


@pytest.fixture(scope="module")
def commands() -> list[str]:
    found = doc_commands(DOC.read_text())
    assert len(found) > 50, "the examples were not found: has the document's layout changed?"
    return found


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The files the examples name (cert.pem, config.json), in the directory they run in."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "cert.pem").write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    (tmp_path / "config.json").write_text('{"user": "admin", "port": 5432}')
    return tmp_path


@pytest.fixture
def dev(workdir: Path) -> Iterator[ServerProcess]:
    server = start_strongroom(["--dev", "--dev-root-token-id", "root", "--storage", "memory://"], workdir)
    server.token = "root"
    try:
        yield server
    finally:
        server.kill()


def test_dev_server_examples_run(
    commands: list[str], dev: ServerProcess, workdir: Path, cli: Callable[[VaultTarget], Runner]
) -> None:
    shell = Shell(workdir, dev.addr, "root", cli)
    ran = 0
    for command in commands:
        if command.startswith(SETUP) or command.startswith("strongroom operator"):
            continue
        token = None
        if command in ("strongroom token renew", "strongroom token revoke -self"):
            # Both act on the caller's own token: give them a renewable one, not root.
            token = str(_api(dev, "root", "POST", "auth/token/create", {"ttl": "1h"})["auth"]["client_token"])  # type: ignore[index]
        for placeholder in ("<token>", "<accessor>"):
            if placeholder in command:
                auth = _api(dev, "root", "POST", "auth/token/create", {"ttl": "1h"})["auth"]
                command = command.replace("<token>", auth["client_token"])  # type: ignore[index]
                command = command.replace("<accessor>", auth["accessor"])  # type: ignore[index]
        assert "<" not in command.replace("<<'EOF'", "").replace("< app.hcl", ""), command
        shell.ok(command, token=token)
        ran += 1
    assert ran > 40


class Ceremony:
    """The operator examples' state: the current non-dev server, its shares and root token."""

    def __init__(self, workdir: Path, cli: Callable[[VaultTarget], Runner]) -> None:
        self.workdir = workdir
        self.cli = cli
        self.server: ServerProcess | None = None
        self.keys: list[str] = []
        self.root = ""
        self.nonce = ""
        self.new_keys: list[str] = []
        self.verification_nonce = ""

    def fresh(self) -> Shell:
        self.stop()
        self.server = start_strongroom(["--storage", "memory://"], self.workdir)
        return self.shell()

    def shell(self) -> Shell:
        assert self.server is not None
        return Shell(self.workdir, self.server.addr, self.root, self.cli)

    def stop(self) -> None:
        if self.server is not None:
            self.server.kill()
        self.server, self.keys, self.root = None, [], ""

    def learn_init(self, out: str) -> None:
        """Take the shares and root token from ``operator init`` output (table or JSON)."""
        if out.lstrip().startswith("{"):
            body = json.loads(out)
            self.keys, self.root = body["unseal_keys_b64"], body["root_token"]
        else:
            self.keys = re.findall(r"^Unseal Key \d+: (\S+)$", out, re.M)
            match = re.search(r"^Initial Root Token: (\S+)$", out, re.M)
            assert match is not None, out
            self.root = match.group(1)

    def seal_with_progress(self) -> None:
        """Seal the server and submit one share, so there is unseal progress to discard."""
        assert self.server is not None
        httpx.put(f"{self.server.addr}/v1/sys/seal", headers={"X-Vault-Token": self.root}).raise_for_status()
        httpx.put(f"{self.server.addr}/v1/sys/unseal", json={"key": self.keys[0]}).raise_for_status()

    def ensure_unsealed(self, shell: Shell) -> None:
        """Examples after the unseal section assume an unsealed server (the seal example seals it)."""
        assert self.server is not None
        status = httpx.get(f"{self.server.addr}/v1/sys/seal-status").json()
        for key in self.keys[: status["t"]] if status["sealed"] else []:
            httpx.put(f"{self.server.addr}/v1/sys/unseal", json={"key": key}).raise_for_status()
        shell.token = self.root


def test_operator_examples_run(
    commands: list[str], workdir: Path, cli: Callable[[VaultTarget], Runner]
) -> None:
    with gpg_home() as gpg:
        for name, armor in (("alice.asc", True), ("bob.gpg", False), ("ops.asc", True)):
            key = gpg.generate(f"{name}@example.invalid")
            data = gpg.run("--armor", "--export", key.fingerprint) if armor else key.binary
            (workdir / name).write_bytes(data)
    state = Ceremony(workdir, cli)
    try:
        _run_operator_examples(state, [c for c in commands if c.startswith("strongroom operator")])
    finally:
        state.stop()


def _run_operator_examples(state: Ceremony, commands: list[str]) -> None:
    shell: Shell | None = None
    unsealed_by_examples = 0
    for command in commands:
        if command.startswith("strongroom operator init") and "-status" not in command:
            shell = state.fresh()
            out = shell.ok(command)
            if "-pgp-keys" not in command:  # PGP-encrypted shares are checked in test_operator.py
                state.learn_init(out)
            continue
        assert shell is not None and state.keys, f"{command} comes before any operator init"
        if command.startswith("strongroom operator unseal") and "-reset" not in command:
            key = state.keys[unsealed_by_examples]
            unsealed_by_examples += 1
            if command.endswith(" -") or command == "strongroom operator unseal":  # stdin / hidden prompt
                shell.ok(command, stdin=key + "\n")
            else:
                shell.ok(command.replace("<key>", key))
            continue
        if command == "strongroom operator unseal -reset":
            # Only meaningful while sealed with some progress (an unsealed server answers 400, as Vault).
            state.seal_with_progress()
            assert re.search(r"^Unseal Progress\s+0/", shell.ok(command), re.M)
            continue
        state.ensure_unsealed(shell)
        _rekey_step(state, shell, command)


def _rekey_step(state: Ceremony, shell: Shell, command: str) -> None:
    """Run one seal/rotate/rekey example, filling in nonces and shares; repeat "until" steps."""
    if "<old share>" in command:  # "... until the new shares are printed"
        for key in state.keys:
            out = shell.ok(command.replace("<nonce>", state.nonce).replace("<old share>", key))
            if "Key 1:" in out:
                state.new_keys = re.findall(r"^Key \d+: (\S+)$", out, re.M)
                match = re.search(r"^Verification Nonce: (\S+)$", out, re.M)
                assert match is not None, out
                state.verification_nonce = match.group(1)
                return
        raise AssertionError("no new shares were printed")
    if "<NEW share>" in command:  # "a quorum of new shares"
        for key in state.new_keys:
            step = command.replace("<verification nonce>", state.verification_nonce)
            if "successful" in shell.ok(step.replace("<NEW share>", key)):
                state.keys = state.new_keys
                return
        raise AssertionError("verification never completed")
    if "<share>" in command:
        command = command.replace("<nonce>", state.nonce).replace("<share>", state.keys[1])
    if command == "strongroom operator rekey":  # prompted: the nonce is read from the status
        out = shell.ok(command, stdin=state.keys[0] + "\n")
    else:
        assert "<" not in command, command
        out = shell.ok(command)
    match = re.search(r"^Nonce\s+(\S+)$", out, re.M)
    if "-init" in command and match:
        state.nonce = match.group(1)
    if "-verify -cancel" in command:  # a restarted verification has a new nonce
        status = shell.ok("strongroom operator rekey -verify -format=json -status")
        state.verification_nonce = json.loads(status)["nonce"]
