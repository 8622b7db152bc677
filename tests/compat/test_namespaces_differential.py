"""Differential tests of sys/namespaces: the same request sequences against ``bao server -dev`` (OpenBao 2.7)
and a real ``strongroom server --dev`` process.

Each step goes to both servers. Status codes must be equal and JSON bodies must have the same shape (keys
and JSON types, recursively; values differ by nature: ids, uuids, shares). ``same_message`` steps also
compare the error and warning texts. Where strongroom differs on purpose (docs/spec/namespaces.md section 8)
the step states the difference (``ours``/``theirs`` status, ``known`` shape notation: ``+k`` only we have
key k, ``-k`` only OpenBao), and the test asserts exactly that difference.

Steps may depend on what a server answered before (each server's own key shares and unlock keys): they
then take a callable of the per-server state.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from tests.support.server import ServerProcess, start_openbao_dev, start_strongroom

pytestmark = pytest.mark.slow

State = dict[str, Any]
Dynamic = Any | Callable[[State], Any]


@dataclass(frozen=True)
class Step:
    """One request to both servers."""

    method: str
    path: Dynamic
    body: Dynamic = None
    ns: str = ""
    token: Dynamic = None
    params: dict[str, str] | None = None
    known: frozenset[str] = frozenset()
    same_message: bool = False
    ours: int | None = None
    """A documented status difference: strongroom answers ``ours`` where OpenBao answers ``theirs``."""
    theirs: int | None = None
    save: Callable[[State, Any], None] | None = None
    """Record something of this server's answer for later steps."""
    headers: dict[str, str] = field(default_factory=dict)


def K(*items: str) -> frozenset[str]:
    return frozenset(items)


@dataclass
class Side:
    server: ServerProcess
    state: State = field(default_factory=dict)

    def send(self, step: Step) -> httpx.Response:
        token = step.token(self.state) if callable(step.token) else step.token
        token = "root" if token is None else token
        headers = {"X-Vault-Token": token} if token else {}
        if step.ns:
            headers["X-Vault-Namespace"] = step.ns
        headers.update(step.headers)
        path = step.path(self.state) if callable(step.path) else step.path
        body = step.body(self.state) if callable(step.body) else step.body
        with httpx.Client(base_url=self.server.addr, timeout=60) as client:
            r = client.request(step.method, "/v1/" + path, headers=headers, params=step.params, json=body)
        if step.save is not None and r.content and r.status_code < 300:
            step.save(self.state, r.json())
        return r


def shape_diff(ours: Any, theirs: Any, where: str = "") -> list[str]:
    """``+k``: only strongroom has key k; ``-k``: only OpenBao; ``~k``: JSON types differ."""
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


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__


def _messages(body: Any) -> tuple[Any, Any]:
    if not isinstance(body, dict):
        return None, None
    return body.get("errors"), body.get("warnings")


def run(bao: Side, ours: Side, steps: list[Step]) -> list[str]:
    """Send every step to both servers; return a line per unexpected difference."""
    problems = []
    for i, step in enumerate(steps):
        b, o = bao.send(step), ours.send(step)
        label = f"#{i} {step.method} {step.ns + ':' if step.ns else ''}{step.path if isinstance(step.path, str) else '<dyn>'}"
        if step.ours is not None:
            if (b.status_code, o.status_code) != (step.theirs, step.ours):
                problems.append(
                    f"{label}: documented openbao={step.theirs} ours={step.ours}, got {b.status_code}/{o.status_code}"
                    f" ({o.text[:160]} | {b.text[:160]})"
                )
            continue
        if b.status_code != o.status_code:
            problems.append(f"{label}: status openbao={b.status_code} ours={o.status_code} ({o.text[:200]} | {b.text[:200]})")
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
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Side, Side]]:
    work = tmp_path_factory.mktemp("ns-diff")
    bao = start_openbao_dev(work)
    ours = start_strongroom(["--dev", "--dev-root-token-id", "root", "--storage", "memory://"], work)
    try:
        yield Side(bao), Side(ours)
    finally:
        bao.kill()
        ours.kill()


def _check(pair: tuple[Side, Side], steps: list[Step]) -> None:
    problems = run(pair[0], pair[1], steps)
    assert problems == [], "\n".join(problems)


SEAL_3_2 = {"seal": 'seal "shamir" { shares = 3 threshold = 2 }'}
MERGE = {"Content-Type": "application/merge-patch+json"}


def _keep(name: str) -> Callable[[State, Any], None]:
    def save(state: State, body: Any) -> None:
        state[name] = body["data"]

    return save


