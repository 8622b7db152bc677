"""A transit key's policy: its type, options and versions (everything but the secret material).

The policy mirrors Vault's ``keysutil.Policy`` field for field, so reads, backups and error messages
can follow Vault exactly. It is immutable: every change builds a new policy with :meth:`KeyPolicy.replace`
and stores it, so a cached policy can be shared by concurrent requests.

``key_id`` is random per key creation: it names the key's material in storage AAD and in the worker
cache, so a deleted and re-created key of the same name never reuses either.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from strongroom.crypto.random import random_uuid
from strongroom.crypto.transit.derive import KDF_HKDF_SHA256, KDF_NAMES
from strongroom.crypto.transit.keytypes import KeyType
from strongroom.errors import CorruptRecord, InvalidRequest, UnsupportedPath

ERR_TOO_OLD = "ciphertext or signature version is disallowed by policy (too old)"

_NAME = re.compile(r"\w(?:[\w\-.]*\w)?\Z", re.ASCII)


def check_name(name: str) -> str:
    """Return ``name`` if Vault's ``GenericNameRegex`` accepts it.

    Raises:
        UnsupportedPath: otherwise (Vault's router finds no route for such a path, a 404).
    """
    if not _NAME.match(name):
        raise UnsupportedPath()
    return name


@dataclass(frozen=True)
class VersionInfo:
    """Public facts about one key version (the material is stored separately, wrapped)."""

    created: str
    """RFC 3339 creation time with nanoseconds, as Vault's ``time`` field."""
    created_unix: int
    public_key: str = ""
    convergent_version: int = 0
    material_id: str = ""
    """Random per stored material; changes when ``import_version`` replaces it (cache key)."""
    certificate_chain: str = ""


@dataclass(frozen=True)
class KeyPolicy:
    """One named transit key (Vault's ``Policy``)."""

    name: str
    type: KeyType
    key_id: str = field(default_factory=random_uuid)
    derived: bool = False
    kdf: int = KDF_HKDF_SHA256
    convergent_encryption: bool = False
    convergent_version: int = 0
    exportable: bool = False
    allow_plaintext_backup: bool = False
    deletion_allowed: bool = False
    min_decryption_version: int = 1
    min_encryption_version: int = 0
    min_available_version: int = 0
    latest_version: int = 0
    auto_rotate_period: int = 0
    key_size: int = 0
    imported: bool = False
    allow_imported_key_rotation: bool = False
    backup_info: Mapping[str, Any] | None = None
    restore_info: Mapping[str, Any] | None = None
    versions: Mapping[int, VersionInfo] = field(default_factory=dict)

    def replace(self, **changes: Any) -> KeyPolicy:
        """Return a copy with ``changes`` applied."""
        return dataclasses.replace(self, **changes)

    # -- version rules (Vault's messages) -------------------------------------------------------------

    def encryption_version(self, requested: int) -> int:
        """Return the version to encrypt/sign with (``0``: the latest).

        Raises:
            InvalidRequest: negative, newer than the latest, or below ``min_encryption_version``.
        """
        if requested == 0:
            return self.latest_version
        if requested < 0:
            raise InvalidRequest("requested version for encryption is negative")
        if requested > self.latest_version:
            raise InvalidRequest("requested version for encryption is higher than the latest key version")
        if requested < self.min_encryption_version:
            raise InvalidRequest(
                "requested version for encryption is less than the minimum encryption key version"
            )
        return requested

    def decryption_version(self, version: int) -> int:
        """Check a version taken from a ciphertext or signature prefix (``0`` means 1, as in Vault).

        Raises:
            InvalidRequest: newer than the latest version, or below ``min_decryption_version``.
        """
        if version == 0:
            version = 1
        if version > self.latest_version:
            raise InvalidRequest("invalid ciphertext: version is too new")
        if self.min_decryption_version > 0 and version < self.min_decryption_version:
            raise InvalidRequest(ERR_TOO_OLD)
        if version not in self.versions:
            raise InvalidRequest("no such key version")
        return version

    def convergent_version_of(self, version: int) -> int:
        """The convergent scheme of ``version`` (0 when the key is not convergent)."""
        if not self.convergent_encryption:
            return 0
        info = self.versions.get(version)
        if info is not None and info.convergent_version:
            return info.convergent_version
        return self.convergent_version or 1

    # -- presentation ---------------------------------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        """Return the ``keys/:name`` read body without ``keys`` (see the keys endpoint for those)."""
        kt = self.type
        data: dict[str, Any] = {
            "name": self.name,
            "type": kt.value,
            "derived": self.derived,
            "deletion_allowed": self.deletion_allowed,
            "min_available_version": self.min_available_version,
            "min_decryption_version": self.min_decryption_version,
            "min_encryption_version": self.min_encryption_version,
            "latest_version": self.latest_version,
            "exportable": self.exportable,
            "allow_plaintext_backup": self.allow_plaintext_backup,
            "supports_encryption": kt.supports_encryption,
            "supports_decryption": kt.supports_decryption,
            "supports_signing": kt.supports_signing,
            "supports_derivation": kt.supports_derivation,
            "auto_rotate_period": self.auto_rotate_period,
            "imported_key": self.imported,
            "soft_deleted": False,
        }
        if self.key_size:
            data["key_size"] = self.key_size
        if self.imported:
            data["imported_key_allow_rotation"] = self.allow_imported_key_rotation
        if self.backup_info is not None:
            data["backup_info"] = dict(self.backup_info)
        if self.restore_info is not None:
            data["restore_info"] = dict(self.restore_info)
        if self.derived:
            data["kdf"] = KDF_NAMES.get(self.kdf, "")
            if self.kdf != KDF_HKDF_SHA256:
                data["kdf_mode"] = KDF_NAMES.get(self.kdf, "")
            data["convergent_encryption"] = self.convergent_encryption
            if self.convergent_encryption:
                # Vault shows -1 for the current scheme: each version records its own (version 3 onwards).
                shown = -1 if self.convergent_version == 3 else self.convergent_version
                data["convergent_encryption_version"] = shown
        return data

    # -- storage encoding -----------------------------------------------------------------------------

    def to_json(self) -> bytes:
        """Encode for storage (inside a barrier record)."""
        doc = dataclasses.asdict(self)
        doc["type"] = self.type.value
        doc["versions"] = {str(v): dataclasses.asdict(info) for v, info in self.versions.items()}
        return orjson.dumps(doc)

    @classmethod
    def from_json(cls, raw: bytes) -> KeyPolicy:
        """Decode :meth:`to_json` output.

        Raises:
            CorruptRecord: the record is not a valid policy.
        """
        try:
            doc = orjson.loads(raw)
            doc["type"] = KeyType(doc["type"])
            doc["versions"] = {int(v): VersionInfo(**info) for v, info in doc["versions"].items()}
            return cls(**doc)
        except (KeyError, TypeError, ValueError, orjson.JSONDecodeError) as exc:
            raise CorruptRecord("stored transit key policy is damaged") from exc
