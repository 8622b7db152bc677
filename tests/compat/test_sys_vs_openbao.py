"""Differential tests: the same sys/* request sequences against a real OpenBao and against strongroom.

Each step is sent to both servers; the status codes must be equal and the JSON bodies must have the same
shape (the same keys, recursively, with the same JSON types; values are ignored because tokens, ids, times
and keys are random by nature). Where strongroom differs on purpose, the step lists the difference in
``known`` with the notation of :func:`shape_diff` and docs/api-compatibility.md explains it: the test
then asserts that exact difference, so a difference that disappears or appears is noticed either way.

Skipped when the ``bao`` binary is absent, unless ``STRONGROOM_REQUIRE_ALL=1`` (then it fails).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.server import ServerProcess, start_openbao, start_openbao_dev, start_strongroom

pytestmark = pytest.mark.slow

Body = Any | Callable[[ServerProcess], Any]


@dataclass(frozen=True)
class Step:
    """One request. ``body``/``path`` may be callables of the server (for its own keys or token)."""

    method: str
    path: str | Callable[[ServerProcess], str]
    body: Body = None
    raw: bytes | None = None
    token: str | None = None
    params: dict[str, str] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    known: frozenset[str] = frozenset()
    same_message: bool = False
    our_status: int | None = None
    """A documented status difference: OpenBao's status is still checked to be ``bao_status``."""
    bao_status: int | None = None


def K(*items: str) -> frozenset[str]:
    """Documented differences of one step."""
    return frozenset(items)


def send(server: ServerProcess, step: Step) -> httpx.Response:
    """Send ``step`` to ``server`` (token: the step's, else the server's own)."""
    token = server.token if step.token is None else step.token
    headers = {"X-Vault-Token": token} if token else {}
    headers.update(step.headers)
    path = step.path(server) if callable(step.path) else step.path
    body = step.body(server) if callable(step.body) else step.body
    kwargs: dict[str, Any] = {}
    if step.raw is not None:
        kwargs["content"] = step.raw
    elif body is not None:
        kwargs["json"] = body
    with httpx.Client(base_url=server.addr, timeout=30) as client:
        return client.request(step.method, "/v1/" + path, headers=headers, params=step.params, **kwargs)


def shape_diff(ours: Any, theirs: Any, where: str = "") -> list[str]:
    """Differences in shape: ``+k`` only strongroom has key k, ``-k`` only OpenBao, ``~k`` JSON types differ.

    Lists compare the shape of their first elements when both are non-empty.
    """
    if isinstance(ours, dict) and isinstance(theirs, dict):
        out = [f"+{where}{k}" for k in ours.keys() - theirs.keys()]
        out += [f"-{where}{k}" for k in theirs.keys() - ours.keys()]
        for k in ours.keys() & theirs.keys():
            out += shape_diff(ours[k], theirs[k], f"{where}{k}.")
        return out
    if isinstance(ours, list) and isinstance(theirs, list):
        return shape_diff(ours[0], theirs[0], where) if ours and theirs else []
    if _kind(ours) != _kind(theirs):
        return [f"~{where.rstrip('.')}"]
    return []


def _messages(body: Any) -> tuple[Any, Any]:
    """The human-readable parts of a body: ``errors`` and ``warnings``."""
    if not isinstance(body, dict):
        return None, None
    return body.get("errors"), body.get("warnings")


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__


def run(bao: ServerProcess, ours: ServerProcess, steps: list[Step]) -> list[str]:
    """Send every step to both servers; return a line per unexpected difference."""
    problems = []
    for step in steps:
        b, o = send(bao, step), send(ours, step)
        label = f"{step.method} {step.path if isinstance(step.path, str) else '<dynamic>'}"
        if step.our_status is not None:
            if (b.status_code, o.status_code) != (step.bao_status, step.our_status):
                problems.append(
                    f"{label}: documented {step.bao_status}/{step.our_status}, "
                    f"got openbao={b.status_code} ours={o.status_code}"
                )
            continue
        if b.status_code != o.status_code:
            problems.append(f"{label}: status openbao={b.status_code} ours={o.status_code} ({o.text[:200]})")
            continue
        bj = b.json() if b.content else None
        oj = o.json() if o.content else None
        diff = set(shape_diff(oj, bj))
        if diff != step.known:
            problems.append(f"{label}: shape differs {sorted(diff)}, documented {sorted(step.known)}")
        if step.same_message and _messages(bj) != _messages(oj):
            problems.append(f"{label}: messages openbao={_messages(bj)} ours={_messages(oj)}")
    return problems


