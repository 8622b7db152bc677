"""Differential test: the same ``auth/token/*`` request sequence against a real OpenBao and a strongroom process.

Both servers run in dev mode (in memory, root token ``root``). Tokens and accessors differ between the two
by nature, so steps name them: ``save="t1"`` keeps the created token as ``{t1}`` and its accessor as
``{t1.acc}`` (one map per server), ``token="t1"`` sends the request with that token.

Each step compares the status code, the key sets of the envelope, ``auth`` and ``data``, whether
``warnings`` and ``errors`` are present, and, where the step says so, error texts (``errors=True``),
warnings (``warnings=True``) or chosen ``data`` values (``same``). Vault wraps some errors in its
multierror text (``1 error occurred: * msg``); that wrapper is removed before comparing.

Deliberate differences (docs/tokens.md, "Differences from Vault and OpenBao") are steps with ``differs``
(strongroom's status is asserted instead of equality) or ``no_warning`` (strongroom sends no warning where
OpenBao does).

With ``STRONGROOM_REQUIRE_ALL=1`` a missing ``bao`` binary fails instead of skipping.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.server import ServerProcess, start_openbao_dev, start_strongroom

CREATOR = 'path "auth/token/*" { capabilities = ["create", "update", "read", "list"] }'
SUDO = 'path "auth/token/*" { capabilities = ["create", "update", "read", "list", "sudo"] }'
_MULTI = re.compile(r"^\d+ errors? occurred:\n\t\* (.*?)\n*$", re.DOTALL)


@dataclass(frozen=True)
class Step:
    """One request and what must agree."""

    method: str
    path: str
    body: Any = None
    token: str = ""
    save: str = ""
    errors: bool = False
    warnings: bool = False
    same: tuple[str, ...] = ()
    differs: int | None = None
    no_warning: bool = False

    @property
    def name(self) -> str:
        return f"{self.method} {self.path}" + (f" as {self.token}" if self.token else "")


S = Step
SEQUENCE: list[Step] = [
    S("PUT", "sys/policies/acl/creator", {"policy": CREATOR}),
    S("PUT", "sys/policies/acl/sudoer", {"policy": SUDO}),
    # create and look up
    S(
        "POST",
        "auth/token/create",
        {"policies": ["b", "a"], "ttl": "1h", "meta": {"k": "v"}, "display_name": "my app!"},
        save="t1",
        warnings=True,
    ),
    S(
        "POST",
        "auth/token/lookup",
        {"token": "{t1}"},
        same=(
            "policies",
            "meta",
            "display_name",
            "ttl",
            "creation_ttl",
            "renewable",
            "orphan",
            "path",
            "num_uses",
        ),
    ),
    S("GET", "auth/token/lookup?token={t1}", same=("policies", "ttl")),
    S("GET", "auth/token/lookup-self", token="t1", same=("policies", "ttl")),
    S("POST", "auth/token/lookup-self", token="t1"),
    S("POST", "auth/token/lookup-accessor", {"accessor": "{t1.acc}"}, same=("id", "policies")),
    S("POST", "auth/token/lookup", {"token": "nope"}, errors=True),
    S("POST", "auth/token/lookup-accessor", {"accessor": "nope"}, errors=True),
    S("POST", "auth/token/lookup-accessor", {}, errors=True),
    S("GET", "auth/token/lookup", same=("policies", "ttl", "expire_time", "orphan")),
    # renew
    S("POST", "auth/token/renew", {"token": "{t1}", "increment": "2h"}),
    S("POST", "auth/token/renew-self", {"increment": 60}, token="t1"),
    S("POST", "auth/token/renew-accessor", {"accessor": "{t1.acc}"}),
    S("POST", "auth/token/lookup", {"token": "{t1}"}, same=("creation_ttl", "ttl")),
    S("POST", "auth/token/renew-self", errors=True),
    S("POST", "auth/token/renew", {"token": "nope"}, errors=True),
    S("POST", "auth/token/renew", {}, errors=True),
    S("POST", "auth/token/create", {"policies": ["x"], "renewable": False}, save="nr"),
    S("POST", "auth/token/renew", {"token": "{nr}"}, errors=True),
    S("POST", "auth/token/create", {"policies": ["x"], "ttl": "1h", "explicit_max_ttl": "90m"}, save="em"),
    S("POST", "auth/token/renew", {"token": "{em}", "increment": "2h"}),
    # TTLs, periods, policies
    S("POST", "auth/token/create", {"policies": ["x"], "ttl": "800h"}, warnings=True),
    S("POST", "auth/token/create", {"policies": ["x"], "ttl": "2h", "explicit_max_ttl": "1h"}, warnings=True),
    S("POST", "auth/token/create", {"policies": ["x"], "period": "10m", "ttl": "1h"}, save="per"),
    S("POST", "auth/token/lookup", {"token": "{per}"}, same=("period", "ttl", "creation_ttl")),
    S("POST", "auth/token/renew", {"token": "{per}", "increment": "2h"}),
    S("POST", "auth/token/create", {"policies": [" Foo ", "", "foo"], "no_default_policy": True}),
    S("POST", "auth/token/create", {"policies": "x,y", "meta": "a=b"}),
    S("POST", "auth/token/create", {}, save="rootkid"),
    S(
        "POST",
        "auth/token/lookup",
        {"token": "{rootkid}"},
        same=("policies", "ttl", "expire_time", "renewable"),
    ),
    S("POST", "auth/token/create", {"num_uses": -1}, errors=True),
    S("POST", "auth/token/create", {"ttl": "-1h"}, errors=True),
    S("POST", "auth/token/create", {"type": "foo"}, errors=True),
    S("POST", "auth/token/create", {"entity_alias": "x"}, errors=True),
    S("POST", "auth/token/create", {"policies": ["response-wrapping"]}, errors=True),
    S("POST", "auth/token/create", {"id": "hvs.abc"}, errors=True),
    S("POST", "auth/token/create", {"id": "s.abc"}, errors=True),
    S("POST", "auth/token/create", {"id": "a.b"}, errors=True),
    # OpenBao warns that custom IDs are hashed with SHA1; strongroom hashes every token alike, so no warning.
    S("POST", "auth/token/create", {"id": "custom-id"}, no_warning=True),
    S("POST", "auth/token/create", {"id": "custom-id"}, errors=True),
    # a non-root parent
    S("POST", "auth/token/create", {"policies": ["creator", "a"], "ttl": "1h"}, save="c", warnings=True),
    S("POST", "auth/token/create", {"policies": ["b"]}, token="c", errors=True),
    S("POST", "auth/token/create", {"policies": ["root"]}, token="c", errors=True),
    S("POST", "auth/token/create", {"no_parent": True}, token="c", errors=True),
    S("POST", "auth/token/create", {"id": "mine"}, token="c", errors=True),
    S("POST", "auth/token/create", {"period": "1h"}, token="c", errors=True),
    S("POST", "auth/token/create", {"policies": ["a"]}, token="c", warnings=True),
    S("POST", "auth/token/create-orphan", {}, token="c"),
    S("POST", "auth/token/create", {}, token="c", save="c2"),
    S("POST", "auth/token/create", {}, token="c2", save="c3"),
    S("POST", "auth/token/revoke-orphan", {"token": "{c3}"}, token="c", errors=True),
    S("LIST", "auth/token/accessors", token="c"),
    S("LIST", "auth/token/accessors"),
    S("POST", "auth/token/create", {"policies": ["sudoer"]}, save="s"),
    S("POST", "auth/token/create", {"policies": ["root"]}, token="s", errors=True),
    S("POST", "auth/token/create", {"policies": ["other"], "no_parent": True}, token="s"),
    S("LIST", "auth/token/accessors", token="s"),
    # revocation
    S("POST", "auth/token/revoke", {"token": "{c}"}),
    S("POST", "auth/token/lookup", {"token": "{c2}"}, errors=True),
    S("POST", "auth/token/lookup", {"token": "{c3}"}, errors=True),
    S("POST", "auth/token/create", {"policies": ["creator"]}, save="p"),
    S("POST", "auth/token/create", {}, token="p", save="k"),
    S("POST", "auth/token/create", {}, token="k", save="g"),
    S("POST", "auth/token/revoke-orphan", {"token": "{p}"}),
    S("POST", "auth/token/lookup", {"token": "{k}"}, same=("orphan",)),
    S("POST", "auth/token/lookup", {"token": "{g}"}, same=("orphan",)),
    S("POST", "auth/token/revoke-orphan", {"token": "{p}"}, errors=True),
    S("POST", "auth/token/revoke", {"token": "nope"}),
    S("POST", "auth/token/revoke", {}, errors=True),
    S("POST", "auth/token/revoke-accessor", {"accessor": "nope"}, warnings=True),
    S("POST", "auth/token/revoke-accessor", {"accessor": "{k.acc}"}),
    S("POST", "auth/token/lookup", {"token": "{g}"}, errors=True),
    S("POST", "auth/token/create", {"policies": ["default"]}, save="d"),
    S("POST", "auth/token/revoke-self", token="d"),
    S("GET", "auth/token/lookup-self", token="d"),
    # limited uses: a failed request counts as a use, in Vault and in strongroom
    S("POST", "auth/token/create", {"policies": ["creator"], "num_uses": 2}, save="u"),
    S("POST", "auth/token/create", {}, token="u", errors=True),
    S("GET", "auth/token/lookup-self", token="u"),
    S("GET", "auth/token/lookup-self", token="u"),
    S("GET", "auth/token/lookup-self", token="u"),
    # roles
    S("LIST", "auth/token/roles"),
    S(
        "POST",
        "auth/token/roles/r1",
        {"allowed_policies": ["b", "a"], "orphan": True, "token_period": "1h", "path_suffix": "v1x"},
    ),
    S("GET", "auth/token/roles/r1", same=("*",)),
    S(
        "POST",
        "auth/token/roles/r2",
        {
            "disallowed_policies": "x",
            "renewable": False,
            "token_explicit_max_ttl": 600,
            "explicit_max_ttl": 300,
        },
        warnings=True,
    ),
    S("GET", "auth/token/roles/r2", same=("*",)),
    S("POST", "auth/token/roles/r2", {"orphan": True}),
    S("GET", "auth/token/roles/r2", same=("*",)),
    S("POST", "auth/token/roles/r3", {"period": 120, "token_num_uses": 3, "token_no_default_policy": True}),
    S("GET", "auth/token/roles/r3", same=("*",)),
    S("LIST", "auth/token/roles", same=("keys",)),
    S("POST", "auth/token/roles/bad", {"path_suffix": "v1"}, errors=True),
    S("POST", "auth/token/roles/bad", {"token_type": "foo"}, errors=True),
    S("GET", "auth/token/roles/bad"),
    S("POST", "auth/token/roles/a%20b", {}),
    S("POST", "auth/token/create/r1", {"policies": ["a"]}, save="rt", warnings=True),
    S("POST", "auth/token/lookup", {"token": "{rt}"}, same=("role", "path", "orphan", "policies", "ttl")),
    S("POST", "auth/token/create/r1", {}, warnings=True),
    S("POST", "auth/token/create/r1", {"policies": ["c"]}, errors=True),
    S("POST", "auth/token/create/r2", {"policies": ["x"]}, errors=True),
    S("POST", "auth/token/create/r2", {"policies": ["q"]}, save="rt2", warnings=True),
    S("POST", "auth/token/renew", {"token": "{rt2}"}, errors=True),
    S("POST", "auth/token/create/r3", {"policies": ["q"], "num_uses": 5}, save="rt3"),
    S("POST", "auth/token/lookup", {"token": "{rt3}"}, same=("num_uses", "policies", "ttl")),
    S("POST", "auth/token/create/zz", {}, errors=True),
    S("DELETE", "auth/token/roles/r2"),
    S("DELETE", "auth/token/roles/r2"),
    S("GET", "auth/token/roles/r2"),
    S("POST", "auth/token/roles/r4", {"allowed_entity_aliases": ["x"]}),
    S("POST", "auth/token/create/r4", {"entity_alias": "y"}, errors=True),
    # deliberate differences (docs/tokens.md)
    S("POST", "auth/token/create/r4", {"entity_alias": "x"}, differs=400),
    S("POST", "auth/token/roles/r5", {"token_bound_cidrs": ["10.0.0.0/8"]}, differs=400),
    S("POST", "auth/token/create", {"policies": ["x"], "type": "batch"}, differs=400),
    # tidy and the HTTP layer
    S("POST", "auth/token/tidy"),
    S("GET", "auth/token/lookup-accessor"),
    S("DELETE", "auth/token/create"),
    S("POST", "auth/token/bogus"),
]


@dataclass
class Run:
    """One server's side of the sequence: its client and the tokens it handed out."""

    client: httpx.Client
    names: dict[str, str] = field(default_factory=dict)

    def fill(self, value: Any) -> Any:
        if isinstance(value, str):
            return re.sub(r"\{([\w.]+)\}", lambda m: self.names.get(m.group(1), m.group(0)), value)
        if isinstance(value, dict):
            return {k: self.fill(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.fill(v) for v in value]
        return value

    def send(self, step: Step) -> Outcome:
        token = self.names[step.token] if step.token else "root"
        kwargs: dict[str, Any] = {"headers": {"X-Vault-Token": token}}
        if step.body is not None:
            kwargs["json"] = self.fill(step.body)
        method, path = step.method, self.fill(step.path)
        if method == "LIST":
            # As Vault's CLI lists; the LIST verb itself is covered by tests/compat/test_kv_vs_openbao.py.
            method, path = "GET", path + "?list=true"
        r = self.client.request(method, "/v1/" + path, **kwargs)
        body = r.json() if r.content else None
        if step.save and r.status_code == 200:
            self.names[step.save] = body["auth"]["client_token"]
            self.names[step.save + ".acc"] = body["auth"]["accessor"]
        return Outcome(r.status_code, body)


@dataclass(frozen=True)
class Outcome:
    status: int
    body: Any


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[tuple[Outcome, Outcome]]]:
    """Run :data:`SEQUENCE` against OpenBao and strongroom; yield ``(openbao, strongroom)`` per step."""
    workdir: Path = tmp_path_factory.mktemp("token-diff")
    servers: list[ServerProcess] = []
    try:
        servers.append(start_openbao_dev(workdir))
        try:
            servers.append(
                start_strongroom(["--dev", "--dev-root-token-id", "root", "--storage", "memory://"], workdir)
            )
        except RuntimeError as exc:
            pytest.fail(f"strongroom did not start: {exc}")
        with servers[0].client("") as ob, servers[1].client("") as sr:
            runs = (Run(ob), Run(sr))
            yield [(runs[0].send(step), runs[1].send(step)) for step in SEQUENCE]
    finally:
        for server in servers:
            server.kill()


