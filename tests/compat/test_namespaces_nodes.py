"""Two strongroom server processes over one SQLite file: a tenant's seal is a fact of storage.

Unseal shares may arrive through either node; both serve the unsealed tenant; after a seal returns on
one node, the other answers 503 at once (no message between nodes: it reads the tenant's key copy in every
request's transaction); a rotation on one node is adopted by the other.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.server import ServerProcess, start_strongroom

pytestmark = pytest.mark.slow


def _call(
    server: ServerProcess, method: str, path: str, *, token: str = "", ns: str = "", json: Any = None
) -> httpx.Response:
    headers = {"X-Vault-Token": token} if token else {}
    if ns:
        headers["X-Vault-Namespace"] = ns
    with httpx.Client(base_url=server.addr, timeout=30) as client:
        return client.request(method, "/v1/" + path, headers=headers, json=json)


def _ok(server: ServerProcess, method: str, path: str, **kw: Any) -> Any:
    r = _call(server, method, path, **kw)
    assert 200 <= r.status_code < 300, (server.addr, method, path, r.status_code, r.text, server.log()[-1500:])
    return r.json() if r.status_code != 204 else None


def _admin(server: ServerProcess, ns: str) -> str:
    """An Administrator biscuit of tenant ``ns`` (what its ceremonies inside it need), from the platform."""
    body = _ok(server, "POST", "sys/iam/tokens", token=server.token, json={"tenant": ns, "role": "admin"})
    token: str = body["data"]["token"]
    return token


def _root_token(first: ServerProcess, second: ServerProcess, ns: str, keys: list[str]) -> str:
    """A root token of the (unsealed) tenant ``ns`` by generate-root, its shares sent through both nodes."""
    admin = _admin(first, ns)
    started = _ok(first, "PUT", "sys/generate-root/attempt", ns=ns, token=admin, json={})
    body: dict[str, Any] = {}
    for i, key in enumerate(keys):
        body = _ok((first, second)[i % 2], "PUT", "sys/generate-root/update", ns=ns, token=admin,
                   json={"key": key, "nonce": started["nonce"]})  # fmt: skip
    assert body["complete"] is True
    decoded = _ok(second, "PUT", "sys/decode-token", ns=ns, json={"encoded_token": body["encoded_token"], "otp": started["otp"]})
    token: str = decoded["data"]["token"]
    return token


@pytest.fixture
def nodes(tmp_path: Path) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    store = f"sqlite:///{tmp_path / 'shared.db'}"
    a = start_strongroom(["--storage", store], tmp_path)
    b: ServerProcess | None = None
    try:
        init = _ok(a, "PUT", "sys/init", json={"secret_shares": 1, "secret_threshold": 1})
        a.token, a.keys = init["root_token"], init["keys"]
        b = start_strongroom(["--storage", store], tmp_path)
        b.token, b.keys = a.token, a.keys
        for server in (a, b):
            assert _ok(server, "PUT", "sys/unseal", json={"key": a.keys[0]})["sealed"] is False
        yield a, b
    finally:
        a.kill()
        if b is not None:
            b.kill()


def test_a_tenant_seal_on_one_node_is_seen_by_the_other_at_once(nodes: tuple[ServerProcess, ServerProcess]) -> None:
    a, b = nodes
    seal = 'seal "shamir" { shares = 3 threshold = 2 }'
    tenant = _ok(a, "POST", "sys/namespaces/acme", token=a.token, json={"seal": seal})["data"]
    keys = tenant["key_shares"]
    admin = _admin(b, "acme")
    # Shares through different nodes: for the unseal, then for a root token of the tenant.
    first = _ok(a, "PUT", "sys/unseal", ns="acme", token=admin, json={"key": keys[0]})
    assert first["progress"] == 1
    assert _ok(b, "GET", "sys/seal-status", ns="acme", token=admin)["progress"] == 1
    assert _ok(b, "PUT", "sys/unseal", ns="acme", token=admin, json={"key": keys[1]})["sealed"] is False
    root = _root_token(a, b, "acme", keys[1:])
    # Both nodes serve the tenant.
    _ok(b, "POST", "sys/mounts/kv", ns="acme", token=root, json={"type": "kv", "options": {"version": "2"}})
    _ok(a, "POST", "kv/data/db", ns="acme", token=root, json={"data": {"password": "p1"}})
    assert _ok(b, "GET", "kv/data/db", ns="acme", token=root)["data"]["data"] == {"password": "p1"}
    # The platform's root token reads nothing in the tenant, on either node.
    for server in (a, b):
        assert _call(server, "GET", "kv/data/db", ns="acme", token=a.token).status_code == 403
    # Seal through node A (the tenant's own sys/seal): node B refuses at its very next request.
    assert _call(a, "PUT", "sys/seal", ns="acme", token=root).status_code == 204
    r = _call(b, "GET", "kv/data/db", ns="acme", token=root)
    assert (r.status_code, r.json()) == (503, {"errors": ["Vault is sealed"]})
    r = _call(b, "GET", "acme/kv/data/db", token=root)  # by path prefix too
    assert r.status_code == 503
    assert _ok(b, "GET", "sys/seal-status", ns="acme", token=admin)["sealed"] is True
    # Unseal through B, seal through B's parent endpoint: A refuses.
    _ok(b, "PUT", "sys/unseal", ns="acme", token=admin, json={"key": keys[2]})
    _ok(a, "PUT", "sys/unseal", ns="acme", token=admin, json={"key": keys[0]})
    assert _ok(a, "GET", "kv/data/db", ns="acme", token=root)["data"]["data"] == {"password": "p1"}
    assert _call(b, "PUT", "sys/namespaces/acme/seal", token=b.token).status_code == 204
    assert _call(a, "GET", "kv/data/db", ns="acme", token=root).status_code == 503


def test_a_rotation_on_one_node_is_adopted_by_the_other(nodes: tuple[ServerProcess, ServerProcess]) -> None:
    a, b = nodes
    tenant = _ok(a, "POST", "sys/namespaces/rot", token=a.token, json={"seal": 'seal "shamir" { shares = 1 threshold = 1 }'})
    data = tenant["data"]
    _ok(b, "PUT", "sys/unseal", ns="rot", token=_admin(b, "rot"), json={"key": data["key_shares"][0]})
    root = _root_token(b, a, "rot", data["key_shares"])
    _ok(a, "POST", "sys/mounts/kv", ns="rot", token=root, json={"type": "kv"})
    _ok(b, "PUT", "kv/before", ns="rot", token=root, json={"v": "1"})
    assert _ok(b, "GET", "sys/key-status", ns="rot", token=root)["data"]["term"] == 1
    _ok(a, "PUT", "sys/rotate", ns="rot", token=root)
    assert _ok(b, "GET", "sys/key-status", ns="rot", token=root)["data"]["term"] == 2
    _ok(b, "PUT", "kv/after", ns="rot", token=root, json={"v": "2"})  # written under term 2 by node B
    assert _ok(a, "GET", "kv/after", ns="rot", token=root)["data"] == {"v": "2"}
    assert _ok(a, "GET", "kv/before", ns="rot", token=root)["data"] == {"v": "1"}
    assert _ok(a, "GET", "sys/key-status", token=a.token)["data"]["term"] == 1  # the platform's keyring