@pytest.fixture(scope="module")
def dev_pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """``bao server -dev`` and ``strongroom server --dev``, both with root token ``root``."""
    work = tmp_path_factory.mktemp("dev-pair")
    bao = start_openbao_dev(work)
    ours = start_strongroom(["--dev", "--dev-root-token-id", "root", "--storage", "memory://"], work)
    ours.token = "root"
    try:
        yield bao, ours
    finally:
        bao.kill()
        ours.kill()


@pytest.fixture
def fresh_pair(tmp_path: Path) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """A sealed, uninitialised OpenBao and strongroom."""
    bao = start_openbao(tmp_path)
    ours = start_strongroom(["--storage", "memory://"], tmp_path)
    try:
        yield bao, ours
    finally:
        bao.kill()
        ours.kill()


# Keys documented in docs/api-compatibility.md.
SEAL_STATUS_EXTRA = ("+build_date",)
KEY_STATUS_EXTRA = ("+rewrap", "+data.rewrap")
"""The progress of the re-wrap after a rotation (docs/operations/platform-key.md); OpenBao has no re-wrap."""
HEALTH_EXTRA = (
    "+performance_standby",
    "+enterprise",
    "+echo_duration_ms",
    "+clock_skew_ms",
    "+replication_primary_canary_age_ms",
)
POLICY_READ_MISSING = (
    "-data.version",
    "-data.cas_required",
    "-data.allow_slashes_in_identity_templates",
    "-data.allow_wildcards_in_identity_templates",
)


def _with_top(*keys: str) -> tuple[str, ...]:
    """The same ``data.`` differences also at the top level (sys responses inject data there)."""
    return keys + tuple(k[0] + k[len("-data.") :] for k in keys)


def _init_body(server: ServerProcess) -> dict[str, int]:
    return {"secret_shares": 3, "secret_threshold": 2}


def _remember_init(server: ServerProcess, response: httpx.Response) -> None:
    body = response.json()
    server.keys = body["keys"]
    server.token = body["root_token"]


INIT_ERRORS = [
    Step("PUT", "sys/init", {}, same_message=True),
    Step("PUT", "sys/init", {"secret_shares": 1, "secret_threshold": 2}, same_message=True),
    Step("PUT", "sys/init", {"secret_shares": 3, "secret_threshold": 1}, same_message=True),
    Step("PUT", "sys/init", {"secret_shares": 256, "secret_threshold": 2}, same_message=True),
    Step("PUT", "sys/init", {"secret_shares": -1, "secret_threshold": 2}, same_message=True),
    Step("PUT", "sys/init", {"secret_shares": None, "secret_threshold": 2}, same_message=True),
    Step(
        "PUT", "sys/init", {"secret_shares": 3, "secret_threshold": 2, "pgp_keys": ["a"]}, same_message=True
    ),
    Step("PUT", "sys/init", {"secret_shares": 3, "secret_threshold": 2, "pgp_keys": ["!", "!", "!"]}),
    Step("PUT", "sys/init", {"secret_shares": 3, "secret_threshold": 2, "root_token_pgp_key": "!"}),
    Step("PUT", "sys/init", {"secret_shares": "3", "secret_threshold": 2}, same_message=True),
    Step("PUT", "sys/init", {"secret_shares": True, "secret_threshold": 2}, same_message=True),
    Step("PUT", "sys/init", {"secret_shares": 3, "secret_threshold": 2, "pgp_keys": "a"}, same_message=True),
    Step(
        "PUT",
        "sys/init",
        {"secret_shares": 3, "secret_threshold": 2, "recovery_shares": 2},
        same_message=True,
    ),
    Step(
        "PUT",
        "sys/init",
        {"secret_shares": 3, "secret_threshold": 2, "recovery_threshold": 2, "recovery_pgp_keys": ["x"]},
        same_message=True,
    ),
    Step("PUT", "sys/init", raw=b"{bad"),
    Step("PUT", "sys/init", raw=b"[1]"),
    Step("DELETE", "sys/init"),
    Step("GET", "sys/init"),
]

