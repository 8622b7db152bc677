"""``backup/:name``, ``restore`` and ``restore/:name``: Vault-format plaintext key backups.

A backup is what Vault and OpenBao produce (``lock_manager.go`` ``BackupPolicy``/``RestorePolicy``):
base64 of ``{"policy": <Policy JSON>, "archived_keys": {"keys": [<KeyEntry>...]}}``, so a key backed up
by OpenBao restores here and one backed up here restores into OpenBao. The policy carries every field
of Vault's ``keysutil.Policy`` with Vault's names and codes (``type`` as the numeric key type, ``kdf``,
``auto_rotate_period`` in nanoseconds, ``convergent_version`` -1 for per-version schemes); ``keys``
holds the versions from ``min_decryption_version`` on, and the archive holds every version from
``min_available_version`` on at index ``version - min_available_version`` (slot 0 is Go's zero entry
until a trim), as Vault's archive does.

Backing up needs ``exportable`` and ``allow_plaintext_backup``, and records ``backup_info`` on the key.
Restoring validates the whole backup before writing anything, refuses to replace an existing key
without ``force``, records ``restore_info``, and stores the material wrapped by the namespace KEK like
any other key. Deliberate differences from Vault: refusals that Vault answers with 500 (missing key,
not exportable, key exists, undecodable backup) are 400 here with Vault's wording, and a backup is
checked completely (key lengths, curves, RSA consistency, version bounds) instead of failing later.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from strongroom.crypto.transit import vault_entry as ve
from strongroom.crypto.transit.derive import KDF_HKDF_SHA256, KDF_NAMES
from strongroom.crypto.transit.keytypes import KeyType
from strongroom.crypto.transit.material import KeyMaterial
from strongroom.engines.context import Context
from strongroom.engines.framework import Operation, Request, Response, Route
from strongroom.engines.transit.policy import KeyPolicy, VersionInfo, check_name
from strongroom.engines.transit.store import TransitKeys
from strongroom.errors import InvalidRequest, UnsupportedPath

NANOS = 1_000_000_000
CURRENT_CONVERGENT = 3
_TEMPLATES = ("", "vault:v{{version}}:")


# -- backup -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class BackupFields:
    """``backup/:name``."""

    name: str


def _info(info: Any) -> dict[str, Any] | None:
    return None if info is None else {"time": info["time"], "version": info["version"]}


def policy_json(policy: KeyPolicy, keys: dict[str, Any]) -> dict[str, Any]:
    """Vault's ``Policy`` JSON for ``policy`` with the given ``keys`` map, in Go's field order."""
    doc: dict[str, Any] = {"name": policy.name}
    if policy.key_size:
        doc["key_size"] = policy.key_size
    convergent = policy.convergent_version if policy.convergent_encryption else 0
    doc.update({
        "keys": keys,
        "derived": policy.derived,
        "kdf": policy.kdf if policy.derived else 0,
        "convergent_encryption": policy.convergent_encryption,
        "exportable": policy.exportable,
        "min_decryption_version": policy.min_decryption_version,
        "min_encryption_version": policy.min_encryption_version,
        "latest_version": policy.latest_version,
        "archive_version": policy.latest_version,
        "archive_min_version": policy.min_available_version,
        "min_available_version": policy.min_available_version,
        "deletion_allowed": policy.deletion_allowed,
        # Vault writes -1 once every version carries its own convergent scheme (always, since version 3).
        "convergent_version": -1 if convergent == CURRENT_CONVERGENT else convergent,
        "type": policy.type.code,
        "backup_info": _info(policy.backup_info),
        "restore_info": _info(policy.restore_info),
        "allow_plaintext_backup": policy.allow_plaintext_backup,
        "version_template": "",
        "storage_prefix": "",
        "auto_rotate_period": policy.auto_rotate_period * NANOS,
        "Imported": policy.imported,
        "AllowImportedKeyRotation": policy.allow_imported_key_rotation,
        "soft_deleted": False,
    })
    return doc


def _facts(info: VersionInfo) -> ve.EntryFacts:
    return ve.EntryFacts(info.created, info.created_unix, info.convergent_version, info.certificate_chain)


async def backup(ctx: Context, req: Request, f: BackupFields) -> Response:
    """Return ``{"backup": base64}`` and record ``backup_info`` on the key.

    Raises:
        InvalidRequest: no such key, or the key is not exportable or does not allow plaintext backups.
    """
    check_name(f.name)
    keys = TransitKeys(ctx)
    policy = await keys.get(f.name)
    if policy is None:
        raise InvalidRequest(f'key "{f.name}" not found')
    if not policy.exportable:
        raise InvalidRequest("exporting is disallowed on the policy")
    if not policy.allow_plaintext_backup:
        raise InvalidRequest("plaintext backup is disallowed on the policy")
    # As in Vault, the backup records itself: the stored policy and the backup both carry backup_info.
    policy = policy.replace(backup_info={"time": ve.now_go_time(ctx.clock.now()), "version": policy.latest_version})
    keys.put(policy)
    entries = {}
    for v, info in policy.versions.items():
        entries[v] = ve.entry_json(await keys.material(policy, v, archived=True), _facts(info))
    keys_map = {str(v): entries[v] for v in sorted(entries, key=str) if v >= policy.min_decryption_version}
    archive = [entries.get(v) or ve.zero_entry()
               for v in range(policy.min_available_version, policy.latest_version + 1)]
    doc = {"policy": policy_json(policy, keys_map), "archived_keys": {"keys": archive}}
    return Response(data={"backup": ve.encode_backup(doc)})


# -- restore ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RestoreFields:
    """``restore`` and ``restore/:name``."""

    backup: str = ""
    name: str = ""
    force: bool = False


def _time_info(obj: ve.GoObject | None) -> dict[str, Any] | None:
    if obj is None:
        return None
    when = ve.format_time(*ve.parse_time(obj.string("time"), f"{obj.where}.time"), go=True)
    return {"time": when, "version": obj.integer("version")}


def _check_versions(latest: int, min_dec: int, min_enc: int, min_avail: int) -> None:
    """Vault's own consistency rules for a policy's version counters (``handleArchiving``, trim)."""
    if latest < 1:
        raise InvalidRequest(f"invalid backup: latest version of {latest} is less than 1")
    if not 1 <= min_dec <= latest:
        raise InvalidRequest(f"invalid backup: minimum decryption version of {min_dec} is not between 1 and "
                             f"the latest version {latest}")
    if not 0 <= min_enc <= latest or (min_enc > 0 and min_enc < min_dec):
        raise InvalidRequest(f"invalid backup: minimum encryption version of {min_enc} is out of range")
    if not 0 <= min_avail <= min_dec or (min_enc > 0 and min_avail > min_enc):
        raise InvalidRequest(f"invalid backup: minimum available version of {min_avail} is out of range")


def parse_backup(text: str, name: str, now: float) -> tuple[KeyPolicy, dict[int, KeyMaterial]]:
    """Decode and validate a Vault backup; return the policy to store and its material.

    The policy is named ``name``, or the backup's own name when ``name`` is empty.

    Raises:
        InvalidRequest: anything malformed or inconsistent, naming the offending field.
    """
    top = ve.decode_backup(text)
    p = top.object("policy")
    if p is None:
        raise InvalidRequest("invalid backup: no policy")
    name = name or p.string("name")
    try:
        check_name(name)
    except UnsupportedPath:
        raise InvalidRequest(f"invalid key name {name[:100]!r}") from None
    kt = KeyType.from_code(p.integer("type"))
    latest, min_dec = p.integer("latest_version"), p.integer("min_decryption_version")
    min_enc, min_avail = p.integer("min_encryption_version"), p.integer("min_available_version")
    _check_versions(latest, min_dec, min_enc, min_avail)
    if p.boolean("soft_deleted"):
        raise InvalidRequest("refusing to use soft-deleted key")
    if p.string("version_template") not in _TEMPLATES:
        raise InvalidRequest("invalid backup: custom version templates are not supported")
    derived, convergent = p.boolean("derived"), p.boolean("convergent_encryption")
    kdf = p.integer("kdf") if derived else KDF_HKDF_SHA256
    if kdf not in KDF_NAMES:
        raise InvalidRequest("invalid backup: unsupported key derivation mode")
    if derived and not kt.supports_derivation:
        raise InvalidRequest(f"invalid backup: key derivation is not supported for keys of type {kt.value}")
    if convergent and not (derived and kt.symmetric_aead):
        raise InvalidRequest("invalid backup: convergent encryption requires a derived symmetric key")
    convergent_version = p.integer("convergent_version") if convergent else 0
    if convergent_version not in (-1, 0, 1, 2, 3):
        raise InvalidRequest("invalid backup: unknown convergent version")
    period = p.integer("auto_rotate_period")
    if period < 0:
        raise InvalidRequest("invalid backup: auto_rotate_period is negative")

    entries = _version_entries(top, p, latest, min_dec, min_avail)
    materials: dict[int, KeyMaterial] = {}
    versions: dict[int, VersionInfo] = {}
    for v, entry in sorted(entries.items()):
        material, facts = ve.parse_entry(entry, kt)
        materials[v] = material
        public = "" if kt.symmetric_aead or kt is KeyType.HMAC else material.public_key_text()
        versions[v] = VersionInfo(facts.created, facts.created_unix, public, facts.convergent_version,
                                  certificate_chain=facts.certificate_chain)
    key_size = p.integer("key_size") if kt is KeyType.HMAC else 0
    if kt is KeyType.HMAC and not key_size:
        key_size = len(materials[latest].reveal_key())
    policy = KeyPolicy(
        name=name, type=kt, derived=derived, kdf=kdf, convergent_encryption=convergent,
        convergent_version=CURRENT_CONVERGENT if convergent_version == -1 else convergent_version,
        exportable=p.boolean("exportable"), allow_plaintext_backup=p.boolean("allow_plaintext_backup"),
        deletion_allowed=p.boolean("deletion_allowed"), min_decryption_version=min_dec,
        min_encryption_version=min_enc, min_available_version=min_avail, latest_version=latest,
        auto_rotate_period=period // NANOS, key_size=key_size, imported=p.boolean("Imported"),
        allow_imported_key_rotation=p.boolean("AllowImportedKeyRotation"),
        backup_info=_time_info(p.object("backup_info")),
        restore_info={"time": ve.now_go_time(now), "version": latest},
        versions=versions,
    )
    return policy, materials


def _version_entries(top: ve.GoObject, p: ve.GoObject, latest: int, min_dec: int,
                     min_avail: int) -> dict[int, ve.GoObject]:
    """The ``KeyEntry`` of each version: ``keys`` for current versions, the archive for older ones."""
    keys = p.object("keys")
    if keys is None or latest - min_dec + 1 > len(keys.doc):
        raise InvalidRequest("invalid backup: the policy must hold every version from min_decryption_version on")
    entries: dict[int, ve.GoObject] = {}
    for label in keys.doc:
        if not (label.isascii() and label.isdigit() and len(label) < 19) or not min_avail <= int(label) <= latest:
            raise InvalidRequest(f"invalid backup: policy.keys has an unexpected version {label[:20]!r}")
        entries[int(label)] = ve.GoObject(keys.doc[label], f"policy.keys.{label}")
    missing = [v for v in range(min_dec, latest + 1) if v not in entries]
    if missing:
        raise InvalidRequest(f"invalid backup: policy.keys is missing version {missing[0]}")
    archive = top.object("archived_keys")
    slots = archive.array("keys") if archive is not None else []
    if len(slots) > latest - min_avail + 1:
        raise InvalidRequest("invalid backup: the archive holds more versions than the policy")
    for i, slot in enumerate(slots):
        v = min_avail + i
        entry = ve.GoObject(slot, f"archived_keys.keys[{i}]")
        # Versions from min_decryption_version on come from ``keys`` (Vault's live copy); the archive
        # only supplies older ones, and slot 0 is Go's empty entry until a trim.
        if v >= 1 and v not in entries and not ve.is_zero_entry(entry):
            entries[v] = entry
    # Vault's archive holds every version from min_available_version on. Requiring them all keeps a key's
    # versions contiguous, so the work of a later backup (one archive slot per version) is bounded by
    # what was restored, not by a latest_version the backup may claim.
    gap = next((v for v in range(max(min_avail, 1), latest + 1) if v not in entries), None)
    if gap is not None:
        raise InvalidRequest(f"invalid backup: no key material for version {gap}")
    return entries


async def restore(ctx: Context, req: Request, f: RestoreFields) -> None:
    """Restore a backup under its own name or ``name``; 204 on success, as Vault.

    Raises:
        InvalidRequest: no backup, a path-like or invalid name, a malformed backup, or an existing key
            without ``force``.
    """
    if not f.backup:
        raise InvalidRequest("'backup' must be supplied")
    if "/" in f.name:
        raise InvalidRequest("key names cannot be paths")
    policy, materials = parse_backup(f.backup, f.name, ctx.clock.now())
    keys = TransitKeys(ctx)
    if not f.force and await keys.get(policy.name) is not None:
        raise InvalidRequest(f'key "{policy.name}" already exists')
    await keys.restore(policy, materials)


ROUTES: list[Route[Context, Any]] = [
    Route("backup/{name}", BackupFields, {Operation.READ: backup}, summary="Back up a key (Vault format)."),
    Route("restore", RestoreFields, {Operation.UPDATE: restore}, summary="Restore a key from a backup."),
    Route("restore/{name:*}", RestoreFields, {Operation.UPDATE: restore},
          summary="Restore a key from a backup under a new name."),
]
