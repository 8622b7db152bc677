"""Unit tests of the client plumbing: settings resolution, argv normalisation, output, PGP key files."""

from __future__ import annotations

import base64
import errno
import io
import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from strongroom.cli.app import build_parser, run
from strongroom.cli.base import UsageError, normalise_argv
from strongroom.cli.client import ApiError, ClientError, ClientSettings, VaultClient
from strongroom.cli.operator import read_pgp_key
from strongroom.cli.output import go_value, human_duration, pad_equal_signs, render_table
from tests.support.require import missing


def test_settings_precedence(tmp_path: Path) -> None:
    helper = tmp_path / ".vault-token"
    helper.write_text("from-helper\n")
    env = {"VAULT_ADDR": "http://vault:1", "STRONGROOM_ADDR": "http://sr:2", "VAULT_TOKEN": "vt"}
    s = ClientSettings.from_env(env, token_file=helper)
    assert (s.address, s.token) == ("http://sr:2", "vt")
    s = ClientSettings.from_env({**env, "STRONGROOM_TOKEN": "st"}, address="http://flag:3", token_file=helper)
    assert (s.address, s.token) == ("http://flag:3", "st")
    s = ClientSettings.from_env({}, token_file=helper)
    assert (s.address, s.token) == ("http://127.0.0.1:8200", "from-helper")
    assert ClientSettings.from_env({}, token_file=tmp_path / "none").token is None
    assert "vt" not in repr(ClientSettings.from_env(env, token_file=helper))


def test_settings_tls_and_namespace() -> None:
    s = ClientSettings.from_env(
        {"VAULT_SKIP_VERIFY": "true", "VAULT_NAMESPACE": "team/a", "VAULT_CACERT": "/c"}
    )
    assert (s.skip_verify, s.namespace, s.ca_cert) == (True, "team/a", "/c")
    assert ClientSettings.from_env({"STRONGROOM_SKIP_VERIFY": "0"}).skip_verify is False
    with pytest.raises(ClientError, match="invalid boolean"):
        ClientSettings.from_env({"VAULT_SKIP_VERIFY": "yes please"})


def test_client_sends_vault_headers() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path == "/v1/bad":
            return httpx.Response(400, json={"errors": ["one", "two"]})
        if request.url.path == "/v1/html":
            return httpx.Response(502, text="<html>bad gateway</html>")
        return httpx.Response(200, json={"data": {"ok": True}})

    client = VaultClient(ClientSettings(address="http://x:1/", token="tok", namespace="ns1"))
    client._http = httpx.Client(transport=httpx.MockTransport(handler), headers=client._http.headers)
    assert client.read("sys/thing") == {"data": {"ok": True}}
    assert seen[0].headers["X-Vault-Request"] == "true"
    assert seen[0].headers["X-Vault-Token"] == "tok"
    assert seen[0].headers["X-Vault-Namespace"] == "ns1/"
    assert str(seen[0].url) == "http://x:1/v1/sys/thing"
    client.list("secret/metadata")
    assert seen[1].url.params["list"] == "true"
    client.json("GET", "sys/seal-status", authenticate=False)
    assert "X-Vault-Token" not in seen[2].headers

    with pytest.raises(ApiError) as info:
        client.write("bad", {"a": 1})
    assert str(info.value) == (
        "Error making API request.\n\nURL: PUT http://x:1/v1/bad\nCode: 400. Errors:\n\n* one\n* two"
    )
    with pytest.raises(ApiError) as raw:
        client.read("html")
    assert "Code: 502. Raw Message:\n\n<html>bad gateway</html>" in str(raw.value)
    with pytest.raises(ClientError):
        VaultClient(ClientSettings(address="ftp://x"))


def test_normalise_argv_accepts_go_style_flags() -> None:
    parser = build_parser()
    argv = ["kv", "get", "-format=json", "-mount", "secret", "-", "-5", "--", "-format=x"]
    assert normalise_argv(parser, argv) == [
        "kv", "get", "--format=json", "--mount", "secret", "-", "-5", "--", "-format=x",
    ]  # fmt: skip
    assert normalise_argv(parser, ["token", "create", "-orphan=false", "-no-default-policy=true"]) == [
        "token", "create", "--no-orphan", "--no-default-policy",
    ]  # fmt: skip
    with pytest.raises(UsageError):
        normalise_argv(parser, ["token", "create", "-orphan=perhaps"])
    args = parser.parse_args(
        normalise_argv(parser, ["token", "create", "-no-default-policy", "-renewable=false"])
    )
    assert (args.no_default_policy, args.renewable) == (True, False)


