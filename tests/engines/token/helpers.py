"""Small helpers shared by the token endpoint tests (all through the in-process HTTP API)."""

from __future__ import annotations

from typing import Any

from tests.support.vault import InProcessVault

AUTH_KEYS = {
    "client_token", "accessor", "policies", "token_policies", "metadata", "lease_duration", "renewable",
    "entity_id", "token_type", "orphan", "mfa_requirement", "num_uses",
}  # fmt: skip
LOOKUP_KEYS = {
    "accessor", "creation_time", "creation_ttl", "display_name", "entity_id", "expire_time", "explicit_max_ttl",
    "id", "issue_time", "meta", "num_uses", "orphan", "path", "policies", "renewable", "ttl", "type",
}  # fmt: skip
DEFAULT_TTL = 2764800


async def create(
    vault: InProcessVault, token: str | None = None, path: str = "create", **body: Any
) -> dict[str, Any]:
    """POST ``auth/token/{path}`` and return the whole response body (asserting 200)."""
    r = await vault.call("POST", f"auth/token/{path}", token=token, json=body)
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


async def new_token(vault: InProcessVault, token: str | None = None, **body: Any) -> str:
    """Create a token and return its text."""
    made = await create(vault, token, **body)
    text: str = made["auth"]["client_token"]
    return text


async def lookup(vault: InProcessVault, token: str) -> dict[str, Any]:
    """Return the lookup data of ``token`` (looked up by root)."""
    body = await vault.ok("POST", "auth/token/lookup", json={"token": token})
    data: dict[str, Any] = body["data"]
    return data


async def error(
    vault: InProcessVault, method: str, path: str, status: int, token: str | None = None, **kw: Any
) -> str:
    """Send a request that must fail with ``status``; return the joined error messages."""
    r = await vault.call(method, path, token=token, **kw)
    assert r.status_code == status, (r.status_code, r.text)
    return "; ".join(r.json()["errors"])


async def policy(vault: InProcessVault, name: str, text: str) -> None:
    """Write an ACL policy."""
    await vault.ok("PUT", f"sys/policies/acl/{name}", json={"policy": text})


CREATOR = 'path "auth/token/*" { capabilities = ["create", "update", "read", "list"] }'
SUDO = 'path "auth/token/*" { capabilities = ["create", "update", "read", "list", "sudo"] }'
