"""Where transit keys live: policies and KEK-wrapped material inside the mount's storage view.

Layout, inside the mount's subspace, area ``"t"`` (a blind :class:`PathIndex`, so no key name reaches a
physical key): the entry of a key holds ``("policy",)``, the :class:`KeyPolicy` as JSON, and
``("v", version)``, the version's :class:`KeyMaterial` encrypted with AES-256-GCM under the namespace
keyring's KEK, with associated data binding it to the mount, the key's random ``key_id``, the version and
the material id. Both records are barrier records too, so material is encrypted twice: by the KEK (which
a rekey never touches) and by the keyring term (which ``sys/rotate`` moves forward).

Unwrapped material is cached per namespace key state (:attr:`NamespaceKeys.engine_cache`), keyed by
``(key_id, version, material_id)``: those change whenever the stored material may differ, the policy
(read from storage on every request, itself cached by ciphertext) decides which versions exist, and the
whole cache disappears with the key state on seal or keyring change.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from strongroom.barrier.paths import PathIndex
from strongroom.barrier.records import Records
from strongroom.clock import rfc3339
from strongroom.crypto.aead import AesGcm
from strongroom.crypto.random import random_uuid
from strongroom.crypto.transit.material import KeyMaterial
from strongroom.engines.context import Context
from strongroom.engines.transit.policy import KeyPolicy, VersionInfo, check_name
from strongroom.errors import CorruptRecord, DecryptionFailed, InvalidRequest

AREA = "t"
_POLICY = ("policy",)
_VERSION = "v"
_MATERIAL_CACHE_LIMIT = 16384


def _aad(mount_uuid: str, key_id: str, version: int, material_id: str) -> bytes:
    return f"strongroom/transit\x00{mount_uuid}\x00{key_id}\x00{version}\x00{material_id}".encode()


class TransitKeys:
    """The transit keys of one mount, on the request's transaction."""

    __slots__ = ("area", "ctx", "index")

    def __init__(self, ctx: Context, area: str = AREA) -> None:
        """Open the keys of ``area`` (another area holds keys that no ``keys/:name`` path can reach)."""
        self.ctx = ctx
        self.area = area
        self.index: PathIndex = ctx.keys.paths(ctx.tx, "m", ctx.mount.uuid, area)

    def _entry(self, name: str) -> Records:
        # Same subspace as self.index.entry(id): tuple packing concatenates, and the namespace caches
        # packed area prefixes, so the hot path packs nothing.
        return self.ctx.keys.records(self.ctx.tx, "m", self.ctx.mount.uuid, self.area, "e", self.index.id_of(name))

    def _kek(self) -> AesGcm:
        cache = self.ctx.keys.engine_cache
        kek = cache.get("transit-kek")
        if kek is None:
            kek = cache["transit-kek"] = AesGcm(self.ctx.keys.keyring.kek)
        assert isinstance(kek, AesGcm)
        return kek

    # -- policies -------------------------------------------------------------------------------------

    async def get(self, name: str) -> KeyPolicy | None:
        """Return the policy of key ``name``, or ``None``.

        Raises:
            UnsupportedPath: ``name`` is not a valid key name.
            CorruptRecord: the stored policy is damaged.
        """
        memo = self.ctx.memo
        key = ("transit-policy", name)
        if key in memo:
            found: KeyPolicy | None = memo[key]
            return found
        check_name(name)
        policy: KeyPolicy | None = await self._entry(name).get_decoded(
            _POLICY, KeyPolicy.from_json, self.ctx.keys.cache
        )
        if policy is not None and policy.name != name:
            # Records are bound to their physical key, but a policy also names its key: refuse a policy
            # record moved between names by someone holding the keyring.
            raise CorruptRecord("transit key policy is stored under another name")
        memo[key] = policy
        return policy

    async def require(self, name: str, message: str = "encryption key not found") -> KeyPolicy:
        """Return the policy of key ``name``.

        Raises:
            InvalidRequest: no such key (Vault answers 400 with ``message``).
        """
        policy = await self.get(name)
        if policy is None:
            raise InvalidRequest(message)
        return policy

    def put(self, policy: KeyPolicy) -> None:
        """Store ``policy`` (the key must already be linked, see :meth:`create`)."""
        self._entry(policy.name).put(_POLICY, policy.to_json())
        self.ctx.memo[("transit-policy", policy.name)] = policy

    async def names(self) -> list[str]:
        """Return every key name, sorted."""
        return await self.index.list("")

    # -- lifecycle ------------------------------------------------------------------------------------

    async def create(self, policy: KeyPolicy, material: KeyMaterial | None = None) -> KeyPolicy:
        """Link a new key, add its first version (``material`` or freshly generated) and store it.

        Returns the stored policy.
        """
        await self.index.link(policy.name)
        return self.add_version(policy, material or KeyMaterial.generate(policy.type, policy.key_size))

    def add_version(self, policy: KeyPolicy, material: KeyMaterial, *, version: int = 0) -> KeyPolicy:
        """Store ``material`` as a new latest version (or replace ``version``) and the updated policy.

        Returns the stored policy (new versions start with the current convergent scheme).
        """
        now = self.ctx.clock.now()
        new = version == 0
        number = policy.latest_version + 1 if new else version
        info = VersionInfo(
            created=rfc3339(now),
            created_unix=int(now),
            public_key=material.public_key_text(),
            convergent_version=3 if policy.convergent_encryption else 0,
            material_id=random_uuid(),
        )
        if not new:
            old = policy.versions[number]
            info = VersionInfo(old.created, old.created_unix, info.public_key, old.convergent_version,
                               info.material_id, old.certificate_chain)
        versions = dict(policy.versions)
        versions[number] = info
        changes: dict[str, Any] = {"versions": versions}
        if new:
            changes["latest_version"] = number
            if policy.min_decryption_version == 0:
                changes["min_decryption_version"] = 1
        if policy.convergent_encryption and policy.convergent_version in (0, -1):
            changes["convergent_version"] = 3
        updated = policy.replace(**changes)
        self._put_material(updated, number, info.material_id, material)
        self.put(updated)
        return updated

    def _put_material(self, policy: KeyPolicy, version: int, material_id: str, material: KeyMaterial) -> None:
        aad = _aad(self.ctx.mount.uuid, policy.key_id, version, material_id)
        self._entry(policy.name).put((_VERSION, version), self._kek().encrypt(material.serialize(), aad))
        _cache_put(self.ctx.keys.engine_cache, ("transit", policy.key_id, version, material_id), material)

    async def material(self, policy: KeyPolicy, version: int, *, archived: bool = False) -> KeyMaterial:
        """Return the unwrapped material of ``version``.

        Versions below ``min_decryption_version`` are archived, as in Vault: no operation may use them
        (encrypting, signing or HMACing with one would make output that cannot be verified or decrypted
        until the minimum is lowered again). Only ``archived=True`` (backups) reaches them.

        Raises:
            InvalidRequest: the version does not exist or is archived (``no such key version``, Vault's
                message for both).
            CorruptRecord: the stored material is missing or fails authentication.
        """
        info = policy.versions.get(version)
        if info is None or (version < policy.min_decryption_version and not archived):
            raise InvalidRequest("no such key version")
        cache = self.ctx.keys.engine_cache
        cache_key = ("transit", policy.key_id, version, info.material_id)
        material = cache.get(cache_key)
        if material is not None:
            assert isinstance(material, KeyMaterial)
            return material
        blob = await self._entry(policy.name).get(_VERSION, version)
        if blob is None:
            raise CorruptRecord("transit key material is missing")
        try:
            plain = self._kek().decrypt(blob, _aad(self.ctx.mount.uuid, policy.key_id, version, info.material_id))
        except DecryptionFailed:
            raise CorruptRecord("transit key material failed authentication") from None
        material = KeyMaterial.deserialize(plain)
        if material.key_type is not policy.type:
            raise CorruptRecord("transit key material does not match its policy")
        _cache_put(cache, cache_key, material)
        return material

    def drop_versions(self, policy: KeyPolicy, below: int) -> KeyPolicy:
        """Delete the material of every version below ``below`` (trim) and return the stored policy."""
        entry = self._entry(policy.name)
        versions = {v: info for v, info in policy.versions.items() if v >= below}
        for v in policy.versions:
            if v < below:
                entry.clear(_VERSION, v)
        updated = policy.replace(versions=versions, min_available_version=below)
        self.put(updated)
        cache = self.ctx.keys.engine_cache
        trimmed = [(v, info.material_id) for v, info in policy.versions.items() if v < below]

        def forget() -> None:
            for v, material_id in trimmed:
                cache.pop(("transit", policy.key_id, v, material_id), None)

        self.ctx.after_commit.append(forget)
        return updated

    async def restore(self, policy: KeyPolicy, materials: Mapping[int, KeyMaterial]) -> KeyPolicy:
        """Store ``policy`` with exactly ``materials`` (one per version), replacing any key of that name.

        ``policy.versions`` must have the same version numbers as ``materials``; each version gets a
        fresh material id, and a replaced key's records and cached material are dropped.
        Returns the stored policy.
        """
        old = await self.get(policy.name)
        if old is None:
            await self.index.link(policy.name)
        else:
            self._entry(policy.name).clear_prefix()
            self._forget_after_commit(old.key_id)
        versions = {v: dataclasses.replace(info, material_id=random_uuid()) for v, info in policy.versions.items()}
        stored = policy.replace(versions=versions)
        for v, info in versions.items():
            self._put_material(stored, v, info.material_id, materials[v])
        self.put(stored)
        return stored

    def _forget_after_commit(self, key_id: str) -> None:
        cache = self.ctx.keys.engine_cache

        def forget() -> None:
            for key in [k for k in cache if isinstance(k, tuple) and k[:2] == ("transit", key_id)]:
                cache.pop(key, None)

        self.ctx.after_commit.append(forget)

    async def delete(self, policy: KeyPolicy) -> None:
        """Delete the key, its material and its name; forget its cached material after commit."""
        entry = self._entry(policy.name)
        entry.clear_prefix()
        await self.index.unlink(policy.name)
        self.ctx.memo[("transit-policy", policy.name)] = None
        cache = self.ctx.keys.engine_cache

        def forget() -> None:
            for key in [k for k in cache if isinstance(k, tuple) and k[:2] == ("transit", policy.key_id)]:
                cache.pop(key, None)

        self.ctx.after_commit.append(forget)


def _cache_put(cache: dict[Any, Any], key: tuple[Any, ...], material: KeyMaterial) -> None:
    """Cache ``material``, emptying the cache first when it is full (every path that fills it comes here,
    so a worker's memory stays bounded however many keys are created, rotated or read)."""
    if len(cache) >= _MATERIAL_CACHE_LIMIT:
        cache.clear()
    cache[key] = material


def corrupt_if_missing(policy: KeyPolicy | None) -> KeyPolicy:
    """Return ``policy``; a key that vanished inside one transaction means damaged storage.

    Raises:
        CorruptRecord: ``policy`` is ``None``.
    """
    if policy is None:
        raise CorruptRecord("transit key disappeared")
    return policy
