"""Fixtures for the biscuit IAM tests: one IAM key, a verifier over an in-memory revocation list, a clock."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest

from strongroom.auth.iam import (
    IamKey,
    IamRequest,
    IamVerifier,
    InMemoryRevocationList,
    issue_token,
)

NOW = 1_700_000_000.0
TENANT = "acme"
HOUR = 3600.0

KV2 = ("secret/", "kv", "2")
KV1 = ("kv1/", "kv", "1")
TRANSIT = ("transit/", "transit", "")
SYS = ("sys/", "system", "")
TOKEN = ("auth/token/", "token", "")


@pytest.fixture(scope="session")
def key() -> IamKey:
    return IamKey.generate(1)


@pytest.fixture
def revocations() -> InMemoryRevocationList:
    return InMemoryRevocationList()


@pytest.fixture
def verifier(key: IamKey, revocations: InMemoryRevocationList) -> IamVerifier:
    return IamVerifier([key.public_key], revocations)


@pytest.fixture(scope="session")
def user_token(key: IamKey) -> str:
    return issue_token(key, tenant=TENANT, role="user", ttl=HOUR, now=NOW)


@pytest.fixture(scope="session")
def admin_token(key: IamKey) -> str:
    return issue_token(key, tenant=TENANT, role="admin", ttl=HOUR, now=NOW)


def request(
    resource: str,
    operation: str = "read",
    mount: tuple[str, str, str] | None = None,
    *,
    namespace: str = TENANT,
    now: float = NOW + 1,
) -> IamRequest:
    """A request; the mount defaults to the one the resource's first segment names in these tests."""
    if mount is None:
        mount = _mount_of(resource)
    path, kind, version = mount if mount else ("", "", "")
    return IamRequest(namespace, resource, operation, now, path, kind, version)


def _mount_of(resource: str) -> tuple[str, str, str] | None:
    for mount in (TOKEN, KV2, KV1, TRANSIT, SYS):
        if resource.startswith(mount[0]):
            return mount
    return None


def at(req: IamRequest, now: float) -> IamRequest:
    return dataclasses.replace(req, now=now)


Allowed = Callable[[str, IamRequest], bool]


@pytest.fixture
def allowed(verifier: IamVerifier) -> Allowed:
    """Whether ``verifier`` allows the request, with PermissionDenied as the only refusal."""
    from strongroom.errors import PermissionDenied

    def check(token: str, req: IamRequest) -> bool:
        try:
            verifier.authorize(token, req)
        except PermissionDenied:
            return False
        return True

    return check
