"""KV v2 storage model: mount config, per-secret metadata and version records, and their Vault shapes.

Storage layout (inside the mount's own subspace, every value barrier-encrypted):

* ``("config",)``: the mount configuration, JSON ``{max_versions, cas_required, delete_version_after}``
  (seconds; ``-1`` means "disabled for every key").
* Secret paths go through the blind :class:`~strongroom.barrier.paths.PathIndex` of area ``"k"``; the
  entry of a path holds ``("meta",)`` (JSON :class:`KeyMeta`, including the per-version metadata map)
  and one ``("v", n)`` record per live version (the JSON of that version's ``data`` object).

So reading a version costs two point reads (metadata, then that version); no read ever loads all
versions. A secret "exists" (for listing and for ACL create/update) exactly when its metadata record
does: metadata is created by the first data write or metadata write and removed only by a metadata
delete, as in Vault.

Semantics follow Vault's ``vault-plugin-secrets-kv``: version numbers start at 1; ``oldest_version``
stays 0 until the first pruning; the number of versions kept is the larger non-zero of the key's and the
mount's ``max_versions`` (default 10); ``delete_version_after`` fixes a version's ``deletion_time`` when it
is written (or undeleted) to creation time plus the smaller non-zero of the two settings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from strongroom.barrier.paths import PathIndex
from strongroom.barrier.records import Records
from strongroom.clock import rfc3339
from strongroom.engines.context import Context
from strongroom.engines.kv.common import PATH_AREA, go_duration, weak_int
from strongroom.errors import CheckAndSetMismatch, CorruptRecord, InvalidRequest

DEFAULT_MAX_VERSIONS = 10
CONFIG_KEY = ("config",)
META_KEY = ("meta",)
VERSION = "v"

DVA_DISABLED = -1
"""Mount ``delete_version_after`` value meaning "never set a deletion time", as Vault stores ``-1s``."""


@dataclass
class Config:
    """The mount-level settings of ``config``."""

    max_versions: int = 0
    cas_required: bool = False
    delete_version_after: int = 0

    def to_response(self) -> dict[str, Any]:
        """Return the ``config`` read shape."""
        return {
            "cas_required": self.cas_required,
            "delete_version_after": go_duration(self.delete_version_after),
            "max_versions": self.max_versions,
        }


@dataclass
class VersionMeta:
    """Metadata of one version; times are epoch seconds, ``deletion`` ``None`` when not deleted."""

    created: float
    deletion: float | None = None
    destroyed: bool = False

    def deleted(self, now: float) -> bool:
        """Whether the version counts as deleted at ``now``.

        Vault compares with a strict "before now"; with an injectable clock that does not move between
        two calls an explicit delete must still take effect, so the instant itself counts as deleted.
        """
        return self.deletion is not None and self.deletion <= now


@dataclass
class KeyMeta:
    """Everything Vault keeps in a secret's ``KeyMetadata``."""

    created: float
    updated: float
    current_version: int = 0
    oldest_version: int = 0
    max_versions: int = 0
    cas_required: bool = False
    delete_version_after: int = 0
    custom_metadata: dict[str, str] | None = None
    versions: dict[int, VersionMeta] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """Return the stored form."""
        return {
            "created": self.created,
            "updated": self.updated,
            "current_version": self.current_version,
            "oldest_version": self.oldest_version,
            "max_versions": self.max_versions,
            "cas_required": self.cas_required,
            "delete_version_after": self.delete_version_after,
            "custom_metadata": self.custom_metadata,
            "versions": {
                str(n): [v.created, v.deletion, v.destroyed] for n, v in sorted(self.versions.items())
            },
        }

    @classmethod
    def from_json(cls, doc: Any) -> KeyMeta:
        """Parse the stored form.

        Raises:
            CorruptRecord: the record does not have the expected shape.
        """
        try:
            versions = {
                int(n): VersionMeta(float(c), None if d is None else float(d), bool(x))
                for n, (c, d, x) in doc["versions"].items()
            }
            return cls(
                created=float(doc["created"]),
                updated=float(doc["updated"]),
                current_version=int(doc["current_version"]),
                oldest_version=int(doc["oldest_version"]),
                max_versions=int(doc["max_versions"]),
                cas_required=bool(doc["cas_required"]),
                delete_version_after=int(doc["delete_version_after"]),
                custom_metadata=doc["custom_metadata"],
                versions=versions,
            )
        except (KeyError, TypeError, ValueError):
            raise CorruptRecord("stored KV metadata has an unexpected shape") from None

    def version_response(self, number: int, vm: VersionMeta) -> dict[str, Any]:
        """Return Vault's per-version metadata shape (data write response, ``metadata`` of a read)."""
        return {
            "created_time": rfc3339(vm.created),
            "custom_metadata": self.custom_metadata or None,
            "deletion_time": "" if vm.deletion is None else rfc3339(vm.deletion),
            "destroyed": vm.destroyed,
            "version": number,
        }

    def to_response(self) -> dict[str, Any]:
        """Return the ``metadata/:path`` read shape."""
        return {
            "cas_required": self.cas_required,
            "created_time": rfc3339(self.created),
            "current_version": self.current_version,
            "custom_metadata": self.custom_metadata or None,
            "delete_version_after": go_duration(self.delete_version_after),
            "max_versions": self.max_versions,
            "oldest_version": self.oldest_version,
            "updated_time": rfc3339(self.updated),
            "versions": {
                str(n): {
                    "created_time": rfc3339(v.created),
                    "deletion_time": "" if v.deletion is None else rfc3339(v.deletion),
                    "destroyed": v.destroyed,
                }
                for n, v in sorted(self.versions.items())
            },
        }

    def add_version(self, created: float, deletion: float | None, config_max: int) -> range:
        """Append a version and slide the window of kept versions; return the version numbers to purge.

        The window is the larger non-zero of the key's and the mount's ``max_versions`` (Vault's
        ``AddVersion``), or 10 when both are 0.
        """
        self.current_version += 1
        self.versions[self.current_version] = VersionMeta(created, deletion)
        self.updated = created
        keep = max(self.max_versions, config_max) or DEFAULT_MAX_VERSIONS
        if self.current_version - self.oldest_version < keep:
            return range(0)
        last = self.current_version - keep
        purged = range(self.oldest_version, last + 1)
        for n in purged:
            self.versions.pop(n, None)
        self.oldest_version = last + 1
        return purged


