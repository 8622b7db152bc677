"""Helpers for namespace tests: requests with ``X-Vault-Namespace`` and tenants created through the API."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.support.vault import InProcessVault


@dataclass
class Tenant:
    """A tenant created with ``sys/namespaces`` and a seal: its shares, (once made) its own root token, and
    an Administrator biscuit the platform issued for it (what its ceremonies inside it need)."""

    path: str
    keys: list[str]
    root_token: str
    threshold: int
    admin_token: str = ""


@dataclass
class Namespaces:
    """An in-process vault driven with namespace headers."""

    vault: InProcessVault
    tenants: dict[str, Tenant] = field(default_factory=dict)

    async def call(
        self, method: str, path: str, *, token: str | None = None, ns: str = "", **kw: Any
    ) -> httpx.Response:
        """``method /v1/path`` with ``token`` (platform root by default, ``""`` for none) in namespace ``ns``."""
        headers = self.vault.headers(token) if token != "" else {}
        if ns:
            headers["X-Vault-Namespace"] = ns
        headers.update(kw.pop("headers", {}))
        return await self.vault.client.request(method, "/v1/" + path.lstrip("/"), headers=headers, **kw)

    async def ok(self, method: str, path: str, **kw: Any) -> Any:
        """Like :meth:`call` but assert a 2xx; return the JSON body (``None`` for 204)."""
        r = await self.call(method, path, **kw)
        assert 200 <= r.status_code < 300, (method, path, kw.get("ns"), r.status_code, r.text)
        return r.json() if r.status_code != 204 else None

    async def fails(self, status: int, method: str, path: str, **kw: Any) -> list[str]:
        """Assert ``status``; return the error messages."""
        r = await self.call(method, path, **kw)
        assert r.status_code == status, (method, path, kw.get("ns"), r.status_code, r.text)
        errors: list[str] = r.json().get("errors", []) if r.content else []
        return errors

    async def plain(self, name: str, *, ns: str = "", token: str | None = None, **body: Any) -> dict[str, Any]:
        """Create plain namespace ``name`` below ``ns`` with ``token``; return its data."""
        body = await self.ok("POST", f"sys/namespaces/{name}", ns=ns, token=token, json=body)
        data: dict[str, Any] = body["data"]
        return data

    async def tenant(
        self, name: str, *, ns: str = "", shares: int = 3, threshold: int = 2, unseal: bool = True, token: str | None = None
    ) -> Tenant:
        """Create tenant ``name`` below ``ns`` (sealed, initialised); by default unseal it and make its root token."""
        seal = f'seal "shamir" {{ shares = {shares} threshold = {threshold} }}'
        data = (await self.ok("POST", f"sys/namespaces/{name}", ns=ns, token=token, json={"seal": seal}))["data"]
        tenant = Tenant(data["path"], data["key_shares"], "", threshold)
        tenant.admin_token = await self.admin(tenant.path)
        self.tenants[tenant.path] = tenant
        if unseal:
            await self.unseal(tenant)
        return tenant

    async def admin(self, path: str, *, ttl: str = "24h") -> str:
        """An Administrator biscuit for the tenant at ``path``, issued with the platform root token."""
        body = await self.ok("POST", "sys/iam/tokens", json={"tenant": path, "role": "admin", "ttl": ttl})
        token: str = body["data"]["token"]
        return token

    async def unseal(self, tenant: Tenant) -> dict[str, Any]:
        """Unseal ``tenant`` from inside (``sys/unseal`` with its namespace header and its Administrator
        biscuit); the first time, make its root token too."""
        body: dict[str, Any] = {}
        for key in tenant.keys[: tenant.threshold]:
            body = await self.ok("PUT", "sys/unseal", ns=tenant.path, token=tenant.admin_token, json={"key": key})
        assert body["sealed"] is False, body
        if not tenant.root_token:
            tenant.root_token = await self.generate_root(tenant)
        return body

    async def generate_root(self, tenant: Tenant) -> str:
        """A new root token of ``tenant`` (unsealed) from its shareholders' quorum (generate-root with an OTP,
        started and fed with the tenant's Administrator biscuit)."""
        admin = tenant.admin_token
        started = await self.ok("PUT", "sys/generate-root/attempt", ns=tenant.path, token=admin, json={})
        body: dict[str, Any] = {}
        for key in tenant.keys[: tenant.threshold]:
            body = await self.ok(
                "PUT", "sys/generate-root/update", ns=tenant.path, token=admin, json={"key": key, "nonce": started["nonce"]}
            )
        assert body["complete"] is True, body
        decoded = await self.ok(
            "PUT", "sys/decode-token", ns=tenant.path, token="",
            json={"encoded_token": body["encoded_token"], "otp": started["otp"]},
        )  # fmt: skip
        token: str = decoded["data"]["token"]
        return token

    async def token_in(self, ns: str, token: str, policies: list[str], **kw: Any) -> str:
        """Create a token in namespace ``ns`` with ``token``; return it."""
        body = await self.ok("POST", "auth/token/create", ns=ns, token=token, json={"policies": policies, **kw})
        created: str = body["auth"]["client_token"]
        return created
