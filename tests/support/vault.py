"""An in-process strongroom for API tests: a node on a memory store, initialised and unsealed.

``InProcessVault`` drives the real ASGI application through httpx's ASGI transport, so tests exercise
the same path as HTTP clients (body parsing, routing, ACL, one transaction per call, error mapping).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from strongroom.api.app import VaultApp
from strongroom.clock import FakeClock
from strongroom.core.node import Node, NodeSettings
from strongroom.storage.base import Store
from strongroom.storage.memory import MemoryStore


@dataclass
class InProcessVault:
    """A running in-process vault and an HTTP client bound to it."""

    node: Node
    app: VaultApp
    client: httpx.AsyncClient
    clock: FakeClock
    keys: list[str]
    root_token: str

    def headers(self, token: str | None = None) -> dict[str, str]:
        """Headers carrying ``token`` (default: the root token)."""
        return {"X-Vault-Token": self.root_token if token is None else token}

    async def call(self, method: str, path: str, token: str | None = None, **kw: Any) -> httpx.Response:
        """Send ``method`` to ``/v1/{path}`` with ``token`` (root by default; ``""`` for none)."""
        headers = self.headers(token) if token != "" else {}
        return await self.client.request(method, "/v1/" + path.lstrip("/"), headers=headers, **kw)

    async def ok(self, method: str, path: str, token: str | None = None, **kw: Any) -> Any:
        """Like :meth:`call` but assert a 2xx status; return the decoded body (``None`` for 204)."""
        r = await self.call(method, path, token, **kw)
        assert 200 <= r.status_code < 300, (method, path, r.status_code, r.text)
        return r.json() if r.status_code != 204 else None

    async def token(self, policies: list[str], **kw: Any) -> str:
        """Create a child token of the root token with ``policies``; return it."""
        body = await self.ok("POST", "auth/token/create", json={"policies": policies, **kw})
        token: str = body["auth"]["client_token"]
        return token


async def start_vault(
    store: Store | None = None,
    *,
    shares: int = 3,
    threshold: int = 2,
    settings: NodeSettings | None = None,
    unseal: bool = True,
) -> InProcessVault:
    """Initialise a fresh vault through the API and (by default) unseal it."""
    clock = FakeClock()
    node = Node(store or MemoryStore(), clock=clock, settings=settings)
    app = VaultApp(node)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://strongroom.test")
    r = await client.put("/v1/sys/init", json={"secret_shares": shares, "secret_threshold": threshold})
    assert r.status_code == 200, r.text
    body = r.json()
    vault = InProcessVault(node, app, client, clock, body["keys"], body["root_token"])
    if unseal:
        for key in body["keys"][:threshold]:
            r = await client.put("/v1/sys/unseal", json={"key": key})
            assert r.status_code == 200, r.text
        assert r.json()["sealed"] is False
    return vault
