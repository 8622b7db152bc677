"""Namespace names, the namespace table of a namespace, the platform's registry, and deletion.

Format and rules: ``docs/spec/namespaces.md``. In short:

* a namespace path is canonical with a trailing slash (``a/b/``); each segment obeys :func:`check_segment`;
* a namespace's children are listed in ITS table, a blind-indexed :class:`~strongroom.barrier.paths.PathIndex`
  in its ``("sys", "namespaces")`` records, so no name appears in storage and reading a child costs one
  point read (decoded once per ciphertext through the namespace's decode cache);
* the platform (root namespace) keeps a registry of every namespace id with its parent id, because a
  sealed tenant's own table cannot be read and sealing or ``delete-sealed -force`` must still find its
  descendants;
* deleting writes a tombstone in the same transaction that unlinks the entry; :func:`purge_deleted` then
  clears the namespace's subspace in bounded chunks, idempotently.
"""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from strongroom.barrier.paths import PathIndex
from strongroom.core.namespace import NamespaceKeys
from strongroom.core.vault import Vault
from strongroom.crypto.random import random_base62, random_bytes, random_uuid
from strongroom.crypto.secret import constant_time_equal
from strongroom.errors import CorruptRecord, InvalidRequest
from strongroom.storage.base import Store, Transaction, transactional
from strongroom.storage.subspace import namespace

RESERVED = ("sys", "auth", "cubbyhole", "identity", "root", "audit")
"""Segments no namespace may be named: they would shadow the system paths of the parent."""
MAX_SEGMENT_BYTES = 64
MAX_DEPTH = 32
"""Segments of a namespace path at most: every request into a namespace reads records at each level of its
chain, so an unbounded depth would let one tenant make every request into its subtree arbitrarily costly."""
ID_BYTES = 16
ACCESSOR_CHARS = 6
"""OpenBao's accessor (``id`` on the wire) is 6 base62 characters."""

TABLE_AREA = ("sys", "namespaces")
REGISTRY = "ns-registry"
TOMBSTONES = "ns-deleted"
_ENTRY = ("ns",)


def canonical(path: str) -> str:
    """Return ``path`` without a leading ``/`` and with one trailing ``/`` (``""`` stays the root).

    Segments are not checked here; :func:`split_path` does that.
    """
    path = path.lstrip("/")
    if not path:
        return ""
    return path if path.endswith("/") else path + "/"


def header_path(header: str) -> str:
    """Canonical form of an ``X-Vault-Namespace`` value; ``root`` names the root namespace, as in OpenBao."""
    path = canonical(header.strip())
    return "" if path == "root/" else path


def check_segment(segment: str) -> None:
    """Apply the naming rules to one path segment.

    Raises:
        InvalidRequest: the segment is empty, ``.``/``..``, reserved, longer than 64 bytes, or holds a
            control, space or wildcard character (OpenBao's messages where OpenBao has one).
    """
    if not segment:
        raise InvalidRequest("namespace name cannot be empty")
    if segment in (".", "..") or segment in RESERVED:
        # Every segment, as OpenBao: a child named "sys" would make "/v1/a/sys/..." ambiguous.
        raise InvalidRequest(f'"{segment}/" is a reserved path and cannot be used as a namespace name')
    if len(segment.encode("utf-8", "surrogatepass")) > MAX_SEGMENT_BYTES:
        raise InvalidRequest(f"namespace name {segment[:16]!r}... is longer than {MAX_SEGMENT_BYTES} bytes")
    for ch in segment:
        category = unicodedata.category(ch)
        if category.startswith("C"):
            # OpenBao's unicode.IsGraphic test; the name is shown escaped, as Go's %q does.
            raise InvalidRequest(
                f"{_quoted(segment)} contains unicode characters that cannot be used in a namespace name: "
                f"{_quoted(ch)}"
            )
        if ch.isspace() or category.startswith("Z"):
            raise InvalidRequest(
                f'"{segment}" contains space characters that cannot be used in a namespace name'
            )
        if ch in "+*":
            raise InvalidRequest(
                f'"{segment}" contains wildcard characters that cannot be used in a namespace name: {ch!r}'
            )


