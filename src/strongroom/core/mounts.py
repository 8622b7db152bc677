"""The mount table of a namespace: which engine serves which path prefix.

The table is one barrier record, ``("ns", id, "sys", "mounts")``, holding every mount (so mount paths,
which users choose, are never visible in storage). Each mount's data lives in ``("ns", id, "m", uuid)``;
disabling a mount clears that subspace in the same transaction, and a later mount at the same path gets
a new uuid, so old data is never reused.

Routing is by longest matching prefix, as in Vault's router.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import orjson

from strongroom.core.namespace import NamespaceKeys
from strongroom.crypto.random import random_uuid
from strongroom.errors import CorruptRecord, InvalidRequest
from strongroom.storage.base import Transaction

DEFAULT_LEASE_TTL = 32 * 24 * 3600
"""Vault's system default and maximum lease TTL: 768 hours (32 days)."""

RESERVED_PREFIXES = ("sys/", "auth/", "cubbyhole/", "identity/", "audit/")
MOUNTS_KEY = ("mounts",)


@dataclass(frozen=True)
class MountEntry:
    """One mounted engine. ``path`` ends with ``/``; ``kind`` is ``"secret"`` or ``"auth"``."""

    path: str
    type: str
    uuid: str
    accessor: str
    description: str = ""
    options: dict[str, str] | None = None
    config: dict[str, Any] = field(default_factory=dict)
    local: bool = False
    seal_wrap: bool = False
    external_entropy_access: bool = False
    kind: str = "secret"

    def to_json(self) -> dict[str, Any]:
        """Return the stored form."""
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> MountEntry:
        """Parse the stored form."""
        return cls(**doc)

    @property
    def version(self) -> str:
        """The engine version option (``"2"`` for KV v2), or ``""``."""
        return (self.options or {}).get("version", "")

    def describe(self) -> dict[str, Any]:
        """Return the entry as ``sys/mounts`` shows it."""
        return {
            "type": self.type,
            "description": self.description,
            "accessor": self.accessor,
            "uuid": self.uuid,
            "config": {
                "default_lease_ttl": int(self.config.get("default_lease_ttl", 0)),
                "max_lease_ttl": int(self.config.get("max_lease_ttl", 0)),
                "force_no_cache": bool(self.config.get("force_no_cache", False)),
                **{k: v for k, v in self.config.items() if k not in ("default_lease_ttl", "max_lease_ttl", "force_no_cache")},
            },
            "options": self.options,
            "local": self.local,
            "seal_wrap": self.seal_wrap,
            "external_entropy_access": self.external_entropy_access,
            "plugin_version": "",
            "running_plugin_version": "v0.1.0+builtin.strongroom" if self.type != "system" else "",
            "running_sha256": "",
            "deprecation_status": "supported" if self.type not in ("system", "token") else None,
        }


@dataclass(frozen=True)
class MountTable:
    """An immutable snapshot of the mount table, secret and auth mounts together."""

    entries: tuple[MountEntry, ...]

    def match(self, path: str) -> MountEntry | None:
        """Return the mount with the longest path prefix of ``path`` (``path`` as in the URL)."""
        best: MountEntry | None = None
        for e in self.entries:
            full = e.path if e.kind == "secret" else "auth/" + e.path
            if (path.startswith(full) or path + "/" == full) and (
                best is None or len(full) > len(_full(best))
            ):
                best = e
        return best

    def by_kind(self, kind: str) -> list[MountEntry]:
        """Return the mounts of one kind in path order."""
        return sorted((e for e in self.entries if e.kind == kind), key=lambda e: e.path)

    def find(self, path: str, kind: str = "secret") -> MountEntry | None:
        """Return the mount at exactly ``path`` (with or without the trailing slash)."""
        path = normalize_mount_path(path)
        for e in self.entries:
            if e.kind == kind and e.path == path:
                return e
        return None

    def with_added(self, entry: MountEntry) -> MountTable:
        """Return a table with ``entry`` added.

        Raises:
            InvalidRequest: the path is in use, nested in or above another mount, or reserved.
        """
        for e in self.entries:
            if e.kind != entry.kind:
                continue
            if e.path == entry.path:
                raise InvalidRequest(f"path is already in use at {entry.path}")
            # Vault answers both nestings with the same words, which clients match on.
            if entry.path.startswith(e.path):
                raise InvalidRequest(f"path is already in use at {e.path}")
            if e.path.startswith(entry.path):
                raise InvalidRequest(f"path is already in use at {e.path}")
        return MountTable((*self.entries, entry))

    def without(self, entry: MountEntry) -> MountTable:
        """Return a table without ``entry``."""
        return MountTable(tuple(e for e in self.entries if e.uuid != entry.uuid))

    def replaced(self, entry: MountEntry) -> MountTable:
        """Return a table with the entry of the same uuid replaced by ``entry``."""
        return MountTable(tuple(entry if e.uuid == entry.uuid else e for e in self.entries))


def _full(e: MountEntry) -> str:
    return e.path if e.kind == "secret" else "auth/" + e.path


def normalize_mount_path(path: str) -> str:
    """Strip slashes around ``path`` and add the trailing one Vault stores.

    Raises:
        InvalidRequest: the path is empty or contains empty or dot segments.
    """
    inner = path.strip("/")
    if not inner or any(p in ("", ".", "..") for p in inner.split("/")):
        raise InvalidRequest(f"invalid mount path {path!r}")
    return inner + "/"


def new_entry(path: str, type_: str, *, kind: str = "secret", **kw: Any) -> MountEntry:
    """Build a new mount entry with a fresh uuid and accessor."""
    uuid = random_uuid()
    return MountEntry(
        path=path,
        type=type_,
        uuid=uuid,
        accessor=f"{'auth_' if kind == 'auth' else ''}{type_}_{random_uuid()[:8]}",
        kind=kind,
        **kw,
    )


def _decode(raw: bytes) -> MountTable:
    try:
        docs = orjson.loads(raw)
        return MountTable(tuple(MountEntry.from_json(d) for d in docs))
    except (orjson.JSONDecodeError, TypeError) as exc:
        raise CorruptRecord("malformed mount table") from exc


async def load_table(tx: Transaction, keys: NamespaceKeys) -> MountTable:
    """Read the mount table of the namespace (decoded once per stored version).

    Raises:
        CorruptRecord: the stored table is malformed or failed authentication.
    """
    table = await keys.records(tx, "sys").get_decoded(MOUNTS_KEY, _decode, keys.cache)
    return table if table is not None else MountTable(())


def store_table(tx: Transaction, keys: NamespaceKeys, table: MountTable) -> None:
    """Write the mount table in ``tx``."""
    keys.records(tx, "sys").put_json(MOUNTS_KEY, [e.to_json() for e in table.entries])


def clear_mount_data(tx: Transaction, keys: NamespaceKeys, entry: MountEntry) -> None:
    """Delete every record of a mount in ``tx``."""
    keys.records(tx, "m", entry.uuid).clear_prefix()
