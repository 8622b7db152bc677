"""Every transit route asks for the capability Vault asks for, and only that one.

For each route a token whose policy grants exactly the expected capability on the path gets through the
ACL (any answer but 403), and a token granting every other capability on it gets a 403. Writes are
``update`` except ``encrypt`` of a missing key, which creates it (``create``, Vault's existence check);
``keys/:name`` has no existence check in Vault, so creating a key is ``update``, as there.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.engines.transit.conftest import b64
from tests.support.vault import InProcessVault

CAPABILITIES = ("create", "read", "update", "delete", "list", "patch")

ROUTES: list[tuple[str, str, dict[str, Any] | None, str]] = [
    ("POST", "keys/new", {}, "update"),
    ("POST", "keys/k", {}, "update"),
    ("GET", "keys/k", None, "read"),
    ("DELETE", "keys/k", None, "delete"),
    ("LIST", "keys", None, "list"),
    ("POST", "keys/k/config", {"deletion_allowed": True}, "update"),
    ("POST", "keys/k/rotate", {}, "update"),
    ("POST", "keys/k/trim", {"min_available_version": 1}, "update"),
    ("POST", "encrypt/k", {"plaintext": b64("x")}, "update"),
    ("POST", "encrypt/missing", {"plaintext": b64("x")}, "create"),
    ("POST", "decrypt/k", {"ciphertext": "vault:v1:AAAA"}, "update"),
    ("POST", "rewrap/k", {"ciphertext": "vault:v1:AAAA"}, "update"),
    ("POST", "datakey/plaintext/k", {}, "update"),
    ("POST", "datakey/wrapped/k", {}, "update"),
    ("POST", "random", {}, "update"),
    ("POST", "random/platform/16", {}, "update"),
    ("POST", "hash", {"input": b64("x")}, "update"),
    ("POST", "hash/sha2-512", {"input": b64("x")}, "update"),
    ("POST", "hmac/k", {"input": b64("x")}, "update"),
    ("POST", "hmac/k/sha2-512", {"input": b64("x")}, "update"),
    ("POST", "sign/ed", {"input": b64("x")}, "update"),
    ("POST", "sign/ed/sha2-512", {"input": b64("x")}, "update"),
    ("POST", "verify/ed", {"input": b64("x"), "signature": "vault:v1:AAAA"}, "update"),
    ("POST", "verify/k/sha2-256", {"input": b64("x"), "hmac": "vault:v1:AAAA"}, "update"),
    ("GET", "export/encryption-key/k", None, "read"),
    ("GET", "export/public-key/ed/latest", None, "read"),
    ("GET", "backup/k", None, "read"),
    ("POST", "restore", {"backup": b64("{}")}, "update"),
    ("POST", "restore/other", {"backup": b64("{}")}, "update"),
    ("GET", "wrapping_key", None, "read"),
    ("POST", "keys/imported/import", {"ciphertext": b64("x")}, "update"),
    ("POST", "keys/k/import_version", {"ciphertext": b64("x")}, "update"),
    ("GET", "cache-config", None, "read"),
    ("POST", "cache-config", {"size": 10}, "update"),
    ("GET", "config/keys", None, "read"),
    ("POST", "config/keys", {"disable_upsert": False}, "update"),
]


async def _token(v: InProcessVault, name: str, path: str, capabilities: list[str]) -> str:
    caps = ", ".join(f'"{c}"' for c in capabilities)
    await v.ok("PUT", f"sys/policies/acl/{name}", json={"policy": f'path "transit/{path}" {{ capabilities = [{caps}] }}'})
    return await v.token([name])


@pytest.mark.parametrize(("method", "path", "body", "capability"), ROUTES,
                         ids=[f"{m} {p}" for m, p, _, _ in ROUTES])
async def test_each_route_needs_its_vault_capability(
    transit: InProcessVault, method: str, path: str, body: dict[str, Any] | None, capability: str,
) -> None:
    await transit.ok("POST", "transit/keys/k", json={"exportable": True, "allow_plaintext_backup": True})
    await transit.ok("POST", "transit/keys/ed", json={"type": "ed25519"})
    acl_path = path + "/" if method == "LIST" else path
    allowed = await _token(transit, "only", acl_path, [capability])
    others = await _token(transit, "others", acl_path, [c for c in CAPABILITIES if c != capability])
    kw: dict[str, Any] = {"json": body} if body is not None else {}
    # The refusal first: the allowed call may change what the path is (encrypt creates the key).
    r = await transit.call(method, "transit/" + path, others, **kw)
    assert r.status_code == 403, (r.status_code, r.text)
    r = await transit.call(method, "transit/" + path, allowed, **kw)
    assert r.status_code != 403, (r.status_code, r.text)


async def test_an_upsert_with_update_only_writes_nothing(transit: InProcessVault) -> None:
    token = await _token(transit, "update-only", "encrypt/*", ["update"])
    r = await transit.call("POST", "transit/encrypt/fresh", token, json={"plaintext": b64("x")})
    assert r.status_code == 403
    assert (await transit.call("GET", "transit/keys/fresh")).status_code == 404