def _quoted(text: str) -> str:
    return orjson.dumps(text).decode()


def split_path(path: str) -> list[str]:
    """Return the checked segments of a (canonical or not) namespace path; ``[]`` for the root.

    Raises:
        InvalidRequest: a segment breaks the rules (see :func:`check_segment`), or there are more than
            :data:`MAX_DEPTH` segments.
    """
    return list(_split_checked(path))


@functools.lru_cache(maxsize=4096)
def _split_checked(path: str) -> tuple[str, ...]:
    # Memoised: every request with X-Vault-Namespace checks its header (errors are not cached).
    path = path.lstrip("/")
    if not path:
        return ()
    if path.endswith("/"):
        path = path[:-1]
    if path.count("/") >= MAX_DEPTH:
        # Before the per-character checks: an overlong header costs one count, not a scan of every segment.
        raise InvalidRequest(f"namespaces cannot be nested more than {MAX_DEPTH} deep")
    segments = tuple(path.split("/"))
    for segment in segments:
        check_segment(segment)
    return segments


def parse_name(name: str) -> str:
    """Check the ``NAME`` of ``sys/namespaces/NAME`` (one segment) and return it without slashes.

    Raises:
        InvalidRequest: empty, nested (``a/b``) or breaking a naming rule.
    """
    inner = name.strip("/")
    if not inner:
        raise InvalidRequest("namespace name cannot be empty")
    if "/" in inner:
        raise InvalidRequest("namespace name cannot contain /")
    check_segment(inner)
    return inner