def _errors(body: Any) -> list[str]:
    out = []
    for message in body.get("errors") or []:
        m = _MULTI.match(message)
        out.append(m.group(1) if m else message)
    return out


def _keys(value: Any) -> Any:
    return sorted(value) if isinstance(value, dict) else type(value).__name__


@pytest.mark.parametrize(
    "index", range(len(SEQUENCE)), ids=[f"{i:03d}-{s.name}" for i, s in enumerate(SEQUENCE)]
)
def test_step_matches_openbao(outcomes: list[tuple[Outcome, Outcome]], index: int) -> None:
    step = SEQUENCE[index]
    ob, sr = outcomes[index]
    if step.differs is not None:
        assert sr.status == step.differs, (step, ob, sr)
        assert ob.status != step.differs, ("OpenBao now agrees: update docs/tokens.md", step, ob)
        return
    assert sr.status == ob.status, (step, ob, sr)
    if ob.body is None or sr.body is None:
        assert ob.body == sr.body, (step, ob, sr)
        return
    assert _keys(sr.body) == _keys(ob.body), (step, ob, sr)
    if "errors" in ob.body:
        assert bool(_errors(sr.body)) == bool(_errors(ob.body)), (step, ob, sr)
        if step.errors:
            assert _errors(sr.body) == _errors(ob.body), step
        return
    for part in ("auth", "data"):
        assert _keys(sr.body[part]) == _keys(ob.body[part]), (step, part, ob.body[part], sr.body[part])
    if step.no_warning:
        assert sr.body["warnings"] is None and ob.body["warnings"], (step, ob.body, sr.body)
    else:
        assert (sr.body["warnings"] is None) == (ob.body["warnings"] is None), (step, ob.body, sr.body)
    if step.warnings:
        assert sr.body["warnings"] == ob.body["warnings"], step
    if step.same == ("*",):
        assert sr.body["data"] == ob.body["data"], step
    for key in step.same if step.same != ("*",) else ():
        mine, theirs = sr.body["data"][key], ob.body["data"][key]
        if key == "ttl":
            # Both servers run on the wall clock; a second may pass between creation and lookup.
            assert abs(mine - theirs) <= 2, (step, mine, theirs)
        else:
            assert mine == theirs, (step, key, mine, theirs)


def test_sequence_is_long_enough() -> None:
    assert len(SEQUENCE) >= 30
