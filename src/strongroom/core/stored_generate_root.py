"""The generate-root ceremony with its progress in storage: the platform's and every tenant's.

Vault's state machine, bodies and messages (the token encoding: :mod:`strongroom.core.generate_root`),
with the attempt in a barrier record of the root namespace (where: :mod:`strongroom.core.stored_ceremony`)::

    {"nonce", "started", "otp", "pgp_key", "shares": [b64]}

so the quorum may reach different workers and nodes. The OTP (or the PGP public key) rests there, encrypted
under the platform keyring, until the token is issued. State machine (one transaction per call)::

    IDLE ──start(otp | pgp_key | neither: the server makes an OTP)──► COLLECTING
    COLLECTING ──share (below threshold)──► COLLECTING
    COLLECTING ──threshold: key opens the stored keyring──► token issued, attempt deleted (ONE tx) ──► IDLE
    COLLECTING ──threshold: wrong key──► COLLECTING with progress 0 (same nonce; committed), then a 400
    any ──cancel, expiry (the node's unseal expiry) or sealing──► IDLE

The token is created in the subject's own token store in the transaction that proves the quorum (the
combined key must open the stored keyring, not merely match a key in memory) and ends the attempt; it is
encoded inside that transaction, so an encoding failure commits no token.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field, replace
from typing import Any

from strongroom.barrier.keyring import Keyring
from strongroom.barrier.records import Records
from strongroom.core.generate_root import TokenIssuer, encode_token
from strongroom.core.rekey import KEY_VERIFICATION_FAILED, check_key_size
from strongroom.core.seal import SealConfig, check_share
from strongroom.core.stored_ceremony import CeremonySubject
from strongroom.crypto import pgp
from strongroom.crypto.random import random_base62, random_uuid
from strongroom.crypto.secret import constant_time_equal
from strongroom.crypto.shamir import combine_key
from strongroom.errors import CorruptRecord, DecryptionFailed, InvalidRequest, InvalidShare, NotInitialized
from strongroom.storage.base import Transaction, transactional


@dataclass(frozen=True)
class Attempt:
    """A stored root-token generation (OTP and shares never logged)."""

    nonce: str
    started: float
    otp: str = field(default="", repr=False)
    pgp_key: str = ""
    shares: tuple[bytes, ...] = field(default=(), repr=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "nonce": self.nonce, "started": self.started, "otp": self.otp, "pgp_key": self.pgp_key,
            "shares": [base64.b64encode(s).decode() for s in self.shares],
        }  # fmt: skip

    @classmethod
    def from_json(cls, doc: Any) -> Attempt:
        """Parse the stored form.

        Raises:
            CorruptRecord: the record is not a root-token generation.
        """
        try:
            shares = tuple(base64.b64decode(s) for s in doc["shares"])
            return cls(str(doc["nonce"]), float(doc["started"]), str(doc["otp"]), str(doc["pgp_key"]), shares)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise CorruptRecord("malformed root generation attempt") from exc


class StoredRootGeneration:
    """The generate-root ceremony of one subject (stateless: everything is in storage).

    ``token_length`` is the length of the tokens the issuer creates; OTPs must have exactly that length
    and ``otp_length`` reports it, as Vault does.
    """

    def __init__(
        self, subject: CeremonySubject, *, token_length: int, expiry_seconds: float | None = None
    ) -> None:
        self.subject = subject
        self.vault = subject.vault
        self.token_length = token_length
        self.expiry_seconds = expiry_seconds

    def __repr__(self) -> str:
        return f"StoredRootGeneration({self.subject!r})"

    async def _state(self, tx: Transaction) -> tuple[Records, SealConfig, Attempt | None]:
        """The attempt records, the seal configuration and the live attempt, in ``tx`` (an expired attempt
        is deleted and reads as absent).

        Raises:
            NotInitialized: the subject has no seal configuration.
            Sealed: the platform or the subject is sealed.
        """
        config = await self.subject.config(tx)
        if config is None:
            raise NotInitialized("server is not yet initialized")
        platform, _ = await self.subject.keys(tx)
        records = self.subject.records(tx, platform, self.subject.generation_area)
        doc = await records.get_json(self.subject.ns_id)
        attempt = Attempt.from_json(doc) if doc is not None else None
        limit = self.expiry_seconds
        if attempt is not None and limit is not None and self.vault.clock.now() - attempt.started > limit:
            records.clear(self.subject.ns_id)
            attempt = None
        return records, config, attempt

    def _body(self, config: SealConfig, attempt: Attempt | None, otp: str = "") -> dict[str, Any]:
        fingerprint = pgp.parse_public_key(attempt.pgp_key).fingerprint if attempt and attempt.pgp_key else ""
        return {
            "started": attempt is not None, "nonce": attempt.nonce if attempt else "",
            "progress": len(attempt.shares) if attempt else 0, "required": config.secret_threshold,
            "complete": False, "encoded_token": "", "encoded_root_token": "", "pgp_fingerprint": fingerprint,
            "otp": otp, "otp_length": self.token_length,
        }  # fmt: skip

    async def status(self, otp: str = "") -> dict[str, Any]:
        """Vault's ``sys/generate-root/attempt`` body; ``otp`` is shown only right after start.

        Raises:
            NotInitialized / Sealed: the subject cannot generate a root token now.
        """

        async def read(tx: Transaction) -> dict[str, Any]:
            _, config, attempt = await self._state(tx)
            return self._body(config, attempt, otp)

        return await transactional(self.vault.store, read)

    async def start(self, otp: str = "", pgp_key: str = "") -> str:
        """IDLE -> COLLECTING. With neither ``otp`` nor ``pgp_key`` the server generates the OTP.

        Returns the generated OTP (``""`` when the caller supplied one or a PGP key).

        Raises:
            InvalidRequest: both given, wrong OTP length, unusable PGP key, or a generation already runs.
            NotInitialized / Sealed: the subject cannot generate a root token now.
        """
        if otp and pgp_key:
            # Vault silently prefers the OTP; refusing is kinder than ignoring a key the caller meant.
            raise InvalidRequest("only one of otp or pgp_key may be given")
        generated = ""
        if pgp_key:
            pgp.parse_public_key(pgp_key)
        elif otp:
            if len(otp.encode()) != self.token_length:
                raise InvalidRequest("OTP string has incorrect length")
        else:
            otp = generated = random_base62(self.token_length)

        async def run(tx: Transaction) -> None:
            records, _, attempt = await self._state(tx)
            if attempt is not None:
                raise InvalidRequest("root generation already in progress")
            fresh = Attempt(random_uuid(), self.vault.clock.now(), otp, pgp_key)
            records.put_json((self.subject.ns_id,), fresh.to_json())

        await transactional(self.vault.store, run)
        return generated

    async def cancel(self) -> None:
        """Any phase -> IDLE, for every node.

        Raises:
            NotInitialized / Sealed: as :meth:`status`.
        """

        async def run(tx: Transaction) -> None:
            records, _, _ = await self._state(tx)
            records.clear(self.subject.ns_id)

        await transactional(self.vault.store, run)

    async def submit(self, share: bytes, nonce: str, issue: TokenIssuer) -> dict[str, Any]:
        """Add one unseal share; at the threshold create the root token and return it encoded.

        The returned dict has Vault's update fields: ``started, nonce, progress, required, complete,
        encoded_token, encoded_root_token, pgp_fingerprint, otp, otp_length``.

        Raises:
            InvalidRequest: no generation, wrong nonce, duplicate share.
            InvalidShare: malformed share, or the shares do not open the keyring (the progress reset is
                committed first).
            NotInitialized / Sealed: the subject cannot generate a root token now.
        """

        async def run(tx: Transaction) -> dict[str, Any] | None:
            records, config, attempt = await self._state(tx)
            if attempt is None:
                raise InvalidRequest("no root generation in progress")
            if not constant_time_equal(nonce.encode(), attempt.nonce.encode()):
                raise InvalidRequest(
                    f'incorrect nonce supplied; nonce for this root generation operation is "{attempt.nonce}"'
                )
            check_key_size(share)
            check_share(share, config)
            duplicate = False
            for held in attempt.shares:
                duplicate |= constant_time_equal(held, share)
            if duplicate:
                raise InvalidRequest("given key has already been provided during this generation operation")
            shares = (*attempt.shares, share)
            body = self._body(config, attempt)
            if len(shares) < config.secret_threshold:
                records.put_json((self.subject.ns_id,), replace(attempt, shares=shares).to_json())
                return {**body, "progress": len(shares), "otp_length": 0}
            try:
                candidate = combine_key(list(shares), config.secret_shares, config.secret_threshold)
                blob = await tx.get(self.vault.keyring_key)
                if blob is None:
                    raise NotInitialized()
                # Proof of quorum: the combined key must open what storage holds, not merely match memory.
                Keyring.open(candidate, self.vault.keyring_key, blob)
            except (DecryptionFailed, InvalidShare):
                # Progress back to 0, same nonce (committed, then reported).
                records.put_json((self.subject.ns_id,), replace(attempt, shares=()).to_json())
                return None
            token = await issue(tx, (await self.subject.keys(tx))[1])
            # Encode inside the transaction: if encoding fails, the token is never committed.
            if attempt.pgp_key:
                encoded = base64.b64encode(
                    pgp.encrypt(token.encode(), pgp.parse_public_key(attempt.pgp_key))
                ).decode()
            else:
                encoded = encode_token(token, attempt.otp)
            records.clear(self.subject.ns_id)
            return {**body, "progress": config.secret_threshold, "complete": True, "encoded_token": encoded,
                    "encoded_root_token": encoded, "otp_length": 0}  # fmt: skip

        result = await transactional(self.vault.store, run)
        if result is None:
            raise InvalidShare(f"root generation aborted: {KEY_VERIFICATION_FAILED}")
        return result
