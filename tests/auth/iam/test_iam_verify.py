"""Verification and the token-level refusals: expiry, forgery, tampering, tenants, key ids, garbage.

Every refusal must be PermissionDenied with the fixed message, whatever the input.
"""

from __future__ import annotations

import base64
import pickle
import random
from datetime import UTC, datetime

import biscuit_auth
import pytest

from strongroom.auth.iam import (
    TOKEN_PREFIX,
    IamKey,
    IamVerifier,
    InMemoryRevocationList,
    is_biscuit_token,
    issue_token,
)
from strongroom.auth.iam.text import MAX_TOKEN_CHARS
from strongroom.errors import InvalidRequest, PermissionDenied
from tests.auth.iam.conftest import HOUR, KV2, NOW, TENANT, Allowed, at, request

READ = request("secret/data/app/db", "read", KV2)


def denied(verifier: IamVerifier, token: str, req=READ) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(PermissionDenied) as info:
        verifier.authorize(token, req)
    assert info.value.message == "permission denied"
    exc = info.value  # no library error chained to it (it would show in logs and tracebacks)
    assert exc.__cause__ is None and (exc.__context__ is None or exc.__suppress_context__)


def test_prefix_classifies_tokens() -> None:
    assert TOKEN_PREFIX == "sb."
    assert is_biscuit_token("sb.AAAA")
    for other in ("hvs.CAESIJ", "s.abcdef", "hvb.x", "root", "", "SB.x", "sb"):
        assert not is_biscuit_token(other)


def test_issued_token_is_prefixed_base64url(user_token: str) -> None:
    body = user_token.removeprefix(TOKEN_PREFIX)
    assert user_token.startswith(TOKEN_PREFIX) and "." not in body
    base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))


def test_expiry_with_injected_clock(verifier: IamVerifier, user_token: str) -> None:
    expires = verifier.verify(user_token).facts.expires_at
    assert expires == NOW + HOUR
    verifier.authorize(user_token, at(READ, expires - 1))
    verifier.authorize(user_token, at(READ, expires - 0.001))
    denied(verifier, user_token, at(READ, expires))
    denied(verifier, user_token, at(READ, expires + 86400))


def test_expiry_is_enforced_by_the_datalog_too(key: IamKey, verifier: IamVerifier) -> None:
    """A token whose authority block lacks ``expiry`` is refused even though nothing else is wrong."""
    builder = biscuit_auth.BiscuitBuilder('tenant("acme"); role("admin"); issued(2023-01-01T00:00:00Z);')
    builder.set_root_key_id(key.key_id)
    token = TOKEN_PREFIX + builder.build(key.biscuit_private_key).to_base64()
    denied(verifier, token)


@pytest.mark.parametrize(
    "authority",
    [
        'tenant("acme"); tenant("other"); role("user"); issued({i}); expiry({e});',
        'tenant("acme"); role("user"); role("admin"); issued({i}); expiry({e});',
        'tenant("acme"); role("superuser"); issued({i}); expiry({e});',
        'tenant("acme"); issued({i}); expiry({e});',
        'tenant(42); role("user"); issued({i}); expiry({e});',
        'tenant("acme"); role("user"); issued({i}); expiry("tomorrow");',
    ],
)
def test_malformed_authority_blocks_are_refused(key: IamKey, verifier: IamVerifier, authority: str) -> None:
    """Even signed by the IAM key, an authority block must have exactly the documented facts."""
    params = {"i": datetime.fromtimestamp(NOW, UTC), "e": datetime.fromtimestamp(NOW + HOUR, UTC)}
    builder = biscuit_auth.BiscuitBuilder(authority, params)
    builder.set_root_key_id(key.key_id)
    denied(verifier, TOKEN_PREFIX + builder.build(key.biscuit_private_key).to_base64())


def test_forged_token_signed_by_another_key(verifier: IamVerifier) -> None:
    forger = IamKey.generate(1)  # same key id, other key
    denied(verifier, issue_token(forger, tenant=TENANT, role="admin", ttl=HOUR, now=NOW))


def test_unknown_root_key_id(key: IamKey) -> None:
    other_id = IamKey.from_bytes(b"\x01\x00\x00\x00\x07" + key.to_bytes().reveal()[5:])
    verifier = IamVerifier([key.public_key], InMemoryRevocationList())
    denied(verifier, issue_token(other_id, tenant=TENANT, role="user", ttl=HOUR, now=NOW))


