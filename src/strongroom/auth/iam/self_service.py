"""What ``auth/token/lookup-self``, ``renew-self`` and ``revoke-self`` answer for a biscuit (spec section 7).

Ansible's ``hashi_vault``, OpenStack Castellan and Vault Agent call these to check and manage their token;
a biscuit answers them from its own facts, without the token store.
"""

from __future__ import annotations

from typing import Any, NoReturn

from strongroom.auth.iam.verify import TokenFacts
from strongroom.clock import rfc3339
from strongroom.errors import InvalidRequest

ISSUE_PATH = "sys/iam/tokens"
RENEW_REFUSAL = "lease is not renewable"
"""Vault's own answer for renewing a non-renewable token (400); clients already know it."""


def lookup_self_data(facts: TokenFacts, token: str, now: float) -> dict[str, Any]:
    """The ``data`` of ``lookup-self`` for the biscuit ``token`` whose verified facts are ``facts``.

    The token text is echoed in ``id``, as Vault does for ``lookup-self`` (the caller sent it).
    """
    lifetime = max(0, facts.expires_at - facts.issued_at)
    return {
        "accessor": "",
        "creation_time": facts.issued_at,
        "creation_ttl": lifetime,
        "display_name": f"iam-{facts.tenant}-{facts.role.value}",
        "entity_id": "",
        "expire_time": rfc3339(facts.shown_expires_at),
        "explicit_max_ttl": lifetime,
        "id": token,
        "issue_time": rfc3339(facts.issued_at),
        "meta": {"tenant": facts.tenant, "role": facts.role.value, "revocation_id": facts.revocation_id},
        "num_uses": 0,
        "orphan": True,
        "path": ISSUE_PATH,
        "policies": facts.policies,
        "renewable": False,
        "ttl": facts.ttl_at(now),
        # Not "batch": clients skip revoke-self for batch tokens, and a biscuit can be revoked.
        "type": "service",
    }


def refuse_renewal() -> NoReturn:
    """``renew-self`` with a biscuit.

    Raises:
        InvalidRequest: always, with Vault's message for a non-renewable token.
    """
    raise InvalidRequest(RENEW_REFUSAL)


def revoke_self_id(facts: TokenFacts) -> str:
    """The revocation id ``revoke-self`` revokes: the token's last block, never its parent's."""
    return facts.revocation_id
