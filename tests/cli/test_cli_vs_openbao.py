"""The same ``strongroom`` commands against OpenBao and strongroom print the same thing.

Both dev servers get the identical command sequence; exit code, stdout and stderr are compared after
normalising what is random by nature (times, UUIDs, tokens, accessors, ports, remaining TTL seconds) and
the documented differences (docs/cli.md, "Differences seen through the CLI"): the version, storage type and
cluster name in ``status``; OpenBao's KV metadata extensions; Go's multierror wrapping of error texts.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.cli.conftest import _start
from tests.cli.targets import CliResult, Runner, VaultTarget

pytestmark = pytest.mark.slow

POLICY = 'path "secret/data/app/*" {\n  capabilities = ["read", "list"]\n}\n'

# (argv, stdin). Run in order on both servers; later commands see earlier writes.
SCRIPT: list[tuple[str, str]] = [
    ("kv put secret/app user=admin password=s3cret", ""),
    ("kv put -cas=1 secret/app user=root", ""),
    ("kv put -cas=1 secret/app user=again", ""),
    ("kv get secret/app", ""),
    ("kv get -version=1 -format=json secret/app", ""),
    ("kv get -field=user secret/app", ""),
    ("kv get -field=nope secret/app", ""),
    ("kv get secret/absent", ""),
    ("kv put secret/typed -", '{"n": 5, "on": true, "obj": {"a": [1, 2]}}'),
    ("kv get secret/typed", ""),
    ("kv patch secret/app extra=1", ""),
    ("kv patch secret/absent extra=1", ""),
    ("kv list secret", ""),
    ("kv list secret/absent", ""),
    ("kv delete -versions=1 secret/app", ""),
    ("kv get -version=1 secret/app", ""),
    ("kv undelete -versions=1 secret/app", ""),
    ("kv destroy -versions=2 secret/app", ""),
    ("kv metadata put -max-versions=4 -custom-metadata=owner=ops secret/app", ""),
    ("kv metadata get secret/app", ""),
    ("kv metadata get -format=json secret/app", ""),
    ("kv metadata delete secret/app", ""),
    ("kv get nomount/x", ""),
    ("policy write app -", POLICY),
    # Only an error both parsers word alike; the HCL texts that differ are in test_server_gaps.py.
    ("policy write bad -", 'path "a" { capabilities = ["fly"] }\n'),
    ("policy write bad -", 'path "a" {\n  capabilities = ["read"]\n  foo = 1\n}\n'),
    ("policy list", ""),
    ("policy read app", ""),
    ("policy read -format=json default", ""),
    ("policy read absent", ""),
    ("policy delete app", ""),
    ("token create -policy=app -ttl=1h -metadata=team=ops -display-name=ci", ""),
    ("token create -orphan -no-default-policy -policy=x -ttl=10m -format=json", ""),
    ("token create -period=30m -renewable=false -use-limit=3", ""),
    ("token create -ttl=bogus", ""),
    ("token create -role=absent", ""),
    ("token lookup not-a-token", ""),
    ("token lookup -accessor not-an-accessor", ""),
    ("token renew", ""),
    ("token revoke not-a-token", ""),
    ("token capabilities secret/data/app", ""),
    ("token capabilities not-a-token secret/data/app", ""),
    ("status", ""),
    ("status -format=json", ""),
    ("operator key-status", ""),
]

_RANDOM = [
    (re.compile(r"\d{4}-\d\d-\d\dT[\d:.]+Z"), "TIME"),
    (re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"), "UUID"),
    (re.compile(r"\b(hvs|s)\.[A-Za-z0-9]{24}\b"), "TOKEN"),
    (re.compile(r"\b[A-Za-z0-9]{24}\b"), "ACCESSOR"),
    (re.compile(r"127\.0\.0\.1:\d+"), "ADDR"),
    (re.compile(r"(\bttl\s+|\"ttl\": )\d+(m\d+s|\b)"), r"\1TTL"),
    (re.compile(r"^(Install Time|Encryption Count)\s+.*$", re.M), r"\1 X"),
    (re.compile(r"(creation_time|issue_time)(\"?:?\s+)\d+"), r"\1\2N"),
]
# Rows and keys that are documented differences, not bugs.
_DIFFERENT = re.compile(
    r"^\s*(\"?)(version|Version|build_date|Build Date|storage_type|Storage Type|cluster_name|Cluster Name"
    r"|commit_date|current_metadata_version|metadata_cas_required)\1(:|\s).*\n",
    re.M,
)
_MULTIERROR = re.compile(r"\* 1 error occurred:\n\t\* (.*)\n\n\n?")


def normalise(text: str) -> str:
    """Replace random values and drop documented differences, then re-space tables uniformly."""
    text = _MULTIERROR.sub(r"* \1\n", text)
    text = _DIFFERENT.sub("", text)
    for pattern, replacement in _RANDOM:
        text = pattern.sub(replacement, text)
    # Column widths and "== Title ==" bars depend on the longest key, which the dropped rows change.
    text = re.sub(r"(?<=\S) {2,}(?=\S)", "  ", text)
    text = re.sub(r"^(=+) (.*?) (=+)$", r"= \2 =", text, flags=re.M)
    return re.sub(r"^-{3,}\s+-{3,}$", "---  -----", text, flags=re.M)


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, VaultTarget]]:
    started = {}
    try:
        for kind in ("openbao", "strongroom"):
            started[kind] = _start(kind, True, tmp_path_factory.mktemp(f"vs-{kind}"))
        yield {kind: target for kind, (target, _) in started.items()}
    finally:
        for _, stop_it in started.values():
            stop_it()


def _transcript(run: Runner) -> list[tuple[str, int, str, str]]:
    results = []
    for command, stdin in SCRIPT:
        res: CliResult = run(*command.split(), stdin=stdin)
        results.append((command, res.code, normalise(res.out), normalise(res.err)))
    return results


def test_same_output_as_openbao(
    servers: dict[str, VaultTarget], cli: Callable[[VaultTarget], Runner], tmp_path: Path
) -> None:
    bao = _transcript(cli(servers["openbao"]))
    ours = _transcript(cli(servers["strongroom"]))
    mismatches = [
        f"$ strongroom {b[0]}\n--- openbao (exit {b[1]})\n{b[2]}{b[3]}--- strongroom (exit {s[1]})\n{s[2]}{s[3]}"
        for b, s in zip(bao, ours, strict=True)
        if b != s
    ]
    assert not mismatches, "\n".join(mismatches)


def test_normalise_keeps_real_differences() -> None:
    """The normaliser must not hide what it is not meant to: values, exit texts, other rows."""
    assert normalise("user    admin\n") != normalise("user    root\n")
    assert normalise("* permission denied\n") == normalise("* 1 error occurred:\n\t* permission denied\n\n")
    assert normalise("* permission denied\n") != normalise("* invalid token\n")
    assert normalise("max_versions    4\n") != normalise("max_versions    0\n")
    assert normalise("Storage Type    memory\nSealed    false\n") == "Sealed  false\n"


def test_documented_differences(
    servers: dict[str, VaultTarget], cli: Callable[[VaultTarget], Runner]
) -> None:
    """Each difference docs/cli.md lists, asserted on both sides, so one that changes is noticed."""
    ours, bao = cli(servers["strongroom"]), cli(servers["openbao"])
    status = ours("status").out
    assert re.search(r"^Version\s+1\.17\.0\+strongroom\.", status, re.M)
    assert re.search(r"^Storage Type\s+memory$", status, re.M)
    assert re.search(r"^Cluster Name\s+strongroom-cluster-", status, re.M)
    assert re.search(r"^Build Date\s+\S+", status, re.M)
    assert re.search(r"^Storage Type\s+inmem$", bao("status").out, re.M)

    for run in (ours, bao):
        assert run("kv", "put", "secret/diff", "a=1").code == 0
    assert "current_metadata_version" not in ours("kv", "metadata", "get", "secret/diff").out
    assert "current_metadata_version" in bao("kv", "metadata", "get", "secret/diff").out

    token = {k: run("token", "create", "-field=token", "-policy=none", "-ttl=5m").out for k, run in
             (("ours", ours), ("bao", bao))}  # fmt: skip
    assert token["ours"].startswith("hvs.")
    assert token["bao"].startswith("s.")
    denied = ours("policy", "list", token=token["ours"]).err
    assert denied.endswith("Code: 403. Errors:\n\n* permission denied\n")
    assert "* 1 error occurred:\n\t* permission denied" in bao("policy", "list", token=token["bao"]).err

    root = ours("token", "lookup", "-format=json").out
    assert '"display_name": "root"' in root
    assert '"path": "auth/token/root"' in root
    assert '"path": "auth/token/create"' in bao("token", "lookup", "-format=json").out