def test_usage_errors_exit_1_and_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["kv", "get", "-nope", "x"], environ={}) == 1
    assert "unrecognized arguments" in capsys.readouterr().err
    assert run(["kv"], environ={}) == 1
    assert run(["--format=yaml", "status"], environ={}) == 1
    assert run(["status", "--format", "yaml"], environ={}) == 1
    assert run(["kv", "get", "-h"], environ={}) == 0
    assert "--mount" in capsys.readouterr().out


def test_human_duration_matches_vault() -> None:
    assert [human_duration(s) for s in (0, 30, 90, 3600, 3660, 2764800, 3601, "45")] == [
        "0s", "30s", "1m30s", "1h", "1h1m", "768h", "1h0m1s", "45s",
    ]  # fmt: skip


def test_go_values_and_tables() -> None:
    assert go_value(None) == "<nil>"
    assert go_value([1, "a", True]) == "[1 a true]"
    assert go_value({"b": 1, "a": {"x": None}}) == "map[a:map[x:<nil>] b:1]"
    assert render_table([("a", "1"), ("long_key", "2")]).splitlines() == [
        "Key         Value",
        "---         -----",
        "a           1",
        "long_key    2",
    ]
    assert pad_equal_signs("Secret Path", len("secret/data/foo")) == "= Secret Path ="
    assert pad_equal_signs("Data", 10) == "== Data =="


ARMORED_BODY = base64.b64encode(b"\x99\x01\x0dfake-public-key-packet").decode()


def test_read_pgp_key_forms(tmp_path: Path) -> None:
    binary = tmp_path / "k.gpg"
    binary.write_bytes(b"\x99\x01\x0dfake-public-key-packet")
    armored = tmp_path / "k.asc"
    armored.write_text(
        "-----BEGIN PGP PUBLIC KEY BLOCK-----\nComment: test\n\n"
        f"{ARMORED_BODY[:20]}\n{ARMORED_BODY[20:]}\n=abcd\n-----END PGP PUBLIC KEY BLOCK-----\n"
    )
    b64 = tmp_path / "k.b64"
    b64.write_text(ARMORED_BODY + "\n")
    assert read_pgp_key(str(binary)) == ARMORED_BODY
    assert read_pgp_key(str(armored)) == ARMORED_BODY
    assert read_pgp_key(str(b64)) == ARMORED_BODY
    with pytest.raises(UsageError, match="keybase"):
        read_pgp_key("keybase:jefferai")


def test_json_output_is_valid(capsys: pytest.CaptureFixture[str]) -> None:
    from strongroom.cli.output import Output, envelope_json

    Output("json").json(
        envelope_json({"request_id": "r", "data": {"a": "é"}, "wrap_info": None, "auth": None})
    )
    assert json.loads(capsys.readouterr().out) == {"request_id": "r", "data": {"a": "é"}}


class _FailingStream(io.StringIO):
    """A stdout whose writes fail like a closed pipe or a full disk."""

    def __init__(self, exc: OSError) -> None:
        super().__init__()
        self.exc = exc

    def write(self, text: str) -> int:
        raise self.exc


POLICY_TEXT = 'path "a" {\n  capabilities = ["read"]\n}\n'


def test_output_errors_are_one_line_not_tracebacks(tmp_path: Path) -> None:
    policy = tmp_path / "p.hcl"
    policy.write_text(POLICY_TEXT)
    err = io.StringIO()
    gone = _FailingStream(BrokenPipeError(errno.EPIPE, "Broken pipe"))
    # `strongroom ... | head`: the reader left; exit 1 quietly, as a Go CLI dies quietly of SIGPIPE.
    assert run(["policy", "fmt", str(policy)], stdout=gone, stderr=err) == 1
    assert err.getvalue() == ""
    full = _FailingStream(OSError(errno.ENOSPC, "No space left on device"))
    assert run(["policy", "fmt", str(policy)], stdout=full, stderr=err) == 1
    assert err.getvalue() == "Error writing output: No space left on device\n"


def test_full_disk_in_a_real_process(tmp_path: Path) -> None:
    if not Path("/dev/full").exists():
        missing("/dev/full is Linux-only")
    policy = tmp_path / "p.hcl"
    policy.write_text(POLICY_TEXT)
    exe = Path(sys.executable).parent / "strongroom"
    with open("/dev/full", "w") as full:
        done = subprocess.run(
            [str(exe), "policy", "fmt", str(policy)],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            check=False,
        )
    assert (done.returncode, done.stderr) == (1, "Error writing output: No space left on device\n")