def test_plain_namespace_lifecycle(pair: tuple[Side, Side]) -> None:
    _check(pair, [
        Step("POST", "sys/namespaces/d-plain", {"custom_metadata": {"a": "1", "b": "2"}}),
        Step("GET", "sys/namespaces/d-plain"),
        Step("POST", "sys/namespaces/d-plain", {"custom_metadata": {"c": "3"}}),
        Step("POST", "sys/namespaces/d-plain", {}),
        Step("POST", "sys/namespaces/d-plain", {"custom_metadata": {"c": 3}}, same_message=True),
        Step("PATCH", "sys/namespaces/d-plain", {"custom_metadata": {"x": "1", "y": "2"}}, headers=MERGE),
        Step("PATCH", "sys/namespaces/d-plain", {"custom_metadata": {"y": None}}, headers=MERGE),
        Step("PATCH", "sys/namespaces/d-plain", {"custom_metadata": {"x": 1}}, headers=MERGE, same_message=True),
        Step("PATCH", "sys/namespaces/d-none", {"custom_metadata": {"x": "1"}}, headers=MERGE, same_message=True),
        Step("POST", "sys/namespaces/kid", ns="d-plain"),
        Step("POST", "d-plain/sys/namespaces/kid2"),
        Step("LIST", "sys/namespaces", ns="d-plain"),
        Step("LIST", "d-plain/sys/namespaces"),
        Step("GET", "sys/namespaces/kid", ns="d-plain"),
        Step("LIST", "sys/namespaces", ns="d-plain/kid"),
        Step("DELETE", "sys/namespaces/d-plain", same_message=True),
        Step("DELETE", "sys/namespaces/kid", ns="d-plain"),
        Step("DELETE", "sys/namespaces/kid2", ns="d-plain"),
        Step("DELETE", "sys/namespaces/d-plain"),
        Step("GET", "sys/namespaces/d-plain"),
        Step("DELETE", "sys/namespaces/d-plain", same_message=True),
    ])  # fmt: skip


def test_data_inside_a_plain_namespace(pair: tuple[Side, Side]) -> None:
    _check(pair, [
        Step("POST", "sys/namespaces/d-data"),
        Step("POST", "sys/mounts/kv", {"type": "kv", "options": {"version": "2"}}, ns="d-data"),
        Step("POST", "kv/data/app", {"data": {"v": "1"}}, ns="d-data"),
        Step("GET", "d-data/kv/data/app"),
        Step("GET", "kv/data/app", ns="d-data"),
        Step("POST", "sys/namespaces/kv", ns="d-data", same_message=True),  # a mount wins: refused
        Step("PUT", "sys/policies/acl/d-data-reader", {"policy": 'path "d-data/kv/data/*" { capabilities = ["read"] }'}),
    ])  # fmt: skip


@pytest.mark.parametrize(
    ("name", "same"),
    [("sys", True), ("cubbyhole", True), ("root", True), ("a%20b", True), ("a%2Bb", False), ("secret", True)],
)
def test_bad_names(pair: tuple[Side, Side], name: str, same: bool) -> None:
    _check(pair, [Step("POST", f"sys/namespaces/{name}", same_message=same)])


def test_names_over_64_bytes_are_refused_by_strongroom_only(pair: tuple[Side, Side]) -> None:
    name = "x" * 70
    _check(pair, [
        Step("POST", f"sys/namespaces/{name}", ours=400, theirs=200),
        Step("DELETE", f"sys/namespaces/{name}", ours=400, theirs=200),  # OpenBao's exists; ours never did
    ])  # fmt: skip


def test_tenant_seal_lifecycle(pair: tuple[Side, Side]) -> None:
    def share(i: int) -> Callable[[State], Any]:
        return lambda s: {"key": s["t"]["key_shares"][i]}

    _check(pair, [
        Step("POST", "sys/namespaces/d-tenant", SEAL_3_2, save=_keep("t")),
        Step("GET", "sys/namespaces/d-tenant"),
        Step("GET", "sys/namespaces/d-tenant/seal-status"),
        Step("GET", "sys/mounts", ns="d-tenant", same_message=False, ours=503, theirs=503),
        Step("PUT", "sys/namespaces/d-tenant/unseal", share(0)),
        Step("GET", "sys/namespaces/d-tenant/seal-status"),
        # A duplicate share: OpenBao ignores it (200), strongroom refuses it (400), nothing changes.
        Step("PUT", "sys/namespaces/d-tenant/unseal", share(0), ours=400, theirs=200),
        Step("PUT", "sys/namespaces/d-tenant/unseal", {"reset": True}),
        Step("PUT", "sys/namespaces/d-tenant/unseal", share(1)),
        Step("PUT", "sys/namespaces/d-tenant/unseal", share(2)),
        Step("GET", "sys/namespaces/d-tenant/seal-status"),
        Step("PUT", "sys/namespaces/d-tenant/unseal", share(0)),
        # Platform tokens have no authority in a tenant (OpenBao's root token does).
        Step("GET", "sys/mounts", ns="d-tenant", ours=403, theirs=200),
        Step("LIST", "sys/namespaces", ns="d-tenant", ours=403, theirs=404),
        Step("DELETE", "sys/namespaces/d-tenant/delete-sealed", same_message=True),
        Step("PUT", "sys/namespaces/d-tenant/seal"),
        Step("PUT", "sys/namespaces/d-tenant/seal"),
        Step("GET", "sys/namespaces/d-tenant/seal-status"),
        Step("DELETE", "sys/namespaces/d-tenant", same_message=True),
        Step("DELETE", "sys/namespaces/d-tenant/delete-sealed"),
        Step("GET", "sys/namespaces/d-tenant"),
        Step("DELETE", "sys/namespaces/d-tenant/delete-sealed", same_message=True),
    ])  # fmt: skip


