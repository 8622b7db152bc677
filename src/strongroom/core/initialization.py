"""What ``sys/init`` makes before anything is written: the checked request, the root key and its shares.

Shared by the platform's ``sys/init`` (:meth:`strongroom.core.vault.Vault.initialize`) and by the creation of
a tenant namespace with a seal (``sys/namespaces``, :mod:`strongroom.core.tenant_seal`), which writes the
same records inside its own transaction. Everything here happens in memory: validation first, so a bad
request generates no key, then the key and its (optionally PGP-encrypted) shares.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field

from strongroom.core.seal import SealConfig
from strongroom.crypto import pgp
from strongroom.crypto.aead import generate_key
from strongroom.crypto.random import random_uuid
from strongroom.crypto.secret import SecretBytes
from strongroom.crypto.shamir import INIT_ERROR_PREFIX, split_key, validate_seal_config
from strongroom.errors import InvalidRequest

__all__ = ["InitRequest", "InitResult", "PreparedInit", "encode_shares", "new_cluster_info", "prepare_init"]


@dataclass(frozen=True)
class InitRequest:
    """Parameters of ``sys/init`` (validated by :func:`prepare_init`)."""

    secret_shares: int
    secret_threshold: int
    pgp_keys: tuple[str, ...] = ()
    root_token_pgp_key: str = ""


@dataclass(frozen=True)
class InitResult:
    """What ``sys/init`` returns. ``keys`` are hex, ``keys_base64`` base64 (of PGP messages if asked)."""

    keys: list[str]
    keys_base64: list[str]
    root_token: str


def encode_shares(shares: list[bytes], pgp_keys: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """Return ``(hex, base64)`` forms of shares, PGP-encrypting the hex text of each if keys are given.

    Raises:
        InvalidRequest: a PGP key cannot be parsed.
    """
    if pgp_keys:
        messages, _ = pgp.encrypt_shares(shares, list(pgp_keys))
        return [m.hex() for m in messages], [base64.b64encode(m).decode() for m in messages]
    return [s.hex() for s in shares], [base64.b64encode(s).decode() for s in shares]


def new_cluster_info() -> dict[str, str]:
    """Return a fresh ``cluster_name`` and ``cluster_id`` for a namespace being initialised."""
    return {"cluster_name": "strongroom-cluster-" + random_uuid()[:8], "cluster_id": random_uuid()}


@dataclass(frozen=True)
class PreparedInit:
    """A checked init request with its new root key and encoded shares (nothing stored yet)."""

    root_key: SecretBytes
    config: SealConfig
    cluster: dict[str, str]
    keys_hex: list[str] = field(repr=False)
    keys_base64: list[str] = field(repr=False)
    token_key: pgp.PgpPublicKey | None = field(default=None, repr=False)

    def result(self, root_token: str) -> InitResult:
        """Return what ``sys/init`` answers once the records committed (the token PGP-encrypted if asked)."""
        if self.token_key is not None:
            root_token = base64.b64encode(pgp.encrypt(root_token.encode(), self.token_key)).decode()
        return InitResult(keys=self.keys_hex, keys_base64=self.keys_base64, root_token=root_token)


def prepare_init(request: InitRequest, *, error_prefix: str = INIT_ERROR_PREFIX) -> PreparedInit:
    """Check ``request``, then create the root key and its shares.

    ``error_prefix`` precedes the seal-configuration messages (OpenBao's ``sys/init`` wording by default).

    Raises:
        InvalidRequest: bad share parameters (Vault's messages, prefixed) or an unusable PGP key.
    """
    try:
        validate_seal_config(
            request.secret_shares, request.secret_threshold, pgp_key_count=len(request.pgp_keys)
        )
    except InvalidRequest as exc:
        raise InvalidRequest(error_prefix + exc.message) from None
    fingerprints = tuple(pgp.parse_public_key(k).fingerprint for k in request.pgp_keys)
    token_key = pgp.parse_public_key(request.root_token_pgp_key) if request.root_token_pgp_key else None
    root_key = generate_key()
    shares = split_key(root_key, request.secret_shares, request.secret_threshold)
    keys_hex, keys_b64 = encode_shares(shares, request.pgp_keys)
    config = SealConfig(
        type="shamir",
        secret_shares=request.secret_shares,
        secret_threshold=request.secret_threshold,
        pgp_fingerprints=fingerprints,
    )
    return PreparedInit(root_key, config, new_cluster_info(), keys_hex, keys_b64, token_key)
