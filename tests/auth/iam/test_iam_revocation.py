"""Revocation by revocation id: a revoked token takes every token attenuated from it along."""

from __future__ import annotations

import pytest

from strongroom.auth.iam import (
    IamKey,
    IamVerifier,
    InMemoryRevocationList,
    NothingRevoked,
    attenuate,
    revoke_self_id,
)
from strongroom.errors import PermissionDenied, StorageUnavailable
from tests.auth.iam.conftest import KV2, Allowed, request

READ = request("secret/data/app/x", "read", KV2)


def test_revoking_a_parent_revokes_its_attenuated_children(
    key: IamKey, verifier: IamVerifier, revocations: InMemoryRevocationList, allowed: Allowed, user_token: str
) -> None:
    child = attenuate(user_token, key.public_key, paths=["secret/data/app/"])
    grandchild = attenuate(child, key.public_key, operations=["read"])
    ids = [verifier.verify(t).facts.revocation_ids for t in (user_token, child, grandchild)]
    assert ids[1][:1] == ids[0] and ids[2][:2] == ids[1]  # children carry the parent's ids
    assert all(allowed(t, READ) for t in (user_token, child, grandchild))
    revocations.revoke(ids[0][0].upper())  # ids compare case-insensitively
    assert not any(allowed(t, READ) for t in (user_token, child, grandchild))


def test_revoking_a_child_leaves_parent_and_siblings(
    key: IamKey, verifier: IamVerifier, revocations: InMemoryRevocationList, allowed: Allowed, user_token: str
) -> None:
    child = attenuate(user_token, key.public_key, paths=["secret/data/app/"])
    sibling = attenuate(user_token, key.public_key, paths=["secret/data/app/"])
    grandchild = attenuate(child, key.public_key, operations=["read"])
    revocations.revoke(revoke_self_id(verifier.verify(child).facts))
    assert not allowed(child, READ) and not allowed(grandchild, READ)
    assert allowed(user_token, READ) and allowed(sibling, READ)


def test_revoke_self_id_is_the_last_block(key: IamKey, verifier: IamVerifier, user_token: str) -> None:
    child = attenuate(user_token, key.public_key)
    facts = verifier.verify(child).facts
    assert revoke_self_id(facts) == facts.revocation_ids[-1] != facts.revocation_ids[0]
    assert revoke_self_id(verifier.verify(user_token).facts) == facts.revocation_ids[0]


def test_per_request_revocation_list_overrides_the_default(
    verifier: IamVerifier, allowed: Allowed, user_token: str
) -> None:
    """The server passes the list it read in the request's transaction."""
    revoked = InMemoryRevocationList([verifier.verify(user_token).facts.revocation_id])
    assert allowed(user_token, READ)
    with pytest.raises(PermissionDenied):
        verifier.authorize(user_token, READ, revocations=revoked)
    verifier.authorize(user_token, READ, revocations=NothingRevoked())


def test_storage_errors_are_not_turned_into_denials(key: IamKey, user_token: str) -> None:
    class Down:
        def is_revoked(self, ids: object) -> bool:
            raise StorageUnavailable("store down")

    verifier = IamVerifier([key.public_key], Down())
    with pytest.raises(StorageUnavailable):
        verifier.authorize(user_token, READ)