UNINITIALISED = [
    Step("GET", "sys/seal-status", known=K(*SEAL_STATUS_EXTRA)),
    Step("GET", "sys/health", known=K(*HEALTH_EXTRA)),
    Step("HEAD", "sys/health"),
    Step("GET", "sys/health", params={"uninitcode": "299"}, known=K(*HEALTH_EXTRA)),
    Step("GET", "sys/health", params={"uninitcode": "abc"}),
    Step("GET", "sys/health", params={"sealedcode": "abc"}),
    Step("GET", "sys/health", params={"standbyok": "maybe"}),
    Step("GET", "sys/leader"),
    Step("PUT", "sys/unseal", {}, same_message=True),
    Step("PUT", "sys/unseal", {"key": "zz-not-a-key"}, same_message=True),
    Step("PUT", "sys/unseal", {"key": "00" * 33}, same_message=True),
    Step("PUT", "sys/unseal", {"reset": True}, known=K(*SEAL_STATUS_EXTRA)),
    Step("GET", "sys/unseal"),
    Step("POST", "sys/seal-status"),
    Step("POST", "sys/health"),
    Step("GET", "sys/mounts", same_message=True),
    Step("PUT", "sys/seal"),
    Step("GET", "sys/seal"),
    Step("PUT", "sys/step-down"),
]


def test_uninitialised_server_and_init_validation(fresh_pair: tuple[ServerProcess, ServerProcess]) -> None:
    bao, ours = fresh_pair
    problems = run(bao, ours, UNINITIALISED + INIT_ERRORS)
    assert not problems, "\n".join(problems)


