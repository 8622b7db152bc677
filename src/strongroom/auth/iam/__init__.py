"""The platform IAM: biscuit tokens for tenants (docs/spec/tokens.md).

* :mod:`.signing`: the IAM key pair (``IamKey``; its private half leaves only as ``SecretBytes``).
* :mod:`.issue`: Administrator and User tokens for a tenant.
* :mod:`.verify`: ``IamVerifier``: verify a token, then authorize each request (``IamRequest``).
* :mod:`.attenuate`: offline attenuation by path prefix, operation and lifetime; ``inspect``.
* :mod:`.revocation`: the ``RevocationList`` protocol.
* :mod:`.self_service`: ``lookup-self``/``renew-self``/``revoke-self`` answers for a biscuit.
* :mod:`.text`: the ``sb.`` token text.

Every refusal of a token is :class:`~strongroom.errors.PermissionDenied` without detail.
"""

from strongroom.auth.iam.attenuate import attenuate, inspect, root_key_id
from strongroom.auth.iam.issue import issue_token
from strongroom.auth.iam.policy import OPERATIONS, Role
from strongroom.auth.iam.revocation import InMemoryRevocationList, NothingRevoked, RevocationList
from strongroom.auth.iam.self_service import lookup_self_data, refuse_renewal, revoke_self_id
from strongroom.auth.iam.signing import IamKey, IamPublicKey, public_key_document
from strongroom.auth.iam.text import TOKEN_PREFIX, is_biscuit_token
from strongroom.auth.iam.verify import IamRequest, IamVerifier, TokenFacts, VerifiedToken

__all__ = [
    "OPERATIONS",
    "TOKEN_PREFIX",
    "IamKey",
    "IamPublicKey",
    "IamRequest",
    "IamVerifier",
    "InMemoryRevocationList",
    "NothingRevoked",
    "RevocationList",
    "Role",
    "TokenFacts",
    "VerifiedToken",
    "attenuate",
    "inspect",
    "is_biscuit_token",
    "issue_token",
    "lookup_self_data",
    "public_key_document",
    "refuse_renewal",
    "revoke_self_id",
    "root_key_id",
]