@dataclass(frozen=True)
class NamespaceEntry:
    """One namespace as its parent's table stores it. Treat ``custom_metadata`` as read-only."""

    ns_id: bytes
    uuid: str
    accessor: str
    path: str
    custom_metadata: dict[str, str] = field(default_factory=dict)
    sealable: bool = False
    lock: str = ""
    """Hex keyed hash of the API-lock unlock key, ``""`` when unlocked."""
    created: float = 0.0

    @property
    def locked(self) -> bool:
        """Whether the namespace's API is locked (``sys/namespaces/api-lock``)."""
        return bool(self.lock)

    @property
    def name(self) -> str:
        """The last segment of the path."""
        return self.path.rstrip("/").rsplit("/", 1)[-1]

    @classmethod
    def new(cls, path: str, *, sealable: bool, custom_metadata: dict[str, str], now: float) -> NamespaceEntry:
        """A new namespace at ``path`` with fresh random identifiers."""
        return cls(
            ns_id=random_bytes(ID_BYTES),
            uuid=random_uuid(),
            accessor=random_base62(ACCESSOR_CHARS),
            path=path,
            custom_metadata=dict(custom_metadata),
            sealable=sealable,
            created=now,
        )

    def to_json(self) -> dict[str, Any]:
        """The stored form (docs/spec/namespaces.md section 3)."""
        return {
            "id": self.ns_id.hex(),
            "uuid": self.uuid,
            "accessor": self.accessor,
            "path": self.path,
            "custom_metadata": self.custom_metadata,
            "seal": {"type": "shamir"} if self.sealable else None,
            "locked": self.lock or None,
            "created": self.created,
        }

    @classmethod
    def from_json(cls, doc: Any) -> NamespaceEntry:
        """Parse the stored form.

        Raises:
            CorruptRecord: the record is not a namespace entry.
        """
        try:
            meta = doc.get("custom_metadata") or {}
            return cls(
                ns_id=bytes.fromhex(doc["id"]),
                uuid=str(doc["uuid"]),
                accessor=str(doc["accessor"]),
                path=str(doc["path"]),
                custom_metadata={str(k): str(v) for k, v in meta.items()},
                sealable=doc.get("seal") is not None,
                lock=str(doc.get("locked") or ""),
                created=float(doc.get("created", 0.0)),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise CorruptRecord("malformed namespace entry") from exc

    def describe(self) -> dict[str, Any]:
        """The namespace as OpenBao's ``sys/namespaces`` shows it."""
        return {
            "uuid": self.uuid,
            "id": self.accessor,
            "path": self.path,
            "tainted": False,
            "locked": self.locked,
            "custom_metadata": dict(self.custom_metadata),
        }


def _decode_entry(raw: bytes) -> NamespaceEntry:
    try:
        return NamespaceEntry.from_json(orjson.loads(raw))
    except orjson.JSONDecodeError:
        raise CorruptRecord("malformed namespace entry") from None


def unlock_hash(keys: NamespaceKeys, unlock_key: str) -> str:
    """The stored form of an API-lock unlock key: a keyed hash under the parent's token-hash key."""
    return keys.token_hasher.hash("ns-unlock:" + unlock_key).hex()


def unlock_matches(keys: NamespaceKeys, entry: NamespaceEntry, unlock_key: str) -> bool:
    """Whether ``unlock_key`` is the key that locked ``entry`` (constant-time comparison)."""
    return constant_time_equal(unlock_hash(keys, unlock_key).encode(), entry.lock.encode())


class NamespaceTable:
    """The children of one namespace (given by its keys), read and written in one transaction."""

    __slots__ = ("_index", "_tx", "keys")

    _SLOTS_MAX = 4096

    def __init__(self, tx: Transaction, keys: NamespaceKeys) -> None:
        self.keys = keys
        self._tx = tx
        self._index: PathIndex | None = None

    @property
    def index(self) -> PathIndex:
        """The blind-indexed table (built on first use: a lookup does not need it)."""
        if self._index is None:
            self._index = self.keys.paths(self._tx, *TABLE_AREA)
        return self._index

    async def get(self, name: str) -> NamespaceEntry | None:
        """Return the child ``name`` (one checked segment), or ``None``.

        Every request into a namespace reads its entry: the physical key is kept per name (it depends on
        the blind-index key, which never changes), and the decoded entry is reused while its ciphertext is.
        """
        slots = self.keys.engine_cache
        slot = ("ns-child", name)
        physical = slots.get(slot)
        if physical is None:
            index = self.index
            physical = index.entry(index.id_of(name)).subspace.key(*_ENTRY)
            if len(slots) < self._SLOTS_MAX:
                slots[slot] = physical
        record = await self._tx.get(physical)
        cache = self.keys.cache
        if record is None:
            cache.pop(physical, None)
            return None
        hit = cache.get(physical)
        if hit is not None and hit[0] == record:
            entry: NamespaceEntry = hit[1]
            return entry
        decoded = _decode_entry(self.keys.barrier.decrypt(physical, record))
        if len(cache) > 4096:
            cache.clear()
        cache[physical] = (record, decoded)
        return decoded

    async def put(self, name: str, entry: NamespaceEntry) -> None:
        """Create or replace the child ``name``."""
        entry_id = await self.index.link(name)
        self.index.entry(entry_id).put_json(_ENTRY, entry.to_json())

    async def remove(self, name: str) -> None:
        """Remove the child ``name`` (no error if absent)."""
        entry = self.index.entry(self.index.id_of(name))
        if await entry.exists(*_ENTRY):
            entry.clear(*_ENTRY)
            await self.index.unlink(name)

    async def names(self) -> list[str]:
        """Return the children's names, sorted."""
        return await self.index.list("")

    async def entries(self) -> list[NamespaceEntry]:
        """Return every child entry, in name order."""
        out = []
        for name in await self.names():
            entry = await self.get(name)
            if entry is not None:
                out.append(entry)
        return out

    async def empty(self) -> bool:
        """Whether the namespace has no child."""
        return not await self.index.records.any_under("d")


# -- the platform's registry -------------------------------------------------------------------------------


def register(
    tx: Transaction, platform: NamespaceKeys, ns_id: bytes, parent_id: bytes, *, sealable: bool
) -> None:
    """Record a new namespace in the platform registry (in the creating transaction)."""
    platform.records(tx, "sys", REGISTRY).put_json(
        (ns_id,), {"parent": parent_id.hex(), "sealable": sealable}
    )


async def registry(tx: Transaction, platform: NamespaceKeys) -> dict[bytes, tuple[bytes, bool]]:
    """Return ``{id: (parent id, sealable)}`` for every namespace but the root.

    Raises:
        CorruptRecord: a registry record is damaged.
    """
    out: dict[bytes, tuple[bytes, bool]] = {}
    for key, raw in await platform.records(tx, "sys", REGISTRY).range():
        try:
            doc = orjson.loads(raw)
            out[bytes(key[0])] = (bytes.fromhex(doc["parent"]), bool(doc["sealable"]))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, IndexError) as exc:
            raise CorruptRecord("malformed namespace registry record") from exc
    return out