def test_init_unseal_seal_lifecycle(fresh_pair: tuple[ServerProcess, ServerProcess]) -> None:
    bao, ours = fresh_pair
    for server in (bao, ours):
        r = send(server, Step("PUT", "sys/init", _init_body))
        assert r.status_code == 200, r.text
        assert set(r.json()) == {"keys", "keys_base64", "root_token"}
        _remember_init(server, r)
    sealed = [
        Step("PUT", "sys/init", _init_body, same_message=True),
        Step("GET", "sys/init"),
        Step("GET", "sys/seal-status", known=K(*SEAL_STATUS_EXTRA)),
        Step("GET", "sys/health", known=K(*HEALTH_EXTRA)),
        Step("GET", "sys/health", params={"sealedcode": "299"}, known=K(*HEALTH_EXTRA)),
        Step("GET", "sys/mounts", same_message=True),
        Step("GET", "sys/policies/acl", params={"list": "true"}, same_message=True),
        Step("GET", "nope/path", same_message=True),
        Step("PUT", "sys/seal"),
        Step("PUT", "sys/seal", token="bogus"),
        Step("PUT", "sys/rotate", same_message=True),
        Step("GET", "sys/key-status", same_message=True),
        # unseal: one share, progress; duplicate; reset; a wrong share at the threshold resets progress
        Step("PUT", "sys/unseal", lambda s: {"key": s.keys[0]}, known=K(*SEAL_STATUS_EXTRA)),
        Step("PUT", "sys/unseal", lambda s: {"Key": s.keys[0]}, known=K(*SEAL_STATUS_EXTRA)),
        Step("PUT", "sys/unseal", {"reset": True}, known=K(*SEAL_STATUS_EXTRA)),
        Step("PUT", "sys/unseal", lambda s: {"key": s.keys[0]}, known=K(*SEAL_STATUS_EXTRA)),
        Step("PUT", "sys/unseal", {"key": "01" * 33}),
        Step("GET", "sys/seal-status", known=K(*SEAL_STATUS_EXTRA)),
        Step("PUT", "sys/unseal", {"key": "ab"}),
        Step("PUT", "sys/unseal", {"key": 5}),
        Step("PUT", "sys/unseal", {"reset": "yes"}),
        # hex for the first share, base64 for the second
        Step("PUT", "sys/unseal", lambda s: {"key": s.keys[1]}, known=K(*SEAL_STATUS_EXTRA)),
        Step("PUT", "sys/unseal", lambda s: {"key": _b64(s.keys[2])}, known=K(*SEAL_STATUS_EXTRA)),
        Step("GET", "sys/seal-status", known=K(*SEAL_STATUS_EXTRA)),
        Step("GET", "sys/health", known=K(*HEALTH_EXTRA)),
        Step("PUT", "sys/unseal", lambda s: {"key": s.keys[0]}, known=K(*SEAL_STATUS_EXTRA)),
        Step("PUT", "sys/unseal", {"reset": True}, same_message=True),
        Step("GET", "sys/mounts", known=K(*MOUNTS_LIST_KNOWN)),
        # OpenBao warns about parameters an endpoint does not declare; we ignore them silently.
        Step("GET", "sys/mounts", params={"x": "1"}, known=K(*MOUNTS_LIST_KNOWN, "~warnings")),
        Step("PUT", "sys/seal", token="", same_message=True),
        Step("PUT", "sys/seal", token="bogus"),
        Step("GET", "sys/seal"),
        Step("PUT", "sys/step-down"),
        Step("PUT", "sys/seal"),
        Step("GET", "sys/seal-status", known=K(*SEAL_STATUS_EXTRA)),
        Step("GET", "sys/mounts", same_message=True),
        Step("PUT", "sys/seal"),
    ]
    problems = run(bao, ours, sealed)
    assert not problems, "\n".join(problems)


def _b64(hex_key: str) -> str:
    import base64

    return base64.b64encode(bytes.fromhex(hex_key)).decode()


MOUNT_VIEW_EXTRA: tuple[str, ...] = ()
MOUNTS_LIST_KNOWN = tuple(f"-{top}{m}" for m in ("cubbyhole/", "identity/") for top in ("", "data.")) + tuple(
    f"-{top}sys/.config.passthrough_request_headers" for top in ("", "data.")
)


