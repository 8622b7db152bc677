"""User-chosen hierarchical names stored under blind indexes, with directory markers for listing.

No user-chosen name ever appears in a physical key. A path such as ``a/b/c`` is split into components,
directories keeping their trailing slash (``a/``, ``b/``, ``c``); each component's id is
``HMAC(blind key, parent id || component)`` truncated to 16 bytes (see ``BlindIndexer``), chained from the
root id ``b""``. So the entry ``a/b/c`` lives at id ``I(I(I("", "a/"), "b/"), "c")``.

Listing needs the clear names, so every component also has a **directory marker**
``("d", parent id, child id)`` whose encrypted value is the component name. Markers are created when an
entry is created and removed, bottom up, when a directory becomes empty. Under concurrency this stays
exact because both steps are reads inside the same serializable transaction: removing a marker reads the
directory's range (an insert into it conflicts), and creating one reads the marker key (a removal
conflicts).

The caller stores its data under ``("e", id, ...)`` via :meth:`entry`.
"""

from __future__ import annotations

import functools

from strongroom.barrier.records import Records
from strongroom.crypto.kdf import BlindIndexer
from strongroom.errors import InvalidRequest

_MARKER = "d"
_ENTRY = "e"


def split_path(path: str) -> list[str]:
    """Split ``a/b/c`` into ``["a/", "b/", "c"]`` (a trailing slash makes the last one a directory).

    Raises:
        InvalidRequest: the path is empty or has an empty or dot component.
    """
    if not path:
        raise InvalidRequest("missing path")
    parts = path.split("/")
    trailing = parts[-1] == ""
    if trailing:
        parts = parts[:-1]
    for p in parts:
        if p in ("", ".", ".."):
            raise InvalidRequest(f"invalid path {path!r}")
    comps = [p + "/" for p in parts[:-1]]
    comps.append(parts[-1] + "/" if trailing else parts[-1])
    return comps


@functools.lru_cache(maxsize=4096)
def _split(path: str) -> tuple[str, ...]:
    # Memoised: a write request splits its path up to three times (existence check, entry, link).
    return tuple(split_path(path))


class PathIndex:
    """Blind-indexed hierarchical names inside one :class:`Records` subspace."""

    __slots__ = ("_indexer", "records")

    def __init__(self, records: Records, indexer: BlindIndexer) -> None:
        self.records = records
        self._indexer = indexer

    def id_of(self, path: str) -> bytes:
        """Return the blind id of an entry (or, with a trailing slash, a directory)."""
        return self._indexer.chain(_split(path))[-1]

    def entry(self, entry_id: bytes) -> Records:
        """Return the records of one entry, where the caller keeps its data."""
        return self.records.sub(_ENTRY, entry_id)

    async def link(self, path: str) -> bytes:
        """Make ``path`` listable (create any missing markers) and return its id."""
        comps = _split(path)
        ids = self._indexer.chain(comps)
        parents = (b"", *ids[:-1])
        # Walk up only to the first existing marker: a marker never exists without its parent's (markers
        # are created top down and removed bottom up, each time in one serializable transaction), so it
        # vouches for every marker above it, and reading it makes a concurrent removal conflict. A new
        # secret in an existing directory costs two reads instead of one per path level.
        level = len(comps) - 1
        while level >= 0 and not await self.records.exists(_MARKER, parents[level], ids[level]):
            level -= 1
        for i in range(level + 1, len(comps)):
            self.records.put((_MARKER, parents[i], ids[i]), comps[i].encode())
        return ids[-1]

    async def unlink(self, path: str) -> None:
        """Remove ``path``'s marker and the markers of directories that became empty."""
        comps = _split(path)
        ids = self._indexer.chain(comps)
        parents = (b"", *ids[:-1])
        for i in range(len(comps) - 1, -1, -1):
            self.records.clear(_MARKER, parents[i], ids[i])
            if i == 0:
                break
            # The parent directory stays while it has any other child.
            if await self.records.any_under(_MARKER, ids[i - 1]):
                break

    async def list(self, directory: str) -> list[str]:
        """Return the sorted child names of ``directory`` (``""`` is the root); ``[]`` if none."""
        if directory in ("", "/"):
            dir_id = b""
        else:
            if not directory.endswith("/"):
                directory += "/"
            dir_id = self.id_of(directory)
        rows = await self.records.range(_MARKER, dir_id)
        return sorted(v.decode() for _, v in rows)
