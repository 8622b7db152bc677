"""``encrypt/:name``, ``decrypt/:name`` and ``rewrap/:name``, single or batched, as Vault does them.

A single request is a batch of one whose error becomes the request's error. ``encrypt`` creates a
missing key (upsert, ACL ``create``) unless ``config/keys`` disables upserts; a derived key is created
when the request carries a context. A caller-chosen ``nonce`` is refused, in a batch item or beside a
``batch_input`` (where Vault silently ignores it): random nonces are generated here and convergent keys
derive theirs (Vault's legacy caller-nonce scheme, convergent version 1, is
not supported, as in current Vault). Decrypting or rewrapping a batch with an RSA key is capped at
:data:`~strongroom.engines.transit.settings.MAX_ASYMMETRIC_BATCH_ITEMS` items by default (each item is a
private-key operation; Vault has no cap).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from strongroom.crypto.transit import symmetric
from strongroom.crypto.transit.keytypes import KeyType
from strongroom.engines.context import Context
from strongroom.engines.framework import Operation, Request, Response, Route
from strongroom.engines.transit import settings
from strongroom.engines.transit.common import (
    BatchResult,
    b64decode,
    b64encode,
    batch_items,
    check_batch_size,
    decode_payload,
    item_int,
    item_str,
    split_versioned,
    version_prefix,
)
from strongroom.engines.transit.policy import KeyPolicy, check_name
from strongroom.engines.transit.store import TransitKeys
from strongroom.errors import InvalidRequest, StrongroomError

_UPSERT_TYPES = {
    KeyType.AES128_GCM96,
    KeyType.AES256_GCM96,
    KeyType.CHACHA20_POLY1305,
    KeyType.XCHACHA20_POLY1305,
}


@dataclass(frozen=True)
class EncryptFields:
    """``encrypt/:name`` parameters (``batch_input`` items carry the per-item ones)."""

    name: str
    plaintext: str | None = None
    context: str = ""
    nonce: str = ""
    key_version: int = 0
    type: str = "aes256-gcm96"
    convergent_encryption: bool = False
    associated_data: str = ""
    batch_input: Any = None
    partial_failure_response_code: int | None = None
    reference: str = ""


@dataclass(frozen=True)
class DecryptFields:
    """``decrypt/:name`` and ``rewrap/:name`` parameters."""

    name: str
    ciphertext: str | None = None
    context: str = ""
    nonce: str = ""
    key_version: int = 0
    associated_data: str = ""
    batch_input: Any = None
    partial_failure_response_code: int | None = None
    reference: str = ""


def _single(f: EncryptFields | DecryptFields, field: str, value: str) -> list[Mapping[str, Any]]:
    return [{
        field: value,
        "context": f.context,
        "nonce": f.nonce,
        "key_version": f.key_version,
        "associated_data": f.associated_data,
    }]


def _check_contexts(items: list[Mapping[str, Any]]) -> None:
    context_set = bool(item_str(items[0], "context"))
    for item in items:
        if bool(item_str(item, "context")) != context_set:
            raise InvalidRequest("context should be set either in all the request blocks or in none")


async def exists(ctx: Context, req: Request, f: EncryptFields) -> bool:
    """Existence check: whether the key exists (a missing key makes ``encrypt`` a ``create``)."""
    check_name(f.name)
    return await TransitKeys(ctx).get(f.name) is not None


def _aad(policy: KeyPolicy, item: Mapping[str, Any], i: int) -> bytes | None:
    text = item_str(item, "associated_data")
    if not text:
        return None
    if not policy.type.symmetric_aead:
        raise InvalidRequest(f"'[{i}].associated_data' provided for non-AEAD cipher suite {policy.type.value}")
    return b64decode(text)


async def encrypt_one(keys: TransitKeys, policy: KeyPolicy, plaintext: bytes, context: bytes,
                      version: int, aad: bytes | None) -> tuple[str, int]:
    """Encrypt with ``policy`` and return ``(vault:vN:... ciphertext, version used)``.

    Raises:
        InvalidRequest: version rules, missing context, unsupported type.
    """
    if not policy.type.supports_encryption:
        raise InvalidRequest(f"message encryption not supported for key type {policy.type.value}")
    version = policy.encryption_version(version)
    material = await keys.material(policy, version)
    blob = symmetric.encrypt(
        material, plaintext, derived=policy.derived, kdf=policy.kdf, context=context,
        convergent_version=policy.convergent_version_of(version), associated_data=aad,
    )
    return version_prefix(version) + b64encode(blob), version


async def decrypt_one(keys: TransitKeys, policy: KeyPolicy, ciphertext: str, context: bytes,
                      aad: bytes | None) -> bytes:
    """Decrypt a ``vault:vN:...`` ciphertext with ``policy``.

    Raises:
        InvalidRequest: malformed ciphertext or version refused by policy.
        CiphertextRejected: the ciphertext does not authenticate.
    """
    if not policy.type.supports_decryption:
        raise InvalidRequest(f"message decryption not supported for key type {policy.type.value}")
    version, payload = split_versioned(ciphertext)
    version = policy.decryption_version(version)
    convergent = policy.convergent_version_of(version)
    if 0 < convergent < symmetric.CURRENT_CONVERGENT_VERSION:
        raise InvalidRequest(
            f"refusing to support decryption with old convergent encryption key: version {convergent}"
        )
    blob = decode_payload(payload)
    material = await keys.material(policy, version)
    return symmetric.decrypt(material, blob, derived=policy.derived, kdf=policy.kdf, context=context,
                             associated_data=aad)


async def _upsert(ctx: Context, keys: TransitKeys, f: EncryptFields, context_set: bool) -> KeyPolicy:
    from strongroom.engines.transit.keys import KeyFields, new_policy

    if not (await settings.load(ctx)).upsert:
        raise InvalidRequest("encryption key not found")
    if f.convergent_encryption and not context_set:
        raise InvalidRequest("convergent encryption requires derivation to be enabled, so context is required")
    kt = KeyType.parse(f.type)
    if kt not in _UPSERT_TYPES:
        if kt.ecdsa:
            raise InvalidRequest(f"key type {kt.value} not supported for this operation")
        raise InvalidRequest(f"unknown key type {kt.value}")
    fields = KeyFields(name=f.name, type=kt.value, derived=context_set,
                       convergent_encryption=f.convergent_encryption)
    return await keys.create(new_policy(fields))


async def encrypt(ctx: Context, req: Request, f: EncryptFields) -> Response:
    """Encrypt one plaintext or a batch.

    Raises:
        InvalidRequest: request-level problems (missing input, mixed contexts, missing key, bad type);
            item problems too when the request is not a batch.
    """
    check_name(f.name)
    if f.batch_input is None:
        return await _encrypt_single(ctx, req, f)
    if f.nonce:
        # Vault ignores top-level fields beside a batch; a nonce the caller believes was used is refused.
        raise InvalidRequest("nonce provided when not allowed")
    items = batch_items(f.batch_input, await settings.batch_limit(ctx))
    assert items is not None
    _check_contexts(items)
    result = BatchResult.sized(len(items))
    decoded: list[tuple[bytes, bytes] | None] = []
    for i, item in enumerate(items):
        try:
            if item_str(item, "nonce"):
                raise InvalidRequest("nonce provided when not allowed")
            plaintext = b64decode(item_str(item, "plaintext"))
            context = b64decode(item_str(item, "context"))
            decoded.append((plaintext, context))
        except StrongroomError as exc:
            result.fail(i, exc)
            decoded.append(None)
    keys = TransitKeys(ctx)
    policy = await _policy(ctx, req, keys, f, bool(item_str(items[0], "context")))
    for i, item in enumerate(items):
        pair = decoded[i]
        if pair is None:
            continue
        try:
            ciphertext, version = await encrypt_one(
                keys, policy, pair[0], pair[1], item_int(item, "key_version"), _aad(policy, item, i)
            )
        except StrongroomError as exc:
            result.fail(i, exc)
            continue
        result.ok(i, {"ciphertext": ciphertext, "key_version": version})
    result.references(items)
    return result.response(f.partial_failure_response_code)


async def _policy(ctx: Context, req: Request, keys: TransitKeys, f: EncryptFields, context_set: bool) -> KeyPolicy:
    policy = await keys.get(f.name)
    if policy is None:
        if req.operation is not Operation.CREATE:
            raise InvalidRequest("encryption key not found")
        policy = await _upsert(ctx, keys, f, context_set)
    return policy


async def _encrypt_single(ctx: Context, req: Request, f: EncryptFields) -> Response:
    """The one-plaintext request: the same checks in the same order as a batch of one, less overhead."""
    if f.plaintext is None:
        raise InvalidRequest("missing plaintext to encrypt")
    if f.nonce:
        raise InvalidRequest("nonce provided when not allowed")
    plaintext = b64decode(f.plaintext)
    context = b64decode(f.context) if f.context else b""
    keys = TransitKeys(ctx)
    policy = await _policy(ctx, req, keys, f, bool(f.context))
    aad = _aad(policy, {"associated_data": f.associated_data}, 0) if f.associated_data else None
    ciphertext, version = await encrypt_one(keys, policy, plaintext, context, f.key_version, aad)
    return Response(data={"ciphertext": ciphertext, "key_version": version})


async def decrypt(ctx: Context, req: Request, f: DecryptFields) -> Response:
    """Decrypt one ciphertext or a batch.

    Raises:
        InvalidRequest: request-level problems, or the item's problem when the request is not a batch.
        CiphertextRejected: a single ciphertext that does not authenticate.
    """
    return await _decrypt_or_rewrap(ctx, f, rewrap=False)


async def rewrap(ctx: Context, req: Request, f: DecryptFields) -> Response:
    """Decrypt and re-encrypt with the latest (or the given) key version, never revealing the plaintext.

    Raises:
        InvalidRequest: as :func:`decrypt`, plus version rules for the new encryption.
        CiphertextRejected: a single ciphertext that does not authenticate.
    """
    return await _decrypt_or_rewrap(ctx, f, rewrap=True)


async def _decrypt_or_rewrap(ctx: Context, f: DecryptFields, *, rewrap: bool) -> Response:
    check_name(f.name)
    raw = batch_items(f.batch_input, await settings.batch_limit(ctx))
    if raw is None:
        if not f.ciphertext:
            raise InvalidRequest("missing ciphertext to decrypt")
        items = _single(f, "ciphertext", f.ciphertext)
    elif f.nonce:
        raise InvalidRequest("nonce provided when not allowed")
    else:
        items = raw
    _check_contexts(items)
    result = BatchResult.sized(len(items))
    contexts: list[bytes | None] = []
    for i, item in enumerate(items):
        try:
            if not item_str(item, "ciphertext"):
                raise InvalidRequest("missing ciphertext to decrypt")
            if item_str(item, "nonce"):
                raise InvalidRequest("nonce provided when not allowed")
            contexts.append(b64decode(item_str(item, "context")))
        except StrongroomError as exc:
            result.fail(i, exc)
            contexts.append(None)
    keys = TransitKeys(ctx)
    policy = await keys.get(f.name)
    if policy is None:
        raise InvalidRequest("encryption key not found")
    if raw is not None and policy.type.rsa:
        check_batch_size(len(items), await settings.batch_limit(ctx, asymmetric=True))
    single_error: StrongroomError | None = None
    for i, item in enumerate(items):
        context = contexts[i]
        if context is None:
            continue
        try:
            aad = _aad(policy, item, i)
            plaintext = await decrypt_one(keys, policy, item_str(item, "ciphertext"), context, aad)
            if rewrap:
                ciphertext, version = await encrypt_one(
                    keys, policy, plaintext, context, item_int(item, "key_version"), aad
                )
                result.ok(i, {"ciphertext": ciphertext, "key_version": version})
            else:
                result.ok(i, {"plaintext": b64encode(plaintext)})
        except StrongroomError as exc:
            single_error = exc
            result.fail(i, exc)
    if raw is None:
        first = result.results[0]
        if "error" in first:
            if single_error is not None:
                raise single_error
            raise InvalidRequest(first["error"])
        return Response(data=first)
    result.references(items)
    if rewrap:
        # Vault's rewrap answers a batch with 200 whatever its items say (no partial-failure status).
        return Response(data={"batch_results": result.results})
    for entry in result.results:
        entry.setdefault("plaintext", "")
    return result.response(f.partial_failure_response_code)


ROUTES: list[Route[Context, Any]] = [
    Route(
        "encrypt/{name}",
        EncryptFields,
        {Operation.CREATE: encrypt, Operation.UPDATE: encrypt},
        existence=exists,
        summary="Encrypt with a named key (creates it when missing).",
    ),
    Route("decrypt/{name}", DecryptFields, {Operation.UPDATE: decrypt}, summary="Decrypt with a named key."),
    Route("rewrap/{name}", DecryptFields, {Operation.UPDATE: rewrap}, summary="Rewrap to the latest version."),
]