def test_missing_root_key_id_is_refused(key: IamKey, verifier: IamVerifier) -> None:
    params = {"i": datetime.fromtimestamp(NOW, UTC), "e": datetime.fromtimestamp(NOW + HOUR, UTC)}
    builder = biscuit_auth.BiscuitBuilder(
        'tenant("acme"); role("user"); issued({i}); expiry({e});', params
    )
    denied(verifier, TOKEN_PREFIX + builder.build(key.biscuit_private_key).to_base64())


def test_key_rotation_accepts_every_listed_key() -> None:
    old, new = IamKey.generate(1), IamKey.generate(2)
    verifier = IamVerifier([old.public_key, new.public_key], InMemoryRevocationList())
    for signer in (old, new):
        verifier.authorize(issue_token(signer, tenant=TENANT, role="user", ttl=HOUR, now=NOW), READ)
    retired = IamVerifier([new.public_key], InMemoryRevocationList())
    denied(retired, issue_token(old, tenant=TENANT, role="user", ttl=HOUR, now=NOW))


def test_tampered_tokens_are_refused(verifier: IamVerifier, user_token: str) -> None:
    """Flip bits all over the serialised token: each variant is refused (or, if the flip landed in
    padding-like slack that decodes to the same bytes, is the same token)."""
    raw = bytearray(base64.urlsafe_b64decode(user_token[3:] + "=" * (-len(user_token[3:]) % 4)))
    rng = random.Random(4)
    positions = sorted({rng.randrange(len(raw)) for _ in range(120)} | {0, len(raw) - 1})
    for pos in positions:
        tampered = bytearray(raw)
        tampered[pos] ^= 1 << rng.randrange(8)
        text = TOKEN_PREFIX + base64.urlsafe_b64encode(bytes(tampered)).decode().rstrip("=")
        denied(verifier, text)


def test_tenant_fact_cannot_be_replaced(key: IamKey, verifier: IamVerifier) -> None:
    """Replacing "acme" by "acmf" inside the signed bytes breaks the signature. (Role names are symbols of
    biscuit's default table, not text in the token; the bit flips above cover them.)"""
    token = issue_token(key, tenant="acme", role="user", ttl=HOUR, now=NOW)
    raw = base64.urlsafe_b64decode(token[3:] + "=" * (-len(token[3:]) % 4))
    assert raw.count(b"acme") == 1
    forged = TOKEN_PREFIX + base64.urlsafe_b64encode(raw.replace(b"acme", b"acmf")).decode()
    denied(verifier, forged, request("secret/data/app/db", "read", KV2, namespace="acmf"))


def test_wrong_tenant(verifier: IamVerifier, user_token: str, admin_token: str) -> None:
    for token in (user_token, admin_token):
        for namespace in ("other", "acme/child", "", "acm", "acmex"):
            denied(verifier, token, request("secret/data/app/db", "read", KV2, namespace=namespace))
    # Leading/trailing slashes are how namespaces are sometimes written: the same namespace.
    verifier.authorize(user_token, request("secret/data/x", "read", KV2, namespace="acme/"))


def test_nested_tenant(key: IamKey, verifier: IamVerifier) -> None:
    token = issue_token(key, tenant="org/acme", role="admin", ttl=HOUR, now=NOW)
    verifier.authorize(token, request("sys/unseal", "update", namespace="org/acme"))
    denied(verifier, token, request("sys/unseal", "update", namespace="org"))


@pytest.mark.parametrize(
    "resource",
    ["secret/data/app/../../sys/seal", "secret/data/./x", "secret//data/x", "/secret/data/x", "", "secret/data/\nx",
     "secret/data/x\x00", "a" * 5000],
)
def test_non_canonical_resources_are_refused(allowed: Allowed, admin_token: str, resource: str) -> None:
    assert not allowed(admin_token, request(resource, "read", KV2))


def test_unknown_operation_is_a_caller_bug(verifier: IamVerifier, user_token: str) -> None:
    with pytest.raises(ValueError, match="unknown operation"):
        verifier.authorize(user_token, request("secret/data/x", "write", KV2))


