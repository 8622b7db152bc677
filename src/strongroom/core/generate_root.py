"""The generate-root ceremony: a quorum of unseal-key holders creates a new root token.

It exists for when every root token is gone, so it needs no token: the authority is the quorum. This
module holds the token encoding and :class:`GenerateRootCeremony`, the node-local reference state machine
(progress in one process's memory, as Vault keeps it). The server's routes run
:class:`~strongroom.core.stored_generate_root.StoredRootGeneration` instead, the same steps with the attempt
in storage (platform and tenants alike), so the shares may reach any worker of any node.

State machine::

    IDLE ──start(otp | pgp_key | neither: the server makes an OTP)──► COLLECTING
    COLLECTING ──share (below threshold)──► COLLECTING
    COLLECTING ──threshold: key opens the stored keyring──► token created in ONE transaction ──► IDLE
    COLLECTING ──threshold: wrong key──► COLLECTING with progress 0 (same nonce), error
    any ──cancel or expiry──► IDLE

The token leaves the server only encoded: XORed with the OTP (Vault >= 1.10: the OTP is as long as the
token, and the result is unpadded standard base64), or PGP-encrypted to ``pgp_key`` (the token text is
the plaintext; standard base64 of the binary message).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from strongroom.barrier.keyring import Keyring
from strongroom.clock import Clock
from strongroom.core.namespace import NamespaceKeys
from strongroom.core.rekey import KEY_VERIFICATION_FAILED, add_share
from strongroom.core.seal import SealConfig, ShareCollector
from strongroom.core.vault import Vault
from strongroom.crypto import pgp
from strongroom.crypto.random import random_base62, random_uuid
from strongroom.crypto.secret import SecretBytes, constant_time_equal
from strongroom.errors import DecryptionFailed, InvalidRequest, InvalidShare, NotInitialized, Sealed
from strongroom.storage.base import Transaction, transactional

TokenIssuer = Callable[[Transaction, NamespaceKeys], Awaitable[str]]
"""Creates a root token in the given transaction and returns its text (engines/bootstrap provides it)."""


class GenerateRootPhase(StrEnum):
    """Where a root-token generation stands."""

    IDLE = "idle"
    COLLECTING = "collecting"


@dataclass(frozen=True)
class _Attempt:
    nonce: str
    started: float
    otp: str
    pgp_key: pgp.PgpPublicKey | None
    shares: ShareCollector

    def __repr__(self) -> str:
        return f"_Attempt(nonce={self.nonce!r}, progress={self.shares.progress})"


def encode_token(token: str, otp: str) -> str:
    """Return unpadded standard base64 of ``token`` XOR ``otp`` (Vault's ``roottoken.EncodeToken``).

    Raises:
        InvalidRequest: the OTP and the token differ in length.
    """
    token_bytes, otp_bytes = token.encode(), otp.encode()
    if len(token_bytes) != len(otp_bytes):
        raise InvalidRequest("OTP string has incorrect length")
    xored = bytes(a ^ b for a, b in zip(token_bytes, otp_bytes, strict=True))
    return base64.b64encode(xored).decode().rstrip("=")


def decode_token(encoded: str, otp: str) -> str:
    """Invert :func:`encode_token` (what ``vault operator generate-root -decode`` does).

    Raises:
        InvalidRequest: not base64, or the lengths differ.
    """
    try:
        xored = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequest("error decoding base64'd token") from None
    otp_bytes = otp.encode()
    if len(xored) != len(otp_bytes):
        raise InvalidRequest("length of byte slices is not equivalent")
    try:
        return bytes(a ^ b for a, b in zip(xored, otp_bytes, strict=True)).decode()
    except UnicodeDecodeError:
        raise InvalidRequest("the decoded token is not text: wrong OTP?") from None


class GenerateRootCeremony:
    """The generate-root state machine of one namespace vault on this node.

    ``token_length`` is the length of the tokens the issuer creates; OTPs must have exactly that length
    and ``otp_length`` reports it, as Vault does.
    """

    def __init__(
        self, vault: Vault, clock: Clock, *, token_length: int, expiry_seconds: float | None = None
    ) -> None:
        self.vault = vault
        self.clock = clock
        self.token_length = token_length
        self.expiry_seconds = expiry_seconds
        self._attempt: _Attempt | None = None
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"GenerateRootCeremony(path={self.vault.path!r}, phase={self.phase.value})"

    @property
    def phase(self) -> GenerateRootPhase:
        """The current state (an expired attempt counts as IDLE)."""
        attempt, limit = self._attempt, self.expiry_seconds
        if attempt and limit is not None and self.clock.now() - attempt.started > limit:
            self._attempt = None
        return GenerateRootPhase.IDLE if self._attempt is None else GenerateRootPhase.COLLECTING

    async def _ready(self) -> tuple[SealConfig, NamespaceKeys]:
        config = await self.vault.seal_config()
        if config is None:
            raise NotInitialized("server is not yet initialized")
        keys = self.vault.keys
        if keys is None:
            raise Sealed()
        return config, keys

    async def status(self, otp: str = "") -> dict[str, Any]:
        """Return Vault's ``sys/generate-root/attempt`` body; ``otp`` is shown only right after start.

        Raises:
            NotInitialized / Sealed: the vault cannot generate a root token now.
        """
        config, _ = await self._ready()
        attempt = self._attempt if self.phase is GenerateRootPhase.COLLECTING else None
        return {
            "started": attempt is not None,
            "nonce": attempt.nonce if attempt else "",
            "progress": attempt.shares.progress if attempt else 0,
            "required": config.secret_threshold,
            "complete": False,
            "encoded_token": "",
            "encoded_root_token": "",
            "pgp_fingerprint": attempt.pgp_key.fingerprint if attempt and attempt.pgp_key else "",
            "otp": otp,
            "otp_length": self.token_length,
        }

    async def start(self, otp: str = "", pgp_key: str = "") -> str:
        """IDLE -> COLLECTING. With neither ``otp`` nor ``pgp_key`` the server generates the OTP.

        Returns the generated OTP (``""`` when the caller supplied one or a PGP key).

        Raises:
            InvalidRequest: both given, wrong OTP length, unusable PGP key, or a generation already runs.
            NotInitialized / Sealed: the vault cannot generate a root token now.
        """
        if otp and pgp_key:
            # Vault silently prefers the OTP; refusing is kinder than ignoring a key the caller meant.
            raise InvalidRequest("only one of otp or pgp_key may be given")
        generated = ""
        key = None
        if pgp_key:
            key = pgp.parse_public_key(pgp_key)
        elif otp:
            if len(otp.encode()) != self.token_length:
                raise InvalidRequest("OTP string has incorrect length")
        else:
            otp = generated = random_base62(self.token_length)
        async with self._lock:
            await self._ready()
            if self.phase is not GenerateRootPhase.IDLE:
                raise InvalidRequest("root generation already in progress")
            self._attempt = _Attempt(random_uuid(), self.clock.now(), otp, key, ShareCollector(self.clock))
        return generated

    def cancel(self) -> None:
        """Any phase -> IDLE."""
        self._attempt = None

    async def submit(self, share: bytes, nonce: str, issue: TokenIssuer) -> dict[str, Any]:
        """Add one unseal share; at the threshold create the root token and return it encoded.

        The returned dict has Vault's update fields: ``started, nonce, progress, required, complete,
        encoded_token, encoded_root_token, pgp_fingerprint, otp, otp_length``.

        Raises:
            InvalidRequest: no generation, wrong nonce, duplicate share.
            InvalidShare: malformed share, or the shares do not open the keyring (progress is reset).
            NotInitialized / Sealed: the vault cannot generate a root token now.
        """
        async with self._lock:
            config, keys = await self._ready()
            attempt = self._attempt if self.phase is GenerateRootPhase.COLLECTING else None
            if attempt is None:
                raise InvalidRequest("no root generation in progress")
            if not constant_time_equal(nonce.encode(), attempt.nonce.encode()):
                raise InvalidRequest(
                    f'incorrect nonce supplied; nonce for this root generation operation is "{attempt.nonce}"'
                )
            combined = add_share(attempt.shares, share, config, "generation")
            body: dict[str, Any] = {
                "started": True,
                "nonce": attempt.nonce,
                "progress": attempt.shares.progress,
                "required": config.secret_threshold,
                "complete": False,
                "encoded_token": "",
                "encoded_root_token": "",
                "pgp_fingerprint": attempt.pgp_key.fingerprint if attempt.pgp_key else "",
                "otp": "",
                "otp_length": 0,
            }
            if combined is None:
                return body
            encoded = await self._issue(combined, attempt, keys, issue)
            self._attempt = None
            body.update(progress=config.secret_threshold, complete=True, encoded_token=encoded,
                        encoded_root_token=encoded)
            return body

    async def _issue(
        self, combined: SecretBytes, attempt: _Attempt, keys: NamespaceKeys, issue: TokenIssuer
    ) -> str:
        vault = self.vault

        async def create(tx: Transaction) -> str:
            blob = await tx.get(vault.keyring_key)
            if blob is None:
                raise NotInitialized()
            try:
                # Proof of quorum: the combined key must open what storage holds, not merely match memory.
                Keyring.open(combined, vault.keyring_key, blob)
            except DecryptionFailed:
                raise InvalidShare(f"root generation aborted: {KEY_VERIFICATION_FAILED}") from None
            token = await issue(tx, keys)
            # Encode inside the transaction: if encoding fails, the token is never committed.
            if attempt.pgp_key is not None:
                return base64.b64encode(pgp.encrypt(token.encode(), attempt.pgp_key)).decode()
            return encode_token(token, attempt.otp)

        return await transactional(vault.store, create)