def test_mounts(dev_pair: tuple[ServerProcess, ServerProcess]) -> None:
    bao, ours = dev_pair
    steps = [
        Step("GET", "sys/mounts", known=K(*MOUNTS_LIST_KNOWN)),
        Step("POST", "sys/mounts/m-kv1", {"type": "kv"}),
        Step("GET", "sys/mounts/m-kv1"),
        Step("POST", "sys/mounts/m-kv1", {"type": "kv"}, same_message=True),
        Step("POST", "sys/mounts/m-kv1/sub", {"type": "kv"}),
        Step("POST", "sys/mounts/m-kv2", {"type": "kv", "options": {"version": "2"}, "description": "d"}),
        Step("POST", "sys/mounts/m-kvv2", {"type": "kv-v2"}),
        Step("GET", "sys/mounts/m-kvv2"),
        Step("POST", "sys/mounts/m-x", {"type": "nope"}, same_message=True),
        Step("POST", "sys/mounts/m-y", {}, same_message=True),
        Step("POST", "sys/mounts/sys/x", {"type": "kv"}, same_message=True),
        Step("POST", "sys/mounts/cubbyhole", {"type": "kv"}, same_message=True),
        Step("POST", "sys/mounts/m-v3", {"type": "kv", "options": {"version": "3"}}),
        Step(
            "POST",
            "sys/mounts/m-ttl",
            {"type": "kv", "config": {"default_lease_ttl": "2h", "max_lease_ttl": "1h"}},
            same_message=True,
        ),
        Step("POST", "sys/mounts/m-ttl", {"type": "kv", "config": {"default_lease_ttl": "abc"}}),
        Step(
            "POST",
            "sys/mounts/m-ttl",
            {"type": "kv", "config": {"default_lease_ttl": "1h", "max_lease_ttl": "2h"}},
        ),
        Step("GET", "sys/mounts/m-ttl/tune"),
        Step(
            "POST",
            "sys/mounts/m-kv1/tune",
            {"default_lease_ttl": "2h", "max_lease_ttl": "1h"},
            same_message=True,
        ),
        Step("POST", "sys/mounts/m-kv1/tune", {"default_lease_ttl": "1h", "max_lease_ttl": "2h"}),
        Step("POST", "sys/mounts/m-kv1/tune", {"default_lease_ttl": "abc"}),
        Step("POST", "sys/mounts/m-kv1/tune", {"description": "new", "options": {"x": "y"}}),
        Step("GET", "sys/mounts/m-kv1/tune"),
        Step("POST", "sys/mounts/m-kv1/tune", {"options": {"x": ""}}),
        Step("GET", "sys/mounts/m-kv1/tune"),
        Step("POST", "sys/mounts/m-kv1/tune", {"options": {"version": "2"}}),
        Step("GET", "sys/mounts/m-kv1/tune"),
        Step("POST", "sys/mounts/m-kv1/tune", {"options": {"version": "1"}}, same_message=True),
        Step("POST", "sys/mounts/m-kv1/tune", {"options": {"version": "7"}}, same_message=True),
        Step("GET", "sys/mounts/m-kv1/sub/tune"),
        Step("GET", "sys/mounts/secret/tune"),
        Step("GET", "sys/mounts/nope/tune", same_message=True),
        Step("POST", "sys/mounts/nope/tune", {"default_lease_ttl": "1h"}, same_message=True),
        Step("POST", "sys/mounts/sys/tune", {"default_lease_ttl": "1h"}, same_message=True),
        Step("GET", "sys/mounts/nope", same_message=True),
        Step("GET", "sys/internal/ui/mounts/secret/some/key"),
        Step("GET", "sys/internal/ui/mounts/m-kv1"),
        Step("GET", "sys/internal/ui/mounts/auth/token", known=K("-data.config.token_type")),
        Step("GET", "sys/internal/ui/mounts/nope/x", same_message=True),
        Step("DELETE", "sys/mounts/m-kv1"),
        Step("DELETE", "sys/mounts/m-kv1"),
        Step("GET", "sys/mounts/m-kv1", same_message=True),
        Step("DELETE", "sys/mounts/sys", same_message=True),
        # LIST appends "/" to the path; Vault then finds no route "sys/mounts/" (404) while our router
        # lets "x/" name the route "x" and reports the missing list operation (405). Documented.
        Step("GET", "sys/mounts", params={"list": "true"}, bao_status=404, our_status=405),
        Step("LIST", "sys/mounts", bao_status=404, our_status=405),
        Step("GET", "sys/policy/"),
        Step("LIST", "sys/policy"),
        Step("PUT", "sys/mounts"),
        Step("GET", "sys/mounts", token="", same_message=True),
        Step("GET", "sys/mounts", token="bogus", same_message=True),
    ]
    problems = run(bao, ours, steps)
    assert not problems, "\n".join(problems)


