"""Administrator and User against the role table of docs/spec/tokens.md section 4, operation by operation."""

from __future__ import annotations

import pytest

from strongroom.auth.iam import OPERATIONS, IamVerifier, Role
from tests.auth.iam.conftest import KV1, KV2, SYS, TOKEN, TRANSIT, Allowed, request

ALL = set(OPERATIONS)

# (resource, mount, operations a User may run there); the Administrator may run every operation everywhere.
USER_TABLE: list[tuple[str, tuple[str, str, str] | None, set[str]]] = [
    ("secret/data/app/db", KV2, ALL),
    ("secret/metadata/app/", KV2, ALL),
    ("secret/delete/app/db", KV2, ALL),
    ("secret/destroy/app/db", KV2, ALL),
    ("secret/config", KV2, {"read"}),
    ("kv1/config", KV1, ALL),  # in KV v1 "config" is an ordinary secret
    ("kv1/app/db", KV1, ALL),
    ("transit/encrypt/orders", TRANSIT, {"update"}),
    ("transit/decrypt/orders", TRANSIT, {"update"}),
    ("transit/rewrap/orders", TRANSIT, {"update"}),
    ("transit/datakey/plaintext/orders", TRANSIT, {"update"}),
    ("transit/sign/signer/sha2-256", TRANSIT, {"update"}),
    ("transit/verify/signer", TRANSIT, {"update"}),
    ("transit/hmac/mac", TRANSIT, {"update"}),
    ("transit/hash", TRANSIT, {"update"}),
    ("transit/hash/sha2-512", TRANSIT, {"update"}),
    ("transit/random", TRANSIT, {"update"}),
    ("transit/random/32", TRANSIT, {"update"}),
    ("transit/keys/orders", TRANSIT, {"read", "list"}),
    ("transit/keys/", TRANSIT, {"read", "list"}),
    ("transit/keys/orders/rotate", TRANSIT, {"read", "list"}),  # rotate is an update: refused
    ("transit/keys/orders/config", TRANSIT, {"read", "list"}),
    ("transit/export/encryption-key/orders", TRANSIT, set()),
    ("transit/backup/orders", TRANSIT, set()),
    ("transit/restore", TRANSIT, set()),
    ("transit/cache-config", TRANSIT, set()),
    ("transit/wrapping_key", TRANSIT, set()),
    ("transit/encryptx/orders", TRANSIT, set()),  # a prefix is a path segment, not a string prefix
    ("sys/unseal", SYS, set()),
    ("sys/init", SYS, set()),
    ("sys/seal", SYS, set()),
    ("sys/rotate", SYS, set()),
    ("sys/rekey/init", SYS, set()),
    ("sys/mounts/secret", SYS, set()),
    ("sys/policies/acl/app", SYS, set()),
    ("sys/capabilities-self", SYS, set()),
    ("sys/internal/ui/mounts", SYS, {"read"}),
    ("sys/internal/ui/mounts/secret/app/db", SYS, {"read"}),
    ("auth/token/create", TOKEN, set()),
    ("auth/token/create-orphan", TOKEN, set()),
    ("auth/token/roles/app", TOKEN, set()),
    ("auth/token/lookup", TOKEN, set()),
    ("auth/token/lookup-self", TOKEN, ALL),
    ("auth/token/renew-self", TOKEN, ALL),
    ("auth/token/revoke-self", TOKEN, ALL),
    ("cubbyhole/x", ("cubbyhole/", "cubbyhole", ""), set()),
    ("nomount/x", None, set()),
]


@pytest.mark.parametrize(("resource", "mount", "user_ops"), USER_TABLE, ids=[r[0] for r in USER_TABLE])
@pytest.mark.parametrize("operation", OPERATIONS)
def test_role_matrix(
    allowed: Allowed, user_token: str, admin_token: str, resource: str, mount: tuple[str, str, str] | None,
    user_ops: set[str], operation: str,
) -> None:
    req = request(resource, operation, mount or ("", "", ""))
    assert allowed(user_token, req) is (operation in user_ops)
    assert allowed(admin_token, req) is True


def test_transit_key_writes_are_administration(allowed: Allowed, user_token: str, admin_token: str) -> None:
    for resource in ("transit/keys/orders", "transit/keys/orders/rotate", "transit/keys/orders/config"):
        for operation in ("create", "update", "delete"):
            assert not allowed(user_token, request(resource, operation, TRANSIT))
            assert allowed(admin_token, request(resource, operation, TRANSIT))


def test_mount_facts_come_from_the_router_not_the_path(allowed: Allowed, user_token: str) -> None:
    """A User's KV grant follows the mount's type: the same path on a transit mount is refused."""
    assert allowed(user_token, request("apps/data/x", "read", ("apps/", "kv", "2")))
    assert not allowed(user_token, request("apps/data/x", "read", ("apps/", "transit", "")))
    assert not allowed(user_token, request("apps/data/x", "read", ("apps/", "pki", "")))


def test_verified_facts(verifier: IamVerifier, user_token: str, admin_token: str) -> None:
    user = verifier.verify(user_token).facts
    admin = verifier.verify(admin_token).facts
    assert (user.role, user.policies, user.tenant) == (Role.USER, ["tenant-user"], "acme")
    assert (admin.role, admin.policies) == (Role.ADMIN, ["tenant-admin"])
    assert user.expires_at - user.issued_at == 3600
    assert len(user.revocation_ids) == 1


def test_mount_discovery_visibility() -> None:
    assert Role.USER.can_see_mount("kv") and Role.USER.can_see_mount("transit")
    assert not Role.USER.can_see_mount("system") and not Role.USER.can_see_mount("token")
    assert Role.ADMIN.can_see_mount("system") and Role.ADMIN.can_see_mount("pki")