def deletion_time(created: float, config: Config, meta: KeyMeta) -> float | None:
    """Return when a version created (or undeleted) at ``created`` is to count as deleted, if ever.

    The smaller non-zero of the mount's and the key's ``delete_version_after``; none when both are 0 or
    the mount disabled the feature.
    """
    if config.delete_version_after == DVA_DISABLED or config.delete_version_after < 0:
        return None
    candidates = [d for d in (config.delete_version_after, meta.delete_version_after) if d > 0]
    if not candidates:
        return None
    return created + min(candidates)


def check_cas(options: dict[str, Any] | None, config: Config, meta: KeyMeta | None) -> None:
    """Enforce the ``cas`` option of a data write or patch, with Vault's messages.

    ``cas`` must equal the current version (0 for a secret that does not exist yet); it is required when
    the mount or the key sets ``cas_required``.

    Raises:
        InvalidRequest: ``cas`` is not an integer, or is required but missing.
        CheckAndSetMismatch: ``cas`` differs from the current version.
    """
    current = meta.current_version if meta is not None else 0
    if options is not None and "cas" in options:
        try:
            cas = weak_int(options["cas"])
        except ValueError:
            raise InvalidRequest("error parsing check-and-set parameter") from None
        if cas != current:
            raise CheckAndSetMismatch("check-and-set parameter did not match the current version")
    elif config.cas_required or (meta is not None and meta.cas_required):
        raise InvalidRequest("check-and-set parameter required for this call")


class Secrets:
    """Access to one mount's KV v2 records inside the request's transaction."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        # The same index as ctx.paths(PATH_AREA), through the namespace's cache of packed area prefixes.
        self.index: PathIndex = ctx.keys.paths(ctx.tx, "m", ctx.mount.uuid, PATH_AREA)

    def entry(self, path: str) -> Records:
        """Return the records of the secret at ``path`` (which need not exist).

        Raises:
            InvalidRequest: the path is empty or has an empty or dot component.
        """
        return self.index.entry(self.index.id_of(path))

    async def version(self, path: str, number: int) -> tuple[Records, KeyMeta, int, VersionMeta] | None:
        """Locate version ``number`` of the secret at ``path`` (0: the current one).

        Returns ``(entry, metadata, version number, version metadata)``, or ``None`` when the secret or
        that version does not exist. Deleted and destroyed versions are returned: callers answer them
        with Vault's 404-with-metadata.
        """
        entry = self.entry(path)
        meta = await self.meta(entry)
        if meta is None:
            return None
        number = number if number > 0 else meta.current_version
        vm = meta.versions.get(number)
        if vm is None:
            return None
        return entry, meta, number, vm

    async def config(self) -> Config:
        """Return the mount configuration (defaults when never written).

        Raises:
            CorruptRecord: the stored configuration has an unexpected shape.
        """
        doc = await self.ctx.records.get_json(*CONFIG_KEY)
        if doc is None:
            return Config()
        try:
            return Config(int(doc["max_versions"]), bool(doc["cas_required"]), int(doc["delete_version_after"]))
        except (KeyError, TypeError, ValueError):
            raise CorruptRecord("stored KV config has an unexpected shape") from None

    def save_config(self, config: Config) -> None:
        """Buffer the mount configuration."""
        self.ctx.records.put_json(
            CONFIG_KEY,
            {
                "max_versions": config.max_versions,
                "cas_required": config.cas_required,
                "delete_version_after": config.delete_version_after,
            },
        )

    async def meta(self, entry: Records) -> KeyMeta | None:
        """Return the metadata of a secret, or ``None`` when the secret does not exist."""
        doc = await entry.get_json(*META_KEY)
        return None if doc is None else KeyMeta.from_json(doc)

    async def save_meta(self, path: str, entry: Records, meta: KeyMeta, *, new: bool) -> None:
        """Buffer a secret's metadata; a new secret also becomes listable."""
        if new:
            await self.index.link(path)
        entry.put_json(META_KEY, meta.to_json())

    async def version_data(self, entry: Records, number: int) -> Any:
        """Return the data of a live version (``None`` is a stored JSON ``null``).

        Raises:
            CorruptRecord: the metadata lists the version but its record is missing.
        """
        raw = await entry.get(VERSION, number)
        if raw is None:
            raise CorruptRecord("KV version data missing")
        return orjson.loads(raw)

    def put_version(self, entry: Records, number: int, data: Any) -> None:
        """Buffer the data of a version."""
        entry.put((VERSION, number), orjson.dumps(data))

    def clear_version(self, entry: Records, number: int) -> None:
        """Delete a version's data (idempotent)."""
        entry.clear(VERSION, number)

    async def remove(self, path: str, entry: Records) -> None:
        """Delete a secret's metadata and every version, and drop it from listings."""
        entry.clear(*META_KEY)
        entry.clear_prefix(VERSION)
        await self.index.unlink(path)
