"""``keys``, ``keys/:name``, ``keys/:name/config`` and ``keys/:name/rotate``: the key lifecycle.

Behaviour and messages follow Vault's ``path_keys.go``, ``path_keys_config.go`` and ``path_rotate.go``:
creating an existing key returns it with the warning ``key NAME already existed``; a key is deleted
only after ``deletion_allowed`` was set; ``exportable`` and ``allow_plaintext_backup`` can be turned on
but never off; auto-rotation periods are 0 or at least an hour.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from strongroom.crypto.transit.derive import derive_ed25519
from strongroom.crypto.transit.keytypes import KeyType
from strongroom.crypto.transit.material import KeyMaterial
from strongroom.crypto.transit.vault_entry import go_time
from strongroom.engines.context import Context
from strongroom.engines.fields import Duration
from strongroom.engines.framework import Operation, Request, Response, Route
from strongroom.engines.transit.common import b64decode, b64encode
from strongroom.engines.transit.policy import KeyPolicy, check_name
from strongroom.engines.transit.store import TransitKeys
from strongroom.errors import InvalidRequest

HOUR = 3600
MAX_ROTATE_PERIOD = (2**63 - 1) // 1_000_000_000
"""The longest ``auto_rotate_period`` in seconds: Vault keeps it as Go nanoseconds in an int64 (backups
carry that number, so a longer period would make a backup that neither Vault nor this server restores)."""
_CURVE_NAMES = {KeyType.ECDSA_P256: "P-256", KeyType.ECDSA_P384: "P-384", KeyType.ECDSA_P521: "P-521"}


def check_rotate_period(seconds: int) -> None:
    """Vault's rule for ``auto_rotate_period``.

    Raises:
        InvalidRequest: neither 0 nor at least an hour, or longer than :data:`MAX_ROTATE_PERIOD`.
    """
    if seconds != 0 and seconds < HOUR:
        raise InvalidRequest("auto rotate period must be 0 to disable or at least an hour")
    if seconds > MAX_ROTATE_PERIOD:
        raise InvalidRequest(f"auto rotate period must be at most {MAX_ROTATE_PERIOD} seconds")


async def describe(keys: TransitKeys, policy: KeyPolicy, context: bytes = b"") -> dict[str, Any]:
    """The full ``keys/:name`` read body, including the per-version ``keys`` map.

    Derived Ed25519 keys show a public key only for a given ``context`` (the key derived for it).

    Raises:
        InvalidRequest: deriving for ``context`` failed.
    """
    data = policy.describe()
    kt = policy.type
    # Vault lists only the versions in its live key map: those from min_decryption_version on (older
    # ones sit in its archive and are not shown).
    shown = sorted((v, info) for v, info in policy.versions.items() if v >= policy.min_decryption_version)
    if kt.symmetric_aead:
        data["keys"] = {str(v): info.created_unix for v, info in shown}
    elif kt.asymmetric:
        out: dict[str, Any] = {}
        for v, info in shown:
            public = info.public_key
            if kt is KeyType.ED25519 and policy.derived:
                public = ""
                if context:
                    material = await keys.material(policy, v)
                    derived = derive_ed25519(material.reveal_key(), context, policy.kdf)
                    public = b64encode(derived.public_key().public_bytes_raw())
            entry: dict[str, Any] = {
                "name": _CURVE_NAMES.get(kt, kt.value),
                "public_key": public,
                "creation_time": go_time(info.created),
                "certificate_chain": info.certificate_chain,  # always present in Vault, "" when none
            }
            out[str(v)] = entry
        data["keys"] = out
    return data


@dataclass(frozen=True)
class ListFields:
    """``LIST keys`` (OpenBao adds ``after``/``limit`` pagination)."""

    after: str = ""
    limit: int = -1


async def list_keys(ctx: Context, req: Request, f: ListFields) -> Response:
    """List key names; an empty mount lists as 404."""
    names = await TransitKeys(ctx).names()
    if f.after:
        names = [n for n in names if n > f.after]
    if f.limit > 0:
        names = names[: f.limit]
    return Response(data={"keys": names})


@dataclass(frozen=True)
class KeyFields:
    """``keys/:name`` create and read parameters."""

    name: str
    type: str = "aes256-gcm96"
    derived: bool = False
    convergent_encryption: bool = False
    exportable: bool = False
    allow_plaintext_backup: bool = False
    context: str = ""
    auto_rotate_period: Duration = 0  # type: ignore[assignment]  # NewType of int: 0 is a valid value
    key_size: int = 0
    managed_key_name: str = ""
    managed_key_id: str = ""


def new_policy(f: KeyFields) -> KeyPolicy:
    """Validate create parameters and return an unsaved policy (no versions yet).

    Raises:
        InvalidRequest: Vault's messages for each invalid combination.
    """
    check_rotate_period(f.auto_rotate_period)
    if f.convergent_encryption and not f.derived:
        raise InvalidRequest("convergent encryption requires derivation to be enabled")
    kt = KeyType.parse(f.type)
    if f.key_size:
        if kt is not KeyType.HMAC:
            raise InvalidRequest(f"key_size is not valid for algorithm {kt.value}")
        if not 32 <= f.key_size <= 512:
            raise InvalidRequest(f"invalid key_size {f.key_size}")
    if f.derived and not kt.supports_derivation:
        raise InvalidRequest(f"key derivation and convergent encryption not supported for keys of type {kt.value}")
    if f.convergent_encryption and not kt.symmetric_aead:
        raise InvalidRequest(f"convergent encryption not supported for keys of type {kt.value}")
    return KeyPolicy(
        name=f.name,
        type=kt,
        derived=f.derived,
        convergent_encryption=f.convergent_encryption,
        convergent_version=3 if f.convergent_encryption else 0,
        exportable=f.exportable,
        allow_plaintext_backup=f.allow_plaintext_backup,
        auto_rotate_period=f.auto_rotate_period,
        key_size=(f.key_size or 32) if kt is KeyType.HMAC else 0,
    )


async def create(ctx: Context, req: Request, f: KeyFields) -> Response:
    """Create a key (or return the existing one with a warning)."""
    check_name(f.name)
    keys = TransitKeys(ctx)
    existing = await keys.get(f.name)
    if existing is not None:
        resp = Response(data=await describe(keys, existing))
        resp.warnings.append(f"key {f.name} already existed")
        return resp
    policy = await keys.create(new_policy(f))
    return Response(data=await describe(keys, policy))


async def read(ctx: Context, req: Request, f: KeyFields) -> Response | None:
    """Read a key's policy and public keys (404 when missing).

    Raises:
        InvalidRequest: ``context`` is not base64.
    """
    keys = TransitKeys(ctx)
    policy = await keys.get(f.name)
    if policy is None:
        return None
    context = b""
    if f.context:
        try:
            context = b64decode(f.context)
        except InvalidRequest:
            raise InvalidRequest("failed to base64-decode context") from None
    return Response(data=await describe(keys, policy, context))


async def delete(ctx: Context, req: Request, f: KeyFields) -> None:
    """Delete a key whose ``deletion_allowed`` is set.

    Raises:
        InvalidRequest: no such key, or deletion not allowed.
    """
    keys = TransitKeys(ctx)
    policy = await keys.get(f.name)
    if policy is None:
        raise InvalidRequest(f"error deleting policy {f.name}: could not delete key; not found")
    if not policy.deletion_allowed:
        raise InvalidRequest(f"error deleting policy {f.name}: deletion is not allowed for this key")
    await keys.delete(policy)


@dataclass(frozen=True)
class ConfigFields:
    """``keys/:name/config``: ``None`` means "not given" (Vault's ``GetOk``)."""

    name: str
    min_decryption_version: int | None = None
    min_encryption_version: int | None = None
    deletion_allowed: bool | None = None
    exportable: bool | None = None
    allow_plaintext_backup: bool | None = None
    auto_rotate_period: Duration | None = None


async def configure(ctx: Context, req: Request, f: ConfigFields) -> Response:
    """Change a key's version limits and flags.

    Raises:
        InvalidRequest: Vault's messages for a missing key or invalid values.
    """
    keys = TransitKeys(ctx)
    policy = await keys.get(f.name)
    if policy is None:
        raise InvalidRequest(f"no existing key named {f.name} could be found")
    changes: dict[str, Any] = {}
    warning = ""
    min_dec, min_enc = policy.min_decryption_version, policy.min_encryption_version
    if f.min_decryption_version is not None:
        if f.min_decryption_version < 0:
            raise InvalidRequest("min decryption version cannot be negative")
        wanted = f.min_decryption_version
        if wanted == 0:
            wanted = 1
            warning = "since Vault 0.3, transit key numbering starts at 1; forcing minimum to 1"
        if wanted != min_dec:
            if wanted > policy.latest_version:
                raise InvalidRequest(
                    f"cannot set min decryption version of {wanted}, latest key version is {policy.latest_version}"
                )
            min_dec = changes["min_decryption_version"] = wanted
    if f.min_encryption_version is not None:
        if f.min_encryption_version < 0:
            raise InvalidRequest("min encryption version cannot be negative")
        if f.min_encryption_version != min_enc:
            if f.min_encryption_version > policy.latest_version:
                raise InvalidRequest(
                    f"cannot set min encryption version of {f.min_encryption_version}, "
                    f"latest key version is {policy.latest_version}"
                )
            min_enc = changes["min_encryption_version"] = f.min_encryption_version
    if 0 < min_enc < min_dec:
        raise InvalidRequest(
            f"cannot set min encryption/decryption values; min encryption version of {min_enc} must be "
            f"greater than or equal to min decryption version of {min_dec}"
        )
    if f.deletion_allowed is not None and f.deletion_allowed != policy.deletion_allowed:
        changes["deletion_allowed"] = f.deletion_allowed
    if f.exportable and not policy.exportable:
        changes["exportable"] = True
    if f.allow_plaintext_backup and not policy.allow_plaintext_backup:
        changes["allow_plaintext_backup"] = True
    if f.auto_rotate_period is not None:
        check_rotate_period(f.auto_rotate_period)
        if f.auto_rotate_period != policy.auto_rotate_period:
            changes["auto_rotate_period"] = f.auto_rotate_period
    if changes:
        if policy.min_available_version > min_enc:
            raise InvalidRequest("min encryption version should not be less than min available version")
        if policy.min_available_version > min_dec:
            raise InvalidRequest("min decryption version should not be less then min available version")
        policy = policy.replace(**changes)
        keys.put(policy)
    resp = Response(data=await describe(keys, policy))
    if warning:
        resp.warnings.append(warning)
    return resp


@dataclass(frozen=True)
class NameFields:
    """Only the key name."""

    name: str


async def rotate_policy(keys: TransitKeys, policy: KeyPolicy) -> KeyPolicy:
    """Add a new latest version to ``policy`` and store it (shared with auto-rotation).

    Raises:
        InvalidRequest: an imported key that does not allow rotation.
    """
    if policy.imported and not policy.allow_imported_key_rotation:
        raise InvalidRequest(f"imported key {policy.name} does not allow rotation within Vault")
    rotated = keys.add_version(policy, KeyMaterial.generate(policy.type, policy.key_size))
    if rotated.imported:
        rotated = rotated.replace(imported=False)
        keys.put(rotated)
    return rotated


async def rotate(ctx: Context, req: Request, f: NameFields) -> Response:
    """Rotate a key: a new version becomes the one that encrypts and signs.

    Raises:
        InvalidRequest: no such key, or an imported key that does not allow rotation.
    """
    keys = TransitKeys(ctx)
    policy = await keys.require(f.name, "key not found")
    return Response(data=await describe(keys, await rotate_policy(keys, policy)))


ROUTES: list[Route[Context, Any]] = [
    Route("keys/", ListFields, {Operation.LIST: list_keys}, summary="List transit keys."),
    Route(
        "keys/{name}",
        KeyFields,
        {Operation.UPDATE: create, Operation.READ: read, Operation.DELETE: delete},
        summary="Create, read and delete a transit key.",
    ),
    Route("keys/{name}/config", ConfigFields, {Operation.UPDATE: configure}, summary="Configure a key."),
    Route("keys/{name}/rotate", NameFields, {Operation.UPDATE: rotate}, summary="Rotate a key."),
]
