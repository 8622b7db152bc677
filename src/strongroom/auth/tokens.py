"""The token store of a namespace: service tokens kept only as keyed hashes.

Records (area ``("ns", id, "tok")``, all barrier-encrypted):

* ``("id", H(token))`` -> the :class:`TokenEntry` (the token itself is never stored);
* ``("acc", H("accessor:" + accessor))`` -> ``H(token)``, so accessors resolve without being stored in clear
  as keys (the accessor text lives only inside the encrypted entry);
* ``("child", H(parent), H(child))`` -> empty, so revoking a parent finds its children.

``H`` is HMAC-SHA256 under the keyring's token-hash key.

Guarantees:

* A token is live only while its record exists, it has not expired at the injected clock's ``now``, and
  every ancestor up its parent chain is live too. So expiry is enforced at lookup, immediately, whether or
  not a cleanup (``tidy``) has removed the record yet, and a child never outlives an expired parent, as in
  Vault where the expiration of a token revokes its whole tree.
* Revoking a token removes its record, its accessor index, its link from its parent and, recursively, every
  descendant's records and links, in the caller's transaction.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import orjson

from strongroom.clock import Clock, rfc3339
from strongroom.core.namespace import NamespaceKeys
from strongroom.crypto.random import random_base62
from strongroom.errors import CorruptRecord, InvalidRequest
from strongroom.storage.base import Transaction

TOKEN_PREFIX = "hvs."
TOKEN_RANDOM_CHARS = 24
ACCESSOR_CHARS = 24
MAX_TOKEN_LENGTH = 256
# A parent chain longer than this is treated as broken: it bounds the reads of one lookup and cannot be
# reached through the API in practice (each level is one create call by the previous level's token).
MAX_CHAIN_DEPTH = 256
# Vault's marker for "this request is the token's last use" (tokenRevocationPending).
USES_EXHAUSTED = -1


@dataclass(frozen=True)
class TokenEntry:
    """A stored token. ``token_hash`` identifies it; the token text is never kept.

    Times are seconds since the epoch. ``creation_ttl`` is the TTL given at creation (Vault's ``TTL``),
    ``lease_ttl`` the TTL of the current lease (set again by each renewal, reused by a renewal without
    increment), ``expire_at`` the absolute expiry (0 = never). ``period`` and ``explicit_max_ttl`` are the
    values the creator asked for explicitly; a role's values are applied from the role itself.
    """

    token_hash: bytes
    accessor: str
    policies: tuple[str, ...]
    parent_hash: bytes = b""
    meta: dict[str, str] | None = None
    display_name: str = "token"
    num_uses: int = 0
    creation_time: float = 0.0
    creation_ttl: int = 0
    expire_at: float = 0.0
    explicit_max_ttl: int = 0
    period: int = 0
    renewable: bool = False
    orphan: bool = False
    path: str = "auth/token/create"
    role: str = ""
    no_default_policy: bool = False
    entity_id: str = ""
    type: str = "service"
    lease_ttl: int = 0
    last_renewal: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"TokenEntry(accessor=<redacted>, policies={self.policies!r})"

    @property
    def is_root(self) -> bool:
        """Whether the token carries the root policy."""
        return "root" in self.policies

    def ttl_at(self, now: float) -> int:
        """Remaining lifetime in whole seconds at ``now`` (0 for non-expiring tokens)."""
        if not self.expire_at:
            return 0
        return max(0, int(self.expire_at - now))

    def expired(self, now: float) -> bool:
        """Whether the token has expired at ``now``."""
        return bool(self.expire_at) and now >= self.expire_at

    def to_json(self) -> dict[str, Any]:
        """Return the stored form."""
        doc = dataclasses.asdict(self)
        doc["token_hash"] = self.token_hash.hex()
        doc["parent_hash"] = self.parent_hash.hex()
        doc["policies"] = list(self.policies)
        return doc

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> TokenEntry:
        """Parse the stored form.

        Raises:
            CorruptRecord: the record is not a token entry.
        """
        try:
            doc = dict(doc)
            doc["token_hash"] = bytes.fromhex(doc["token_hash"])
            doc["parent_hash"] = bytes.fromhex(doc["parent_hash"])
            doc["policies"] = tuple(doc["policies"])
            return cls(**doc)
        except (KeyError, TypeError, ValueError) as exc:
            raise CorruptRecord("malformed token entry") from exc

    def lookup_data(self, token_id: str, now: float) -> dict[str, Any]:
        """Return the ``data`` of a token lookup, exactly the keys Vault shows.

        ``token_id`` is the token text when the caller presented it, ``""`` for accessor lookups.
        ``period``, ``role`` and the renewal times appear only when set, as in Vault.
        """
        data: dict[str, Any] = {
            "accessor": self.accessor,
            "creation_time": int(self.creation_time),
            "creation_ttl": self.creation_ttl,
            "display_name": self.display_name,
            "entity_id": self.entity_id,
            "expire_time": rfc3339(self.expire_at) if self.expire_at else None,
            "explicit_max_ttl": self.explicit_max_ttl,
            "id": token_id,
            "issue_time": rfc3339(self.creation_time),
            "meta": self.meta,
            "num_uses": self.num_uses,
            "orphan": self.orphan,
            "path": self.path,
            "policies": list(self.policies),
            "renewable": self.renewable and bool(self.expire_at),
            "ttl": self.ttl_at(now),
            "type": self.type,
        }
        if self.period:
            data["period"] = self.period
        if self.role:
            data["role"] = self.role
        if self.last_renewal:
            data["last_renewal"] = rfc3339(self.last_renewal)
            data["last_renewal_time"] = int(self.last_renewal)
        return data


def _decode_entry(raw: bytes) -> TokenEntry:
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise CorruptRecord("malformed token entry") from None
    return TokenEntry.from_json(doc)


def new_token_id() -> str:
    """Return a fresh service token (``hvs.`` + 24 base62 characters, about 142 bits)."""
    return TOKEN_PREFIX + random_base62(TOKEN_RANDOM_CHARS)


class TokenStore:
    """Token records of one namespace inside one transaction."""

    __slots__ = ("clock", "keys", "records")

    def __init__(self, tx: Transaction, keys: NamespaceKeys, clock: Clock) -> None:
        self.keys = keys
        self.records = keys.records(tx, "tok")
        self.clock = clock

    def hash(self, token: str) -> bytes:
        """Return the keyed hash that names ``token`` in storage."""
        return self.keys.token_hasher.hash(token)

    def _accessor_key(self, accessor: str) -> tuple[str, bytes]:
        return ("acc", self.hash("accessor:" + accessor))

    async def _stored(self, token_hash: bytes) -> TokenEntry | None:
        """Return the stored entry with this hash, live or not.

        Decoded entries are cached against their stored ciphertext (every request reads its token and
        its ancestors), so any change by any node is still seen at once.
        """
        return await self.records.get_decoded(("id", token_hash), _decode_entry, self.keys.cache)

    async def _alive(self, entry: TokenEntry, now: float) -> bool:
        """Whether ``entry`` and every ancestor of it exist and have not expired at ``now``."""
        current: TokenEntry | None = entry
        seen: set[bytes] = set()
        while current is not None:
            if current.expired(now) or current.token_hash in seen or len(seen) > MAX_CHAIN_DEPTH:
                return False
            seen.add(current.token_hash)
            if not current.parent_hash:
                return True
            current = await self._stored(current.parent_hash)
        # A parent link to a missing record: the parent was revoked, so its subtree is invalid too.
        return False

    async def get_by_hash(self, token_hash: bytes) -> TokenEntry | None:
        """Return the live entry with this hash, or ``None`` if absent, expired or under a dead ancestor."""
        entry = await self._stored(token_hash)
        if entry is None or not await self._alive(entry, self.clock.now()):
            return None
        return entry

    async def lookup(self, token: str) -> TokenEntry | None:
        """Return the live entry of ``token``, or ``None``."""
        if not token or len(token) > MAX_TOKEN_LENGTH:
            return None
        return await self.get_by_hash(self.hash(token))

    async def lookup_accessor(self, accessor: str) -> TokenEntry | None:
        """Return the live entry whose accessor is ``accessor``, or ``None``."""
        if not accessor or len(accessor) > MAX_TOKEN_LENGTH:
            return None
        raw = await self.records.get(*self._accessor_key(accessor))
        if raw is None:
            return None
        return await self.get_by_hash(raw)

    async def create(self, entry: TokenEntry, token_id: str | None = None) -> tuple[str, TokenEntry]:
        """Store a new token built from ``entry`` (its hash and accessor are filled in here).

        Returns the token text (the only time it exists in clear) and the stored entry. The parent link
        is written when ``entry.parent_hash`` is set.

        Raises:
            InvalidRequest: a caller-chosen ``token_id`` is empty, too long or already in use.
        """
        if token_id is None:
            token_id = new_token_id()
        elif not token_id or len(token_id) > MAX_TOKEN_LENGTH:
            raise InvalidRequest("invalid token ID")
        token_hash = self.hash(token_id)
        if await self.records.exists("id", token_hash):
            raise InvalidRequest("cannot create a token with a duplicate ID")
        accessor = random_base62(ACCESSOR_CHARS)
        entry = dataclasses.replace(
            entry, token_hash=token_hash, accessor=accessor, orphan=not entry.parent_hash
        )
        self.put(entry)
        self.records.put(self._accessor_key(accessor), token_hash)
        if entry.parent_hash:
            self.records.put(("child", entry.parent_hash, token_hash), b"")
        return token_id, entry

    def put(self, entry: TokenEntry) -> None:
        """Write ``entry`` back (after renew or a use count change)."""
        self.records.put(("id", entry.token_hash), orjson.dumps(entry.to_json()))

    async def use(self, entry: TokenEntry) -> None:
        """Count one use of a limited-use token; revoke it after its last use.

        The stored record is re-read first, because the request may have changed it (a renewal) or
        removed it (revoke-self) after ``entry`` was loaded; a missing record is left alone.
        """
        if entry.num_uses <= 0:
            return
        current = await self._stored(entry.token_hash)
        if current is None or current.num_uses <= 0:
            return
        if current.num_uses == 1:
            await self.revoke(current)
        else:
            self.put(dataclasses.replace(current, num_uses=current.num_uses - 1))

    async def children(self, token_hash: bytes) -> list[bytes]:
        """Return the hashes of a token's direct children."""
        rows = await self.records.range("child", token_hash)
        return [k[0] for k, _ in rows]

    async def _remove(self, token_hash: bytes) -> bool:
        """Delete one token's record, accessor index and parent link; ``True`` if a record existed."""
        current = await self._stored(token_hash)
        self.records.clear_prefix("child", token_hash)
        if current is None:
            return False
        self.records.clear("id", token_hash)
        self.records.clear(*self._accessor_key(current.accessor))
        if current.parent_hash:
            self.records.clear("child", current.parent_hash, token_hash)
        return True

    async def revoke(self, entry: TokenEntry, *, orphan_children: bool = False) -> int:
        """Revoke ``entry`` and (unless ``orphan_children``) its whole subtree; return how many records went.

        With ``orphan_children`` (Vault's revoke-orphan) the direct children lose their parent link and
        become orphans; their own subtrees stay as they are.
        """
        if orphan_children:
            for kid_hash in await self.children(entry.token_hash):
                kid = await self._stored(kid_hash)
                if kid is not None:
                    self.put(dataclasses.replace(kid, parent_hash=b"", orphan=True))
            return int(await self._remove(entry.token_hash))
        count = 0
        stack = [entry.token_hash]
        seen: set[bytes] = set()
        while stack:
            h = stack.pop()
            if h in seen:
                continue
            seen.add(h)
            # Children first are read before the parent's links are cleared.
            stack.extend(await self.children(h))
            count += int(await self._remove(h))
        return count

    async def entries(self) -> list[TokenEntry]:
        """Return every stored entry, live or not (for listing accessors and tidying)."""
        rows = await self.records.range("id")
        out = []
        for _, raw in rows:
            try:
                doc = orjson.loads(raw)
            except orjson.JSONDecodeError:
                raise CorruptRecord("stored token entry is not valid JSON") from None
            out.append(TokenEntry.from_json(doc))
        return out

    async def live_accessors(self) -> list[str]:
        """Return the accessors of every live token (Vault's ``auth/token/accessors``)."""
        now = self.clock.now()
        return [e.accessor for e in await self.entries() if await self._alive(e, now)]

    async def tidy(self) -> int:
        """Remove expired tokens (with their subtrees), dangling accessor indexes and child links.

        Returns how many token records were removed. Lookups never depend on this having run.
        """
        now = self.clock.now()
        removed = 0
        for entry in await self.entries():
            if await self._stored(entry.token_hash) is None:
                continue  # already removed with an ancestor in this pass
            if not await self._alive(entry, now):
                removed += await self.revoke(entry)
        for key, raw in await self.records.range("acc"):
            if await self._stored(raw) is None:
                self.records.clear("acc", *key)
        for key, _ in await self.records.range("child"):
            parent, child = key[0], key[1]
            if await self._stored(parent) is None or await self._stored(child) is None:
                self.records.clear("child", parent, child)
        return removed