def test_policies_and_capabilities(dev_pair: tuple[ServerProcess, ServerProcess]) -> None:
    bao, ours = dev_pair
    hcl = 'path "secret/*" { capabilities = ["read", "list"] }'
    steps = [
        Step("PUT", "sys/policies/acl/p-one", {"policy": hcl}),
        Step("GET", "sys/policies/acl/p-one", known=K(*POLICY_READ_MISSING, "-data.modified")),
        Step("GET", "sys/policies/acl/p-nope", same_message=True),
        Step("GET", "sys/policies/acl", params={"list": "true"}),
        Step("LIST", "sys/policies/acl"),
        Step("GET", "sys/policies/acl", same_message=False),
        Step("GET", "sys/policies/acl", params={"list": "maybe"}, same_message=True),
        Step("PUT", "sys/policies/acl/p-two", {}, same_message=True),
        Step("PUT", "sys/policies/acl/p-two", {"rules": hcl}, same_message=True),
        Step("PUT", "sys/policies/acl/p-two", {"policy": "path {"}),
        Step("PUT", "sys/policies/acl/p-two", {"policy": ["a"]}),
        Step("PUT", "sys/policies/acl/root", {"policy": hcl}, same_message=True),
        Step("DELETE", "sys/policies/acl/root", same_message=True),
        Step("DELETE", "sys/policies/acl/default"),
        Step("DELETE", "sys/policies/acl/p-nope"),
        Step("GET", "sys/policies/acl/root", known=K(*POLICY_READ_MISSING)),
        Step("GET", "sys/policy"),
        Step("GET", "sys/policy/p-one", known=K(*_with_top(*POLICY_READ_MISSING, "-data.modified"))),
        Step("PUT", "sys/policy/p-legacy", {"rules": hcl}, same_message=True),
        Step("PUT", "sys/policy/p-legacy2", {"policy": hcl}),
        Step("DELETE", "sys/policy/p-legacy"),
        Step("GET", "sys/policy/p-legacy", same_message=True),
        Step("POST", "sys/capabilities-self", {"path": "secret/a"}),
        Step("POST", "sys/capabilities-self", {"paths": ["secret/a", "x"]}),
        Step("POST", "sys/capabilities-self", {}, same_message=True),
        Step("POST", "sys/capabilities", {"token": "root", "path": "a/b"}),
        Step("POST", "sys/capabilities", {"token": "nope", "path": "a/b"}),
        Step("POST", "sys/capabilities-accessor", {"accessor": "nope", "path": "a/b"}),
        Step("GET", "sys/capabilities-self"),
        Step("POST", "sys/capabilities-self", {"path": "secret/a"}, token="", same_message=True),
    ]
    problems = run(bao, ours, steps)
    assert not problems, "\n".join(problems)


def test_capabilities_of_a_child_token(dev_pair: tuple[ServerProcess, ServerProcess]) -> None:
    bao, ours = dev_pair
    hcl = (
        'path "secret/*" { capabilities = ["read", "list"] }\npath "secret/deny" { capabilities = ["deny"] }'
    )
    for server in (bao, ours):
        assert send(server, Step("PUT", "sys/policies/acl/p-child", {"policy": hcl})).status_code == 204
        r = send(server, Step("POST", "auth/token/create", {"policies": ["p-child"]}))
        assert r.status_code == 200, (server.addr, r.text)
        server.keys = [r.json()["auth"]["client_token"], r.json()["auth"]["accessor"]]
    steps = [
        Step(
            "POST",
            "sys/capabilities",
            lambda s: {"token": s.keys[0], "paths": ["secret/a", "secret/deny", "x"]},
        ),
        Step("POST", "sys/capabilities-accessor", lambda s: {"accessor": s.keys[1], "path": "secret/a"}),
        Step("POST", "sys/capabilities-self", {"path": "secret/a"}, token=None),
        Step("GET", "sys/mounts", token="", same_message=True),
    ]
    problems = run(bao, ours, steps)
    assert not problems, "\n".join(problems)
    child = [Step("GET", "sys/mounts", token="x"), Step("PUT", "sys/seal", token="x")]
    for server in (bao, ours):
        for step in child:
            r = send(server, Step(step.method, step.path, token=server.keys[0]))
            assert r.status_code == 403, (server.addr, step.path, r.text)


