"""``wrapping_key``, ``keys/:name/import`` and ``keys/:name/import_version``: bring your own key.

Behaviour and messages follow Vault's ``path_wrapping_key.go`` and ``path_import.go`` (and keysutil's
``ImportPublicOrPrivate`` / ``ImportPrivateKeyForVersion``); the wire format and the parsing live in
:mod:`strongroom.crypto.transit.importing`.

The wrapping key is an RSA-4096 transit key generated on the mount's first need for it and stored like
any transit key (policy plus KEK-wrapped material) but in an area of its own, so ``LIST keys``,
``keys/:name``, export and backup can never reach it. Vault stores it as the key ``import/wrapping-key``,
which its ``LIST keys`` shows as ``import/``; we do not.

Deliberate differences from Vault:

- refusals are 400s; Vault answers most of them with 500 and wraps the text in ``1 error occurred: ...``;
- ``auto_rotate_period`` follows the rule of ``keys/:name/config`` (0 or at least an hour), where
  Vault's import accepts any positive period;
- a private key of another type than the version it should complete is refused with
  ``cannot import key, key pair does not match`` (OpenBao 2.7 crashes its request on some of these);
- an RSA key must have exactly the type's modulus size (Vault accepts e.g. 2047 bits as rsa-2048).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from strongroom.crypto.transit import importing
from strongroom.crypto.transit.derive import KDF_HMAC_SHA256_COUNTER
from strongroom.crypto.transit.keytypes import KeyType
from strongroom.crypto.transit.material import KeyMaterial
from strongroom.engines.context import Context
from strongroom.engines.fields import Duration, NoFields
from strongroom.engines.framework import Operation, Request, Response, Route
from strongroom.engines.transit.common import b64decode
from strongroom.engines.transit.keys import check_rotate_period
from strongroom.engines.transit.policy import KeyPolicy, check_name
from strongroom.engines.transit.store import TransitKeys
from strongroom.errors import InvalidRequest

WRAPPING_AREA = "tw"
"""Storage area of the wrapping key, beside the keys' area ``"t"`` in the mount's view."""
WRAPPING_KEY_NAME = "wrapping-key"

ERR_EXISTS = (
    "the import path cannot be used with an existing key; use import-version to rotate an existing imported key"
)


async def wrapping_key(ctx: Context) -> tuple[TransitKeys, KeyPolicy]:
    """Return the mount's wrapping key, generating it on first use (Vault's upsert).

    Two requests creating it at once conflict in storage; the retried one then finds the stored key.
    """
    keys = TransitKeys(ctx, WRAPPING_AREA)
    policy = await keys.get(WRAPPING_KEY_NAME)
    if policy is None:
        policy = await keys.create(KeyPolicy(name=WRAPPING_KEY_NAME, type=KeyType.RSA_4096))
    return keys, policy


async def read_wrapping_key(ctx: Context, req: Request, f: NoFields) -> Response:
    """``GET wrapping_key``: the PEM public key to wrap imported keys for."""
    _, policy = await wrapping_key(ctx)
    return Response(data={"public_key": policy.versions[policy.latest_version].public_key})


async def _extract(
    ctx: Context, key_type: KeyType, ciphertext: str | None, public_key: str | None, hash_function: str
) -> bytes:
    """The key the caller sent: unwrapped from ``ciphertext`` if given, else the ``public_key`` text.

    Raises:
        InvalidRequest: an unknown hash, bad base64, the unwrapping errors, or a public key for a type
            without one.
    """
    if ciphertext is None:
        if not key_type.asymmetric:
            raise InvalidRequest("provided type does not support public_key import")
        return (public_key or "").encode()
    importing.check_hash_function(hash_function)
    # Go's base64 decoder skips line breaks, so wrapped output of `base64`/`openssl` tools is accepted.
    blob = b64decode(ciphertext.replace("\r", "").replace("\n", ""))
    wrapped_ephemeral, wrapped_key = importing.split_ciphertext(blob)
    keys, policy = await wrapping_key(ctx)
    wrapping = await keys.material(policy, policy.latest_version)
    return importing.unwrap_target_key(wrapping, wrapped_ephemeral, wrapped_key, hash_function)


def _with_key_size(policy: KeyPolicy, material: KeyMaterial) -> KeyPolicy:
    """An hmac key's size is that of its latest imported key (Vault's ``KeySize = len(key)``)."""
    if policy.type is KeyType.HMAC:
        return policy.replace(key_size=len(material.reveal_key()))
    return policy


# -- import ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImportFields:
    """``keys/:name/import`` (``ciphertext`` wins when both key fields are given, as in Vault)."""

    name: str
    type: str = "aes256-gcm96"
    hash_function: str = "SHA256"
    ciphertext: str | None = None
    public_key: str | None = None
    allow_rotation: bool = False
    derived: bool = False
    exportable: bool = False
    allow_plaintext_backup: bool = False
    context: str = ""
    """Accepted and unused, as in Vault."""
    auto_rotate_period: Duration = 0  # type: ignore[assignment]  # NewType of int: 0 is a valid value
    convergent_encryption: Any = None
    """Only its presence matters: import refuses convergent keys."""


def _import_type(name: str) -> KeyType:
    """The key type of an import, case-insensitive as Vault's.

    Raises:
        InvalidRequest: ``unknown key type: NAME``.
    """
    try:
        return KeyType(name.lower())
    except ValueError:
        raise InvalidRequest(f"unknown key type: {name[:100]}") from None


async def import_key(ctx: Context, req: Request, f: ImportFields) -> None:
    """Create a key from imported material (204 on success).

    Raises:
        InvalidRequest: Vault's messages, in Vault's order: convergent encryption, auto-rotation without
            ``allow_rotation``, unknown type, existing key, then the unwrapping and parsing errors (those
            of the key itself prefixed ``error importing key: ``).
    """
    check_name(f.name)
    if f.convergent_encryption is not None:
        raise InvalidRequest("import cannot be used on keys with convergent encryption enabled")
    if f.auto_rotate_period > 0 and not f.allow_rotation:
        raise InvalidRequest("allow_rotation must be set to true if auto-rotation is enabled")
    check_rotate_period(f.auto_rotate_period)
    key_type = _import_type(f.type)
    keys = TransitKeys(ctx)
    if await keys.get(f.name) is not None:
        raise InvalidRequest(ERR_EXISTS)
    key = await _extract(ctx, key_type, f.ciphertext, f.public_key, f.hash_function)
    try:
        material = importing.material_from_import(
            key_type, key, private=f.ciphertext is not None, derived=f.derived
        )
    except InvalidRequest as exc:
        raise InvalidRequest(f"error importing key: {exc.message}") from None
    policy = KeyPolicy(
        name=f.name,
        type=key_type,
        derived=f.derived,
        # Vault never sets a KDF on imported keys, so derived ones use the legacy counter-mode KDF.
        kdf=KDF_HMAC_SHA256_COUNTER,
        exportable=f.exportable,
        allow_plaintext_backup=f.allow_plaintext_backup,
        auto_rotate_period=f.auto_rotate_period,
        imported=True,
        allow_imported_key_rotation=f.allow_rotation,
    )
    await keys.create(_with_key_size(policy, material), material)


# -- import_version --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImportVersionFields:
    """``keys/:name/import_version``; ``version`` names a public-key-only version to complete."""

    name: str
    ciphertext: str | None = None
    public_key: str | None = None
    hash_function: str = "SHA256"
    version: int | None = None


async def import_version(ctx: Context, req: Request, f: ImportVersionFields) -> None:
    """Add an imported version, or complete a public-key-only version with its private key (204).

    Without ``version``, a private key that matches a latest version holding only its public key
    completes that version; any other key becomes a new latest version.

    Raises:
        InvalidRequest: Vault's messages (missing or non-imported key, convergent key, unwrapping and
            parsing errors, and the version rules of ``version``).
    """
    check_name(f.name)
    keys = TransitKeys(ctx)
    policy = await keys.get(f.name)
    if policy is None:
        raise InvalidRequest(f"no key found with name {f.name}; to import a new key, use the import/ endpoint")
    if not policy.imported:
        raise InvalidRequest("the import_version endpoint can only be used with an imported key")
    if policy.convergent_encryption:
        raise InvalidRequest("import_version cannot be used on keys with convergent encryption enabled")
    private = f.ciphertext is not None
    key = await _extract(ctx, policy.type, f.ciphertext, f.public_key, f.hash_function)
    if f.version is not None:
        await _complete(keys, policy, f.version, key, private)
        return
    if private and policy.latest_version > 0:
        latest = await keys.material(policy, policy.latest_version)
        if not latest.has_private:
            try:
                material = importing.complete_version(policy.type, latest, key)
            except InvalidRequest:
                pass  # as Vault: a key that does not complete the latest version becomes a new one
            else:
                keys.add_version(policy, material, version=policy.latest_version)
                return
    material = importing.material_from_import(policy.type, key, private=private, derived=policy.derived)
    keys.add_version(_with_key_size(policy, material), material)


async def _complete(keys: TransitKeys, policy: KeyPolicy, version: int, key: bytes, private: bool) -> None:
    """Fill in the private key of ``version`` (Vault's ``KeyVersionCanBeUpdated`` rules first).

    Raises:
        InvalidRequest: no such version, a type without public keys, a public key for a version that has
            one, a version that already has its private key, or a key that does not match.
    """
    if version not in policy.versions or version < policy.min_decryption_version:
        # Versions below min_decryption_version are archived: Vault does not find them either.
        raise InvalidRequest("no such key version")
    if not policy.type.asymmetric:
        raise InvalidRequest("provided type does not support importing key versions")
    existing = await keys.material(policy, version)
    if existing.has_private:
        raise InvalidRequest("private key imported, key version cannot be updated")
    if not private:
        raise InvalidRequest("cannot add a public key to a key version that already has a public key set")
    keys.add_version(policy, importing.complete_version(policy.type, existing, key), version=version)


ROUTES: list[Route[Context, Any]] = [
    Route("wrapping_key", NoFields, {Operation.READ: read_wrapping_key},
          summary="The public key to wrap keys for import."),
    Route("keys/{name}/import", ImportFields, {Operation.UPDATE: import_key},
          summary="Import an externally generated key as a new key."),
    Route("keys/{name}/import_version", ImportVersionFields, {Operation.UPDATE: import_version},
          summary="Import a new version of an imported key, or its private key."),
]