def test_an_unsealed_tenant_is_not_deleted_in_one_call(pair: tuple[Side, Side]) -> None:
    _check(pair, [
        Step("POST", "sys/namespaces/d-live", SEAL_3_2, save=_keep("live")),
        Step("PUT", "sys/namespaces/d-live/unseal", lambda s: {"key": s["live"]["key_shares"][0]}),
        Step("PUT", "sys/namespaces/d-live/unseal", lambda s: {"key": s["live"]["key_shares"][1]}),
        # OpenBao deletes the live tenant; strongroom refuses (seal first, then delete-sealed). Last step:
        # the two servers' states differ from here on.
        Step("DELETE", "sys/namespaces/d-live", ours=400, theirs=200),
    ])  # fmt: skip


def _tenant_token(side: Side, name: str, key: str) -> str:
    """A root token of tenant ``name`` on strongroom, from generate-root with its one share (OpenBao's
    platform root token works inside the tenant; strongroom's does not)."""
    with httpx.Client(base_url=side.server.addr, timeout=30) as client:
        # Inside a tenant, generate-root needs its Administrator biscuit, issued by the platform.
        issued = client.post("/v1/sys/iam/tokens", headers={"X-Vault-Token": "root"},
                             json={"tenant": name, "role": "admin"})  # fmt: skip
        headers = {"X-Vault-Namespace": name, "X-Vault-Token": issued.json()["data"]["token"]}
        started = client.put("/v1/sys/generate-root/attempt", headers=headers, json={}).json()
        done = client.put("/v1/sys/generate-root/update", headers=headers,
                          json={"key": key, "nonce": started["nonce"]}).json()  # fmt: skip
        decoded = client.put("/v1/sys/decode-token", headers=headers,
                             json={"encoded_token": done["encoded_token"], "otp": started["otp"]})  # fmt: skip
        token: str = decoded.json()["data"]["token"]
        return token


def test_delete_sealed_with_children_needs_force(pair: tuple[Side, Side]) -> None:
    bao, ours = pair
    _check(pair, [
        Step("POST", "sys/namespaces/d-fz", {"seal": 'seal "shamir" { shares = 1 threshold = 1 }'}, save=_keep("fz")),
        Step("PUT", "sys/namespaces/d-fz/unseal", lambda s: {"key": s["fz"]["key_shares"][0]}),
    ])  # fmt: skip
    ours.state["fz_token"] = _tenant_token(ours, "d-fz", ours.state["fz"]["key_shares"][0])
    _check(pair, [
        Step("POST", "sys/namespaces/kid", ns="d-fz", token=lambda s: s.get("fz_token", "root")),
        Step("PUT", "sys/namespaces/d-fz/seal"),
        Step("DELETE", "sys/namespaces/d-fz/delete-sealed", same_message=True),
        Step("DELETE", "sys/namespaces/d-fz/delete-sealed", params={"force": "true"}),
        Step("GET", "sys/namespaces/d-fz"),
    ])  # fmt: skip
    assert "fz_token" not in bao.state


def test_wrong_shares_reset_the_progress(pair: tuple[Side, Side]) -> None:
    _check(pair, [
        Step("POST", "sys/namespaces/d-w1", SEAL_3_2, save=_keep("w1")),
        Step("POST", "sys/namespaces/d-w2", SEAL_3_2, save=_keep("w2")),
        Step("PUT", "sys/namespaces/d-w1/unseal", lambda s: {"key": s["w2"]["key_shares"][0]}),
        Step("PUT", "sys/namespaces/d-w1/unseal", lambda s: {"key": s["w2"]["key_shares"][1]}),
        Step("GET", "sys/namespaces/d-w1/seal-status"),
        Step("PUT", "sys/namespaces/d-w1/unseal", {"key": "abcd"}),
        Step("PUT", "sys/namespaces/d-w1/unseal", {"key": "ab" * 40}, same_message=True),
        Step("PUT", "sys/namespaces/d-w1/unseal", {"key": ""}, ours=400, theirs=500),
        Step("DELETE", "sys/namespaces/d-w1/delete-sealed"),
        Step("DELETE", "sys/namespaces/d-w2/delete-sealed"),
    ])  # fmt: skip