def test_http_layer(dev_pair: tuple[ServerProcess, ServerProcess]) -> None:
    bao, ours = dev_pair
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    hcl = 'path "h/*" { capabilities = ["read"] }'
    steps = [
        Step("PUT", "sys/policies/acl/h1", raw=b"{bad"),
        Step("PUT", "sys/policies/acl/h1", raw=b"[1,2]"),
        Step("PUT", "sys/policies/acl/h1", raw=b'"text"'),
        Step("PUT", "sys/policies/acl/h1", raw=b"null", same_message=True),
        Step("PUT", "sys/policies/acl/h1", raw=b"policy=" + hcl.replace(" ", "+").encode(), headers=form),
        Step("GET", "sys/policies/acl/h1", known=K(*POLICY_READ_MISSING, "-data.modified")),
        Step(
            "PUT",
            "sys/policies/acl/h2",
            raw=b' {"policy": "path \\"x\\" {capabilities=[\\"read\\"]}"}',
            headers=form,
        ),
        Step("GET", "sys/policies/acl/h2", known=K(*POLICY_READ_MISSING, "-data.modified")),
        Step("GET", "nope/foo", same_message=True),
        Step("GET", "nope/foo", token="", same_message=True),
        Step("GET", "nope/foo", token="bogus", same_message=True),
        Step("GET", "sys/nope"),
        Step(
            "GET",
            "sys/mounts",
            token="",
            headers={"Authorization": "Bearer root"},
            known=K(*MOUNTS_LIST_KNOWN),
        ),
        Step("GET", "sys/mounts", token="", headers={"Authorization": "bearer root"}, same_message=True),
        Step("GET", "sys/mounts", headers={"X-Vault-Request": "true"}, known=K(*MOUNTS_LIST_KNOWN)),
        Step("TRACE", "sys/mounts", same_message=True),
        Step("PATCH", "sys/mounts/x", {}, same_message=True),
        Step("PATCH", "sys/mounts/x", {}, headers={"Content-Type": "application/merge-patch+json"}),
        Step("GET", "sys/policies/acl", params={"list": "1"}),
        Step("GET", "sys/policies/acl", params={"list": "T"}),
        Step("GET", "sys/policies/acl", params={"list": "false"}),
        Step("HEAD", "sys/mounts"),
        Step("HEAD", "sys/seal-status"),
        Step("GET", "sys/key-status", known=K(*KEY_STATUS_EXTRA)),
        Step("POST", "sys/rotate"),
        Step("POST", "sys/rotate/keyring"),
        Step("GET", "sys/key-status", known=K(*KEY_STATUS_EXTRA)),
        Step("GET", "sys/rotate/keyring/status"),
        Step("GET", "sys/leader"),
        Step("GET", "sys/health", known=K(*HEALTH_EXTRA)),
        Step("GET", "sys/health", params={"activecode": "299", "standbyok": "true"}, known=K(*HEALTH_EXTRA)),
        Step("GET", "sys/health", params={"activecode": "x"}),
        Step("HEAD", "sys/health", params={"activecode": "299"}),
        Step("GET", "sys/seal-status", known=K(*SEAL_STATUS_EXTRA)),
    ]
    problems = run(bao, ours, steps)
    assert not problems, "\n".join(problems)


def test_health_codes_openbao_cannot_send(dev_pair: tuple[ServerProcess, ServerProcess]) -> None:
    """Go cannot write a status outside 100..999 (OpenBao drops the connection): documented 400 here.

    OpenBao also ignores ``perfstandbyok``, ``drsecondarycode`` and ``performancestandbycode``; we validate
    them as Vault does (400 on a bad value), which is documented too.
    """
    bao, ours = dev_pair
    with pytest.raises(httpx.HTTPError):
        send(bao, Step("GET", "sys/health", params={"activecode": "42"}))
    for params in ({"drsecondarycode": "x"}, {"performancestandbycode": "x"}, {"perfstandbyok": "x"}):
        assert send(bao, Step("GET", "sys/health", params=params)).status_code == 200, params
    for params in (
        {"activecode": "42"},
        {"sealedcode": "1000"},
        {"drsecondarycode": "x"},
        {"performancestandbycode": "x"},
        {"perfstandbyok": "x"},
    ):
        r = send(ours, Step("GET", "sys/health", params=params))
        assert r.status_code == 400, (params, r.text)
        assert r.json()["errors"], params
