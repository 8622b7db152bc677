"""``strongroom token attenuate`` / ``token inspect``: in process, as the real console script, and fetching
the public key over real HTTP from a stand-in for ``GET /v1/sys/iam/public-key``."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from strongroom.auth.iam import IamKey, IamVerifier, InMemoryRevocationList, issue_token, public_key_document
from strongroom.cli.app import run
from strongroom.errors import PermissionDenied
from tests.auth.iam.conftest import KV2, TOKEN, request

SCRIPT = Path(sys.executable).with_name("strongroom")


def cli(*argv: str, stdin: str = "", env: dict[str, str] | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run(list(argv), environ=env or {}, stdin=io.StringIO(stdin), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def live() -> tuple[IamKey, str, IamVerifier]:
    """A user token issued now (the CLI's --ttl is relative to the real clock)."""
    key = IamKey.generate(3)
    token = issue_token(key, tenant="acme", role="user", ttl=3600, now=time.time())
    return key, token, IamVerifier([key.public_key], InMemoryRevocationList())


def allowed(verifier: IamVerifier, token: str, resource: str, operation: str, now: float | None = None) -> bool:
    mount = TOKEN if resource.startswith("auth/") else KV2
    try:
        verifier.authorize(token, request(resource, operation, mount, now=now or time.time()))
    except PermissionDenied:
        return False
    return True


def test_attenuate_with_flags(live: tuple[IamKey, str, IamVerifier]) -> None:
    key, token, verifier = live
    code, out, err = cli(
        "token", "attenuate", "--token", token, "--public-key", key.public_key.to_text(),
        "--path", "secret/data/app/", "--path", "secret/metadata/app/", "--operation", "read,list", "--ttl", "10m",
    )
    assert (code, err) == (0, "")
    narrowed = out.strip()
    assert narrowed.startswith("sb.") and narrowed != token and out.count("\n") == 1
    assert allowed(verifier, narrowed, "secret/data/app/db", "read")
    assert allowed(verifier, narrowed, "secret/metadata/app/", "list")
    assert not allowed(verifier, narrowed, "secret/data/app/db", "update")
    assert not allowed(verifier, narrowed, "secret/data/other", "read")
    assert allowed(verifier, narrowed, "auth/token/lookup-self", "read")
    assert not allowed(verifier, narrowed, "secret/data/app/db", "read", now=time.time() + 601)
    assert allowed(verifier, token, "secret/data/app/db", "read", now=time.time() + 601)


def test_attenuate_reads_the_token_from_stdin_and_prints_json(live: tuple[IamKey, str, IamVerifier]) -> None:
    key, token, verifier = live
    code, out, _ = cli("token", "attenuate", "-public-key=" + key.public_key.to_text(), "-operation=read",
                       "-format=json", stdin=token + "\n")
    assert code == 0
    narrowed = json.loads(out)["token"]
    assert allowed(verifier, narrowed, "secret/data/x", "read") and not allowed(verifier, narrowed, "secret/data/x", "delete")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--operation", "frobnicate"], "unknown operation"),
        (["--ttl", "soon"], "invalid duration"),
        (["--ttl", "0s"], "positive duration"),
        (["--path", "/secret/"], "leading '/'"),
        (["--public-key", "ed25519/00"], "32 bytes"),
    ],
)
def test_attenuate_usage_errors(live: tuple[IamKey, str, IamVerifier], args: list[str], message: str) -> None:
    key, token, _ = live
    base = ["token", "attenuate", "--token", token]
    if "--public-key" not in args:
        base += ["--public-key", key.public_key.to_text()]
    code, out, err = cli(*base, *args)
    assert (code, out) == (1, "") and message in err
    assert token[3:30] not in err  # the token is never echoed in an error


def test_attenuate_refuses_a_token_from_another_issuer(live: tuple[IamKey, str, IamVerifier]) -> None:
    _, token, _ = live
    code, out, err = cli("token", "attenuate", "--token", token, "--public-key", IamKey.generate(3).public_key.to_text())
    assert (code, out) == (1, "") and "verifies with this public key" in err
    code, _, err = cli("token", "attenuate", "--public-key", IamKey.generate(3).public_key.to_text(), stdin="\n")
    assert code == 1 and "No token given" in err


class _PublicKeyHandler(BaseHTTPRequestHandler):
    document: dict[str, object] = {}
    seen: list[str] = []

    def do_GET(self) -> None:
        self.seen.append(self.path)
        body = json.dumps({"data": self.document}).encode()
        status = 200 if self.path == "/v1/sys/iam/public-key" else 404
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def key_server() -> Iterator[tuple[str, type[_PublicKeyHandler]]]:
    handler = type("Handler", (_PublicKeyHandler,), {"document": {}, "seen": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_attenuate_fetches_the_public_key_for_the_tokens_key_id(
    live: tuple[IamKey, str, IamVerifier], key_server: tuple[str, type[_PublicKeyHandler]]
) -> None:
    key, token, verifier = live
    address, handler = key_server
    newer = IamKey.generate(4).public_key
    handler.document = public_key_document(newer, [key.public_key, newer])  # the token is from key id 3
    code, out, err = cli("token", "attenuate", "--token", token, "--operation", "read", env={"VAULT_ADDR": address})
    assert (code, err) == (0, ""), err
    assert handler.seen == ["/v1/sys/iam/public-key"]
    assert allowed(verifier, out.strip(), "secret/data/x", "read")
    assert not allowed(verifier, out.strip(), "secret/data/x", "update")


def test_attenuate_reports_a_missing_key(
    live: tuple[IamKey, str, IamVerifier], key_server: tuple[str, type[_PublicKeyHandler]]
) -> None:
    _, token, _ = live
    address, handler = key_server
    handler.document = {"keys": {}}
    code, _, err = cli("token", "attenuate", "--token", token, "--address", address)
    assert code == 2 and "no IAM public key for key id 3" in err


def test_inspect(live: tuple[IamKey, str, IamVerifier]) -> None:
    _, token, _ = live
    code, out, _ = cli("token", "inspect", token)
    assert code == 0 and "NOT verified" in out and 'tenant("acme");' in out and 'role("user");' in out
    code, out, _ = cli("token", "inspect", "-format=json", stdin=token)
    shown = json.loads(out)
    assert code == 0 and shown["root_key_id"] == 3 and len(shown["blocks"]) == 1
    code, _, err = cli("token", "inspect", "sb.garbage")
    assert code == 1 and "not a strongroom biscuit token" in err


@pytest.mark.skipif(not SCRIPT.exists(), reason="the strongroom console script is not installed in this venv")
def test_console_script(live: tuple[IamKey, str, IamVerifier]) -> None:
    """The installed ``strongroom`` command, token on standard input, as a user would run it."""
    key, token, verifier = live
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "STRONGROOM_"))}
    proc = subprocess.run(
        [str(SCRIPT), "token", "attenuate", "--public-key", key.public_key.to_text(), "--path", "secret/data/app/",
         "--ttl", "1h"],
        input=token, capture_output=True, text=True, env=env, timeout=60, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    narrowed = proc.stdout.strip()
    assert allowed(verifier, narrowed, "secret/data/app/x", "update")
    assert not allowed(verifier, narrowed, "secret/data/x", "read")
