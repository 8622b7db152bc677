"""Fixtures for the KV tests: a vault with a KV v1 mount at ``kv1/`` and a KV v2 mount at ``kv2/``."""

from __future__ import annotations

import httpx
import orjson
import pytest

from tests.support.vault import InProcessVault


@pytest.fixture
async def kv(vault: InProcessVault) -> InProcessVault:
    """The shared ``vault`` fixture with ``kv1/`` (v1) and ``kv2/`` (v2) mounted."""
    await vault.ok("POST", "sys/mounts/kv1", json={"type": "kv", "options": {"version": "1"}})
    await vault.ok("POST", "sys/mounts/kv2", json={"type": "kv", "options": {"version": "2"}})
    return vault


async def merge_patch(vault: InProcessVault, path: str, body: object, token: str | None = None) -> httpx.Response:
    """Send ``PATCH`` with ``Content-Type: application/merge-patch+json`` (as the Vault CLI does)."""
    headers = {"Content-Type": "application/merge-patch+json", **vault.headers(token)}
    return await vault.client.request("PATCH", "/v1/" + path, headers=headers, content=orjson.dumps(body))