def descendants(tree: dict[bytes, tuple[bytes, bool]], ns_id: bytes) -> list[bytes]:
    """The ids below ``ns_id`` in ``tree`` (from :func:`registry`), parents before children."""
    children: dict[bytes, list[bytes]] = {}
    for child, (parent, _) in tree.items():
        children.setdefault(parent, []).append(child)
    out: list[bytes] = []
    frontier = list(children.get(ns_id, []))
    while frontier:
        current = frontier.pop(0)
        out.append(current)
        frontier.extend(children.get(current, []))
    return out


def forget(tx: Transaction, platform: NamespaceKeys, ids: Iterable[bytes], now: float) -> None:
    """Delete namespaces ``ids`` for good, in the caller's transaction (the entry is unlinked by the caller).

    Drops their registry records, tenant key copies and ceremony records (unseal, rekey, generate-root), and
    writes one tombstone each so
    :func:`purge_deleted` clears their subspaces.
    """
    for ns_id in ids:
        platform.records(tx, "sys", REGISTRY).clear(ns_id)
        platform.records(tx, "sys", "tenant-keys").clear(ns_id)
        platform.records(tx, "sys", "tenant-unseal").clear(ns_id)
        platform.records(tx, "sys", "tenant-rekey").clear(ns_id)
        platform.records(tx, "sys", "tenant-generate-root").clear(ns_id)
        platform.records(tx, "sys", TOMBSTONES).put_json((ns_id,), {"deleted": now})


PURGE_CHUNK = 512
"""Keys cleared per purge transaction: far below every backend's per-transaction limit."""


async def purge_step(tx: Transaction, platform: NamespaceKeys, *, chunk: int = PURGE_CHUNK) -> bool:
    """Clear up to ``chunk`` keys of one deleted namespace; return ``False`` when nothing was left to do.

    Idempotent: the tombstone goes only once its subspace is empty, in the transaction that sees it empty.
    """
    rows = await platform.records(tx, "sys", TOMBSTONES).range(limit=1)
    if not rows:
        return False
    ns_id = bytes(rows[0][0][0])
    begin, end = namespace(ns_id).range()
    keys = await tx.range(begin, end, limit=chunk)
    if keys:
        tx.clear_range(begin, keys[-1][0] + b"\x00")
    if len(keys) < chunk:
        platform.records(tx, "sys", TOMBSTONES).clear(ns_id)
    return True


async def purge_deleted(
    store: Store,
    platform: Vault,
    *,
    before: Callable[[Transaction], Awaitable[None]] | None = None,
    chunk: int = PURGE_CHUNK,
) -> int:
    """Purge every deleted namespace, one :func:`purge_step` per transaction; return the steps taken.

    ``before`` runs first in each transaction (a background job checks its lease there).

    Raises:
        Sealed: the platform is sealed on this node.
        StorageError: the store failed (the purge resumes on the next call).
    """
    steps = 0

    async def step(tx: Transaction) -> bool:
        if before is not None:
            await before(tx)
        return await purge_step(tx, await platform.current_keys(tx), chunk=chunk)

    while await transactional(store, step):
        steps += 1
    return steps
