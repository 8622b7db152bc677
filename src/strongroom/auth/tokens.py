"""The token store of a namespace: service tokens kept only as keyed hashes.

Records (area ``("ns", id, "tok")``, all barrier-encrypted):

* ``("id", H(token))`` -> the :class:`TokenEntry` (the token itself is never stored);
* ``("acc", H(accessor))`` -> ``H(token)``, so accessors resolve without being stored in clear;
* ``("child", H(parent), H(child))`` -> empty, so revoking a parent finds its children.

``H`` is HMAC-SHA256 under the keyring's token-hash key. Expiry is checked on every lookup against the
injected clock: an expired token is invalid at once, whether or not a cleanup has removed it yet.
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


@dataclass(frozen=True)
class TokenEntry:
    """A stored token. ``token_hash`` identifies it; the token text is never kept.

    ``ttl`` is the current TTL in seconds (0 = never expires); ``expire_at`` is absolute (0 = never).
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
        """Return the ``data`` of a token lookup, as Vault shows it.

        ``token_id`` is the token text when the caller presented it, ``""`` for accessor lookups.
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
            "renewable": self.renewable,
            "ttl": self.ttl_at(now),
            "type": self.type,
        }
        if self.period:
            data["period"] = self.period
        if self.role:
            data["role"] = self.role
        return data


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

    async def get_by_hash(self, token_hash: bytes) -> TokenEntry | None:
        """Return the live entry with this hash, or ``None`` if absent or expired."""
        doc = await self.records.get_json("id", token_hash)
        if doc is None:
            return None
        entry = TokenEntry.from_json(doc)
        if entry.expired(self.clock.now()):
            return None
        return entry

    async def lookup(self, token: str) -> TokenEntry | None:
        """Return the live entry of ``token``, or ``None``."""
        if not token or len(token) > 256:
            return None
        return await self.get_by_hash(self.hash(token))

    async def lookup_accessor(self, accessor: str) -> TokenEntry | None:
        """Return the live entry whose accessor is ``accessor``, or ``None``."""
        if not accessor or len(accessor) > 256:
            return None
        raw = await self.records.get("acc", self.hash("accessor:" + accessor))
        if raw is None:
            return None
        return await self.get_by_hash(raw)

    async def create(self, entry: TokenEntry, token_id: str | None = None) -> tuple[str, TokenEntry]:
        """Store a new token built from ``entry`` (its hash and accessor are filled in here).

        Returns the token text (the only time it exists in clear) and the stored entry.

        Raises:
            InvalidRequest: a caller-chosen ``token_id`` is already in use or malformed.
        """
        if token_id is None:
            token_id = new_token_id()
        elif not token_id or "." in token_id[:1] or len(token_id) > 256:
            raise InvalidRequest("invalid token ID")
        token_hash = self.hash(token_id)
        if await self.records.exists("id", token_hash):
            raise InvalidRequest("cannot create a token with a duplicate ID")
        accessor = random_base62(ACCESSOR_CHARS)
        entry = dataclasses.replace(entry, token_hash=token_hash, accessor=accessor)
        self.put(entry)
        self.records.put(("acc", self.hash("accessor:" + accessor)), token_hash)
        if entry.parent_hash:
            self.records.put(("child", entry.parent_hash, token_hash), b"")
        return token_id, entry

    def put(self, entry: TokenEntry) -> None:
        """Write ``entry`` back (after renew or a use count change)."""
        self.records.put(("id", entry.token_hash), orjson.dumps(entry.to_json()))

    async def use(self, entry: TokenEntry) -> None:
        """Count one use of a limited-use token; revoke it after its last use."""
        if entry.num_uses <= 0:
            return
        if entry.num_uses == 1:
            await self.revoke(entry, orphan_children=False)
        else:
            self.put(dataclasses.replace(entry, num_uses=entry.num_uses - 1))

    async def children(self, token_hash: bytes) -> list[bytes]:
        """Return the hashes of a token's direct children."""
        rows = await self.records.range("child", token_hash)
        return [k[0] for k, _ in rows]

    async def revoke(self, entry: TokenEntry, *, orphan_children: bool = False) -> int:
        """Revoke ``entry`` and (unless ``orphan_children``) its whole subtree; return how many.

        Orphaned children lose their parent link and become orphans, as with Vault's revoke-orphan.
        """
        count = 0
        stack = [entry.token_hash]
        first = True
        while stack:
            h = stack.pop()
            doc = await self.records.get_json("id", h)
            kids = await self.children(h)
            self.records.clear_prefix("child", h)
            if doc is not None:
                current = TokenEntry.from_json(doc)
                self.records.clear("id", h)
                self.records.clear("acc", self.hash("accessor:" + current.accessor))
                if current.parent_hash:
                    self.records.clear("child", current.parent_hash, h)
                count += 1
            if first and orphan_children:
                for k in kids:
                    kid = await self.records.get_json("id", k)
                    if kid is not None:
                        orphan = dataclasses.replace(TokenEntry.from_json(kid), parent_hash=b"", orphan=True)
                        self.put(orphan)
                break
            first = False
            stack.extend(kids)
        return count
