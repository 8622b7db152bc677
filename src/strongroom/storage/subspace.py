"""Subspaces: tuple-prefixed key spaces, and the fixed top-level layout of strongroom's store.

A :class:`Subspace` is what a component is handed instead of the whole store: every key it builds lies
under its prefix, and ``range()`` covers exactly its keys. The layout is specified in
``docs/spec/storage-layout.md``.
"""

from __future__ import annotations

import json
from typing import Any

from strongroom.errors import CorruptRecord, StorageError
from strongroom.storage.base import Transaction
from strongroom.storage.tuple import pack, unpack

__all__ = [
    "LAYOUT_KEY",
    "LAYOUT_VERSION",
    "ROOT",
    "ROOT_NAMESPACE_ID",
    "Subspace",
    "check_layout",
    "namespace",
]


class Subspace:
    """The keys whose tuple starts with ``prefix``.

    Guarantees: ``key(*items)`` equals ``pack(prefix + items)``; every such key (with at least one item) is
    inside ``range()`` and ``contains`` it; ``unpack(key(*items)) == items``.
    """

    __slots__ = ("_prefix", "_raw")

    def __init__(self, prefix: tuple[Any, ...] = (), *, raw_prefix: bytes = b"") -> None:
        """Build the subspace of ``prefix``, below an optional raw byte prefix.

        Its keys start with ``raw_prefix + pack(prefix)``.

        Raises:
            TypeError, ValueError: ``prefix`` holds an element the tuple encoding does not support.
        """
        self._prefix = tuple(prefix)
        self._raw = raw_prefix + pack(self._prefix)

    @property
    def raw_prefix(self) -> bytes:
        """The byte prefix shared by every key of the subspace."""
        return self._raw

    @property
    def prefix(self) -> tuple[Any, ...]:
        """The tuple prefix (without any raw byte prefix)."""
        return self._prefix

    def key(self, *items: Any) -> bytes:
        """Return the key of ``prefix + items``.

        Raises:
            TypeError, ValueError: an item is not encodable.
        """
        return self._raw + pack(items)

    def sub(self, *items: Any) -> Subspace:
        """Return the nested subspace ``prefix + items``."""
        child = Subspace.__new__(Subspace)
        child._prefix = self._prefix + items
        child._raw = self._raw + pack(items)
        return child

    def unpack(self, key: bytes) -> tuple[Any, ...]:
        """Return the items of ``key`` after the prefix.

        Raises:
            CorruptRecord: ``key`` is not in this subspace or is not a well-formed tuple.
        """
        if not key.startswith(self._raw):
            raise CorruptRecord("key outside the expected subspace")
        return unpack(key[len(self._raw) :])

    def contains(self, key: bytes) -> bool:
        """Whether ``key`` starts with the prefix (the prefix key itself included)."""
        return key.startswith(self._raw)

    def range(self, *items: Any) -> tuple[bytes, bytes]:
        """Return ``(begin, end)`` covering every key strictly below ``prefix + items``."""
        p = self._raw + pack(items)
        return p + b"\x00", p + b"\xff"

    def __repr__(self) -> str:
        return f"Subspace({self._raw!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Subspace) and other._raw == self._raw

    def __hash__(self) -> int:
        return hash(self._raw)


# The top-level layout (docs/spec/storage-layout.md section 3).
ROOT = Subspace()
ROOT_NAMESPACE_ID = b"root"
LAYOUT_KEY = pack(("layout",))
LAYOUT_VERSION = (1, 0)
_NAMESPACES = ROOT.sub("ns")


def namespace(ns_id: bytes) -> Subspace:
    """Return the subspace of one namespace, ``("ns", ns_id)``.

    Its areas are ``.key("seal")``, ``.key("keyring")``, ``.sub("sys")``, ``.sub("pol")``, ``.sub("tok")``,
    ``.sub("m", mount_uuid)`` and ``.sub("ctr")``.
    """
    return _NAMESPACES.sub(ns_id)


async def check_layout(tx: Transaction, version: tuple[int, int] = LAYOUT_VERSION) -> tuple[int, int]:
    """Check the layout version record, writing it on an empty store; return the stored version.

    The rule (spec section 3): same major -> proceed whatever the minor; newer major -> refuse; older
    major -> refuse (no migration exists yet); no record on a store holding namespace data -> refuse.

    Raises:
        StorageError: the store's layout cannot be served by this server.
        CorruptRecord: the record is not valid layout JSON.
    """
    raw = await tx.get(LAYOUT_KEY)
    if raw is None:
        begin, end = _NAMESPACES.range()
        if await tx.range(begin, end, limit=1):
            raise StorageError("storage holds data but no layout version record; refusing to start")
        tx.set(LAYOUT_KEY, json.dumps({"major": version[0], "minor": version[1]}).encode())
        return version
    try:
        doc = json.loads(raw)
        stored = (int(doc["major"]), int(doc["minor"]))
    except (ValueError, KeyError, TypeError) as exc:
        raise CorruptRecord("malformed layout version record") from exc
    if stored[0] != version[0]:
        raise StorageError(
            f"storage layout {stored[0]}.{stored[1]} cannot be served by this server "
            f"(layout {version[0]}.{version[1]})"
        )
    return stored