GARBAGE = [
    "", "sb.", "sb.=", "sb.====", "sb.AAAA", "sb." + "A" * 100, "sb.!!!!", "sb.AA AA", "sb.\x00", "sb.é",
    "hvs.CAESIJ", "root", "sb." + "A" * (MAX_TOKEN_CHARS + 1), "sb.CAES", "sb." + "_" * 64, "sb.-",
]


@pytest.mark.parametrize("token", GARBAGE)
def test_garbage_is_permission_denied(verifier: IamVerifier, token: str) -> None:
    denied(verifier, token)
    with pytest.raises(PermissionDenied):
        verifier.verify(token)


def test_random_bytes_are_permission_denied(verifier: IamVerifier, user_token: str) -> None:
    rng = random.Random(7)
    raw = base64.urlsafe_b64decode(user_token[3:] + "=" * (-len(user_token[3:]) % 4))
    for size in (1, 2, 8, 33, 64, 200, 600):
        for _ in range(20):
            blob = bytes(rng.randrange(256) for _ in range(size))
            denied(verifier, TOKEN_PREFIX + base64.urlsafe_b64encode(blob).decode())
    for cut in range(0, len(raw), 7):  # every truncation of a real token
        denied(verifier, TOKEN_PREFIX + base64.urlsafe_b64encode(raw[:cut]).decode())


def test_non_string_token_is_permission_denied(verifier: IamVerifier) -> None:
    for token in (None, b"sb.AAAA", 42):
        with pytest.raises(PermissionDenied):
            verifier.verify(token)  # type: ignore[arg-type]


def test_cache_still_checks_time_and_revocation(
    verifier: IamVerifier, revocations: InMemoryRevocationList, user_token: str
) -> None:
    """A token verified (and cached) once is refused as soon as it expires or is revoked."""
    verifier.authorize(user_token, READ)
    verified = verifier.verify(user_token)
    assert verifier.verify(user_token) is verified  # cached
    denied(verifier, user_token, at(READ, NOW + HOUR))
    revocations.revoke(verified.facts.revocation_ids[0])
    denied(verifier, user_token)


def test_failures_are_not_cached(key: IamKey, user_token: str) -> None:
    """A verifier refuses a token whose key it does not accept, and a new verifier that does accepts it:
    nothing about the refusal is remembered (each verifier has its own cache)."""
    stranger = IamVerifier([IamKey.generate(1).public_key], InMemoryRevocationList())
    denied(stranger, user_token)
    denied(stranger, user_token)
    IamVerifier([key.public_key], InMemoryRevocationList()).authorize(user_token, READ)


def test_issue_rejects_bad_input(key: IamKey) -> None:
    for kwargs in (
        {"tenant": "", "role": "user", "ttl": HOUR},
        {"tenant": "/acme", "role": "user", "ttl": HOUR},
        {"tenant": "acme/", "role": "user", "ttl": HOUR},
        {"tenant": "ac\nme", "role": "user", "ttl": HOUR},
        {"tenant": "acme", "role": "root", "ttl": HOUR},
        {"tenant": "acme", "role": "user", "ttl": 0},
        {"tenant": "acme", "role": "user", "ttl": -5},
        {"tenant": "acme", "role": "user", "ttl": float("inf")},
        {"tenant": "acme", "role": "user", "ttl": float("nan")},
    ):
        with pytest.raises(InvalidRequest):
            issue_token(key, now=NOW, **kwargs)  # type: ignore[arg-type]


def test_tenant_name_cannot_inject_datalog(key: IamKey, verifier: IamVerifier) -> None:
    tenant = 'x"); role("admin'
    token = issue_token(key, tenant=tenant, role="user", ttl=HOUR, now=NOW)
    facts = verifier.verify(token).facts
    assert (facts.tenant, facts.role.value) == (tenant, "user")
    denied(verifier, token, request("sys/seal", "update", namespace=tenant))


def test_verified_token_and_key_reprs_show_no_secret(key: IamKey, user_token: str, verifier: IamVerifier) -> None:
    secret_hex = key.to_bytes().reveal()[5:].hex()
    for text in (repr(key), str(key), repr(key.to_bytes()), repr(verifier.verify(user_token))):
        assert secret_hex not in text and user_token[3:40] not in text
    with pytest.raises(TypeError):
        pickle.dumps(key)
