"""The platform IAM's state on a node: its signing key, its verifier and the revocation list in storage.

Everything durable is a barrier record of the platform (root namespace), so it follows the platform's
keyring (rotation re-wraps it) and every node sees a change at its next request
(``docs/spec/tokens.md`` sections 6 and 8, ``docs/spec/storage-layout.md``):

* ``("sys", "iam", "signing-key")``: the IAM signing key (``IamKey.to_bytes``). Written by the offline
  platform ceremony and by an online ``sys/init`` of the platform (:func:`write_signing_key`); a platform
  initialised before the IAM existed gets one at its first issuance (:func:`signing_key`).
* ``("sys", "iam-revoked", blind index of the id)``: one record per revoked revocation id, holding
  ``{"revocation_id", "revoked_at", "expires_at"}`` (``expires_at`` known only when the token itself was
  submitted). The physical key is a blind index under the platform's index key, so a storage dump shows
  no revocation id.

:class:`IamState` (one per node, :func:`iam_state`) keeps the public half of the key and an
:class:`~strongroom.auth.iam.IamVerifier` built from it. :meth:`IamState.verifier` reads the key record
inside the request's transaction and rebuilds the verifier only when the stored ciphertext changed and
holds another key, so a new key reaches every node at its next request and an unchanged one costs one
point read. The private half is decrypted only to issue a token and never kept.
"""

from __future__ import annotations

import math
import time
import weakref
from collections.abc import Sequence
from typing import Any

from strongroom.auth.iam import IamKey, IamPublicKey, IamVerifier, NothingRevoked, VerifiedToken
from strongroom.core.namespace import NamespaceKeys
from strongroom.core.node import Node
from strongroom.core.platform import IAM_SIGNING_KEY
from strongroom.crypto.secret import SecretBytes
from strongroom.errors import InvalidRequest, PermissionDenied
from strongroom.storage.base import Transaction, transactional

REVOKED_AREA = ("sys", "iam-revoked")
_REVOKED_INDEX_PARENT = b"iam-revocation-id"
VERIFIED_CACHE = 4096
MAX_REVOCATION_ID_CHARS = 256
"""A revocation id is the hex of a block signature (128 characters for Ed25519); longer is refused."""


def write_signing_key(tx: Transaction, platform: NamespaceKeys) -> IamKey:
    """In ``tx``: write a new IAM signing key (key id 1) into the platform's records and return it."""
    key = IamKey.generate()
    platform.records(tx, "sys").put(IAM_SIGNING_KEY, key.to_bytes().reveal())
    return key


async def signing_key(tx: Transaction, platform: NamespaceKeys, *, create: bool = False) -> IamKey:
    """The IAM signing key, read in ``tx``; with ``create``, written first when the platform has none.

    Raises:
        InvalidRequest: no key and ``create`` is false.
        CorruptRecord: the stored key is damaged.
    """
    raw = await platform.records(tx, "sys").get(*IAM_SIGNING_KEY)
    if raw is None:
        if not create:
            raise InvalidRequest("the platform has no IAM signing key yet")
        return write_signing_key(tx, platform)
    return IamKey.from_bytes(SecretBytes(raw, kind="IAM signing key"))


def check_revocation_id(value: Any) -> str:
    """Return ``value`` as a lowercase hex revocation id.

    Raises:
        InvalidRequest: not a non-empty even-length hex string of at most 256 characters.
    """
    if not isinstance(value, str) or not value or len(value) > MAX_REVOCATION_ID_CHARS:
        raise InvalidRequest("revocation_id must be the hex revocation id of a token block")
    try:
        bytes.fromhex(value)
    except ValueError:
        raise InvalidRequest("revocation_id must be the hex revocation id of a token block") from None
    return value.lower()


def _revoked_key(platform: NamespaceKeys, revocation_id: str) -> tuple[bytes]:
    return (platform.indexer.index(_REVOKED_INDEX_PARENT, revocation_id.lower()),)


async def any_revoked(tx: Transaction, platform: NamespaceKeys, ids: Sequence[str]) -> bool:
    """Whether any of ``ids`` is revoked, read in ``tx`` (one point read per id, nothing decrypted)."""
    records = platform.records(tx, *REVOKED_AREA)
    for revocation_id in ids:
        if await records.exists(*_revoked_key(platform, revocation_id)):
            return True
    return False


def revoke(
    tx: Transaction, platform: NamespaceKeys, revocation_id: str, *, now: float, expires_at: int | None = None
) -> None:
    """In ``tx``: add ``revocation_id`` (checked hex) to the revocation list."""
    platform.records(tx, *REVOKED_AREA).put_json(
        _revoked_key(platform, revocation_id),
        {"revocation_id": revocation_id.lower(), "revoked_at": math.floor(now), "expires_at": expires_at},
    )