def test_seal_endpoints_on_plain_and_missing_namespaces(pair: tuple[Side, Side]) -> None:
    _check(pair, [
        Step("POST", "sys/namespaces/d-p"),
        Step("GET", "sys/namespaces/d-p/seal-status", same_message=True),
        Step("PUT", "sys/namespaces/d-p/unseal", {"key": "ab" * 33}, same_message=True),
        Step("PUT", "sys/namespaces/d-p/seal", ours=400, theirs=204),
        Step("DELETE", "sys/namespaces/d-p/delete-sealed", same_message=True),
        Step("GET", "sys/namespaces/d-none/seal-status", ours=400, theirs=500),
        Step("PUT", "sys/namespaces/d-none/unseal", {"key": "ab" * 33}, ours=400, theirs=500),
        Step("PUT", "sys/namespaces/d-none/seal", same_message=True),
        Step("DELETE", "sys/namespaces/d-none/delete-sealed", same_message=True),
        # An unknown namespace: OpenBao says 404 "namespace not found", strongroom answers as sealed.
        Step("GET", "sys/mounts", ns="d-none", ours=503, theirs=404),
        Step("DELETE", "sys/namespaces/d-p"),
    ])  # fmt: skip


@pytest.mark.parametrize(
    "seal",
    [
        'seal "shamir" { shares = 0 threshold = 0 }',
        'seal "shamir" { }',
        'seal "shamir" { shares = 2 threshold = 3 }',
        'seal "shamir" { shares = 3 threshold = 1 }',
        'seal "shamir" { shares = 300 threshold = 2 }',
    ],
)
def test_bad_seal_config_values(pair: tuple[Side, Side], seal: str) -> None:
    _check(pair, [Step("POST", "sys/namespaces/d-s", {"seal": seal}, same_message=True)])


@pytest.mark.parametrize(
    "seal",
    ['seal "pkcs11" { shares = 3 threshold = 2 }', "", "garbage {", 'seal "shamir" { shares = "x" threshold = 1 }'],
)
def test_unparsable_seal_configs_are_400_not_500(pair: tuple[Side, Side], seal: str) -> None:
    _check(pair, [Step("POST", "sys/namespaces/d-s", {"seal": seal}, ours=400, theirs=500)])


def test_existing_namespace_seal_config_cannot_change(pair: tuple[Side, Side]) -> None:
    _check(pair, [
        Step("POST", "sys/namespaces/d-e"),
        Step("POST", "sys/namespaces/d-e", SEAL_3_2, same_message=True),
        Step("DELETE", "sys/namespaces/d-e"),
    ])  # fmt: skip


def test_api_lock(pair: tuple[Side, Side]) -> None:
    def keep_key(state: State, body: Any) -> None:
        state["unlock"] = body["data"]["unlock_key"]

    _check(pair, [
        Step("POST", "sys/namespaces/d-lock"),
        Step("POST", "sys/namespaces/kid", ns="d-lock"),
        Step("PUT", "sys/namespaces/api-lock/lock/d-lock", save=keep_key),
        Step("GET", "sys/namespaces/d-lock"),
        Step("GET", "sys/mounts", ns="d-lock", same_message=True),
        Step("GET", "sys/mounts", ns="d-lock/kid", same_message=True),
        Step("PUT", "sys/namespaces/api-lock/lock/d-lock", same_message=True),
        Step("PUT", "sys/namespaces/api-lock/lock/d-lock/kid", same_message=True),
        Step("PUT", "sys/namespaces/api-lock/unlock/d-lock", {"unlock_key": "wrong"}, same_message=True),
        Step("PUT", "sys/namespaces/api-lock/unlock/d-lock/kid", {"unlock_key": "x"}, same_message=True),
        Step("PUT", "sys/namespaces/api-lock/unlock", lambda s: {"unlock_key": s["unlock"]}, ns="d-lock"),
        Step("GET", "sys/namespaces/d-lock"),
        Step("PUT", "sys/namespaces/api-lock/lock", ns="d-lock"),
        Step("PUT", "sys/namespaces/api-lock/unlock/d-lock", {}, same_message=True),
        Step("PUT", "sys/namespaces/api-lock/unlock/d-lock", {}, same_message=True),
        Step("PUT", "sys/namespaces/api-lock/lock", same_message=True),
        Step("PUT", "sys/namespaces/api-lock/lock/d-nope", same_message=True),
        Step("PUT", "sys/namespaces/api-lock/unlock/d-nope", {"unlock_key": "x"}, same_message=True),
        Step("DELETE", "sys/namespaces/kid", ns="d-lock"),
        Step("DELETE", "sys/namespaces/d-lock"),
    ])  # fmt: skip
