"""lookup-self / renew-self / revoke-self answers for a biscuit (docs/spec/tokens.md section 7)."""

from __future__ import annotations

import pytest

from strongroom.auth.iam import IamKey, IamVerifier, attenuate, lookup_self_data, refuse_renewal
from strongroom.auth.iam.self_service import RENEW_REFUSAL
from strongroom.errors import InvalidRequest
from tests.auth.iam.conftest import HOUR, NOW

VAULT_LOOKUP_FIELDS = {
    "accessor", "creation_time", "creation_ttl", "display_name", "entity_id", "expire_time", "explicit_max_ttl",
    "id", "issue_time", "meta", "num_uses", "orphan", "path", "policies", "renewable", "ttl", "type",
}


def test_lookup_self_has_vaults_shape(verifier: IamVerifier, admin_token: str) -> None:
    facts = verifier.verify(admin_token).facts
    data = lookup_self_data(facts, admin_token, NOW + 100)
    assert set(data) == VAULT_LOOKUP_FIELDS
    assert data["policies"] == ["tenant-admin"]
    assert data["ttl"] == HOUR - 100
    assert data["creation_ttl"] == data["explicit_max_ttl"] == HOUR
    assert data["renewable"] is False and data["orphan"] is True and data["num_uses"] == 0
    assert data["type"] == "service" and data["accessor"] == ""
    assert data["id"] == admin_token
    assert data["issue_time"] == "2023-11-14T22:13:20.000000000Z"
    assert data["expire_time"] == "2023-11-14T23:13:20.000000000Z"
    assert data["meta"] == {"tenant": "acme", "role": "admin", "revocation_id": facts.revocation_ids[0]}


def test_lookup_self_shows_an_attenuated_expiry(key: IamKey, verifier: IamVerifier, user_token: str) -> None:
    short = attenuate(user_token, key.public_key, ttl=600, now=NOW)
    facts = verifier.verify(short).facts
    data = lookup_self_data(facts, short, NOW + 100)
    assert data["ttl"] == 500 and data["policies"] == ["tenant-user"]
    assert data["expire_time"] == "2023-11-14T22:23:20.000000000Z"
    assert data["meta"]["revocation_id"] == facts.revocation_ids[1]
    assert lookup_self_data(facts, short, NOW + 10_000)["ttl"] == 0


def test_renew_self_is_refused_like_vault() -> None:
    with pytest.raises(InvalidRequest) as info:
        refuse_renewal()
    assert info.value.message == RENEW_REFUSAL == "lease is not renewable"