class Decisions:
    """The authorizer's decisions of the current second, keyed by everything they depend on.

    The Datalog authorizer is a pure function of the verified token and the ambient facts (namespace,
    resource, operation, mount, and ``time`` in whole seconds), so a decision holds for an identical request
    within the same second; the next second starts empty. A token is keyed by its revocation ids (its
    blocks' signatures), which a verified token cannot share with another. Revocation, the tenant's creation time and its
    ``accept_platform_tokens`` are checked on every request before any decision is looked up. Bounded: at
    most :data:`MAX_DECISIONS` per second are kept (the rest are simply computed).
    """

    MAX_DECISIONS = 4096

    __slots__ = ("_decided", "_second")

    def __init__(self) -> None:
        self._second = -1
        self._decided: dict[tuple[str, ...], bool] = {}

    def get(self, second: int, key: tuple[str, ...]) -> bool | None:
        """The decision for ``key`` made during ``second``, or ``None``."""
        return self._decided.get(key) if second == self._second else None

    def put(self, second: int, key: tuple[str, ...], allowed: bool) -> None:
        """Remember a decision made during ``second``."""
        if second != self._second:
            self._second, self._decided = second, {}
        if len(self._decided) < self.MAX_DECISIONS:
            self._decided[key] = allowed


class IamState:
    """One node's view of the IAM key: the public key and a verifier (signature cache inside)."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self._record: bytes | None = None
        self._public: IamPublicKey | None = None
        self._verifier: IamVerifier | None = None
        self._read_at = float("-inf")
        self.decisions = Decisions()
        """Decisions of the current verifier (a new key starts afresh)."""
        self._verified: dict[str, VerifiedToken] = {}

    def __repr__(self) -> str:
        return f"IamState(public={self._public!r})"

    async def verifier(self, tx: Transaction, platform: NamespaceKeys) -> IamVerifier:
        """The verifier for the key stored now, read in ``tx``.

        Raises:
            PermissionDenied: the platform has no IAM key (so no token can be valid).
            CorruptRecord: the stored key is damaged.
        """
        physical = platform.space.key("sys", *IAM_SIGNING_KEY)
        record = await tx.get(physical)
        if record is None:
            raise PermissionDenied()
        verifier = self._verifier
        if record != self._record or verifier is None:
            key = IamKey.from_bytes(
                SecretBytes(platform.barrier.decrypt(physical, record), kind="IAM signing key")
            )
            if verifier is None or key.public_key != self._public:
                # A new key: a new verifier (its signature cache belonged to the old key).
                verifier = IamVerifier([key.public_key], NothingRevoked())
                self._verifier, self._public, self.decisions = verifier, key.public_key, Decisions()
                self._verified = {}
            # Same key under a new ciphertext (platform rotation re-wrapped it): keep the cache.
            self._record = record
        return verifier

    def verify(self, verifier: IamVerifier, token: str) -> VerifiedToken:
        """``verifier.verify(token)``, remembered per exact token text while ``verifier`` is current.

        The verifier has its own cache, but it first checks the whole text's alphabet (tens of µs for a
        token attenuated a few times); a request verifies its token twice (before and inside its
        transaction), and a dictionary probe by the text is enough for every repeat. Failures are not
        remembered; at most :data:`VERIFIED_CACHE` tokens are.

        Raises:
            PermissionDenied: not a valid token.
        """
        hit = self._verified.get(token)
        if hit is not None and verifier is self._verifier:
            return hit
        verified = verifier.verify(token)
        if verifier is self._verifier:
            if len(self._verified) >= VERIFIED_CACHE:
                self._verified.clear()
            self._verified[token] = verified
        return verified

    async def current(self, token: str) -> IamVerifier:
        """A verifier that accepts ``token`` if the stored key does: the one this node last saw, or, when
        there is none or it refuses ``token`` and was last read over a second ago, one read now.

        Used before a request's transaction starts (to pick the token's tenant); the request then checks
        the token again with :meth:`verifier` inside its transaction. The one-second bound keeps a flood of
        invalid tokens from costing a storage read each.

        Raises:
            Sealed: the platform is sealed on this node.
            PermissionDenied: the platform has no IAM key.
        """
        verifier = self._verifier
        now = time.monotonic()
        if verifier is not None:
            try:
                self.verify(verifier, token)
                return verifier
            except PermissionDenied:
                if now - self._read_at < 1:
                    raise

        async def read(tx: Transaction) -> IamVerifier:
            return await self.verifier(tx, await self.node.root.current_keys(tx))

        self._read_at = now
        return await transactional(self.node.store, read)

    async def public_key(self, tx: Transaction, platform: NamespaceKeys) -> IamPublicKey:
        """The current public key, read in ``tx``.

        Raises:
            PermissionDenied: the platform has no IAM key.
        """
        await self.verifier(tx, platform)
        assert self._public is not None
        return self._public


_STATES: weakref.WeakKeyDictionary[Node, IamState] = weakref.WeakKeyDictionary()


def iam_state(node: Node) -> IamState:
    """The :class:`IamState` of ``node`` (created on first use)."""
    state = _STATES.get(node)
    if state is None:
        state = _STATES[node] = IamState(node)
    return state
