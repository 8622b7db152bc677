"""``sign/:name[/:hash_algorithm]`` and ``verify/:name[/:hash_algorithm]`` (signatures, and HMACs via ``hmac.py``).

Vault's behaviour, checked against OpenBao 2.7: the hash algorithm comes from the path, else a non-empty
``hash_algorithm``, else a non-empty ``algorithm`` (deprecated), else ``sha2-256``; request-level checks
run in the order marshaling, salt length, key, key type, hash algorithm, ``none`` rule; each batch item
fails on its own (with ``key_version: 0`` on ``sign``) and batches answer 200; signatures are
``vault:vN:`` + standard base64 (``asn1``) or unpadded base64url (``jws``). A wrong signature verifies as
``valid: false``; a malformed one is a 400 with Vault's message. Versions below
``min_decryption_version`` cannot verify (Vault's ``ErrTooOld``); public-key-only versions cannot sign.

Deliberate differences (all where OpenBao answers 500 to a caller's mistake): a bad ``key_version``, a
prehashed input of the wrong size, an input too long for ``none``, an unknown RSA
``signature_algorithm``, a missing context on a derived key and a malformed batch item are 400s with the
same message. ``partial_failure_response_code`` (ignored by OpenBao on these paths) opts a batch into
``encrypt``'s status rules, see :func:`strongroom.engines.transit.hmac.batch_response`. Batches of
signatures and signature verifications hold at most
:data:`~strongroom.engines.transit.settings.MAX_ASYMMETRIC_BATCH_ITEMS` items unless the mount's
``max_batch_items`` says otherwise (Vault has no limit; here one request would hold a worker).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from strongroom.crypto.transit import signing
from strongroom.crypto.transit.digest import DEFAULT, lookup
from strongroom.crypto.transit.material import KeyMaterial
from strongroom.engines.context import Context
from strongroom.engines.framework import Operation, Request, Response, Route
from strongroom.engines.transit import settings
from strongroom.engines.transit.common import b64decode, b64encode, check_batch_size, version_prefix
from strongroom.engines.transit.hmac import (
    batch_response,
    decode_input,
    go_quote,
    parse_version,
    string_items,
    verify_hmacs,
    verify_response,
)
from strongroom.engines.transit.policy import ERR_TOO_OLD, KeyPolicy, check_name
from strongroom.engines.transit.store import TransitKeys
from strongroom.errors import InvalidRequest, StrongroomError

_NONE_RULE = "hash_algorithm=none requires both prehashed=true and signature_algorithm=pkcs1v15"
_B64URL = re.compile(r"[A-Za-z0-9_-]*\Z")


@dataclass(frozen=True)
class SignFields:
    """``sign/:name[/:urlalgorithm]`` parameters."""

    name: str
    urlalgorithm: str = ""
    input: str = ""
    context: str = ""
    hash_algorithm: str = ""
    algorithm: str = ""
    key_version: int = 0
    prehashed: bool = False
    signature_algorithm: str = ""
    marshaling_algorithm: str = signing.ASN1
    salt_length: str = "auto"
    batch_input: Any = None
    partial_failure_response_code: int | None = None


@dataclass(frozen=True)
class VerifyFields:
    """``verify/:name[/:urlalgorithm]`` parameters (``signature`` or ``hmac``)."""

    name: str
    urlalgorithm: str = ""
    input: str = ""
    context: str = ""
    signature: str | None = None
    hmac: str | None = None
    hash_algorithm: str = ""
    algorithm: str = ""
    prehashed: bool = False
    signature_algorithm: str = ""
    marshaling_algorithm: str = signing.ASN1
    salt_length: str = "auto"
    batch_input: Any = None
    partial_failure_response_code: int | None = None


def _algorithm_name(f: SignFields | VerifyFields) -> str:
    return f.urlalgorithm or f.hash_algorithm or f.algorithm or DEFAULT


def _marshaling(f: SignFields | VerifyFields) -> str:
    if f.marshaling_algorithm not in signing.MARSHALINGS:
        raise InvalidRequest(f"invalid marshaling type {go_quote(f.marshaling_algorithm)}")
    return f.marshaling_algorithm


def _options(f: SignFields | VerifyFields, marshaling: str, salt: int) -> signing.SigningOptions:
    """The signing options, after the key checks (Vault checks the hash name once it has the key)."""
    name = _algorithm_name(f)
    algorithm = lookup(name)
    if algorithm is None:
        raise InvalidRequest(f"invalid hash algorithm {go_quote(name)}")
    if algorithm.is_none and (not f.prehashed or f.signature_algorithm != signing.PKCS1V15):
        raise InvalidRequest(_NONE_RULE)
    return signing.SigningOptions(algorithm, f.prehashed, f.signature_algorithm, salt, marshaling)


def _context(text: str) -> bytes:
    if not text:
        return b""
    try:
        return b64decode(text)
    except InvalidRequest:
        raise InvalidRequest("failed to base64-decode context") from None


def _signing_version(policy: KeyPolicy, requested: int) -> int:
    if requested == 0:
        return policy.latest_version
    if requested < 0:
        raise InvalidRequest("requested version for signing is negative")
    if requested > policy.latest_version:
        raise InvalidRequest("requested version for signing is higher than the latest key version")
    if 0 < policy.min_encryption_version > requested:
        raise InvalidRequest("requested version for signing is less than the minimum encryption key version")
    return requested


def encode_signature(value: bytes, marshaling: str) -> str:
    """Standard base64 for ``asn1``, unpadded base64url for ``jws`` (Vault's encodings)."""
    if marshaling == signing.JWS:
        return base64.urlsafe_b64encode(value).rstrip(b"=").decode()
    return b64encode(value)


def decode_signature(text: str, marshaling: str) -> bytes:
    """Decode the part after ``vault:vN:``.

    Raises:
        InvalidRequest: ``invalid base64 signature value`` (Vault's message).
    """
    try:
        if marshaling == signing.JWS:
            # Go's RawURLEncoding: URL alphabet, no padding, CR and LF skipped.
            text = text.replace("\r", "").replace("\n", "")
            if not _B64URL.match(text) or len(text) % 4 == 1:
                raise ValueError(text)
            return binascii.a2b_base64((text + "=" * (-len(text) % 4)).translate(_URL_TO_STD), strict_mode=True)
        return b64decode(text)
    except (ValueError, binascii.Error, InvalidRequest):
        raise InvalidRequest("invalid base64 signature value") from None


_URL_TO_STD = str.maketrans("-_", "+/")


def _derivation(policy: KeyPolicy, context: bytes) -> tuple[int, bytes] | None:
    return (policy.kdf, context) if policy.derived else None


def _sign_one(policy: KeyPolicy, material: KeyMaterial, message: bytes, context: bytes,
              options: signing.SigningOptions) -> signing.Signature:
    # signing.sign refuses public-key-only versions with Vault's message.
    return signing.sign(material, message, options, derivation=_derivation(policy, context))


async def sign_write(ctx: Context, req: Request, f: SignFields) -> Response:
    """Sign one input or a batch.

    Raises:
        InvalidRequest: request-level problems; a single input's own problem.
    """
    check_name(f.name)
    marshaling = _marshaling(f)
    salt = signing.parse_salt_length(f.salt_length)
    keys = TransitKeys(ctx)
    policy = await keys.require(f.name, "signing key not found")
    if not policy.type.supports_signing:
        raise InvalidRequest(f"key type {policy.type.value} does not support signing")
    options = _options(f, marshaling, salt)
    items = string_items(f.batch_input, await settings.batch_limit(ctx, asymmetric=True))
    if items is None:
        # The single-item path stays short: it is what most clients call.
        message = decode_input(f.input)
        context = _context(f.context)
        version = _signing_version(policy, f.key_version)
        sig = _sign_one(policy, await keys.material(policy, version), message, context, options)
        data: dict[str, Any] = {
            "signature": version_prefix(version) + encode_signature(sig.value, marshaling),
            "key_version": version,
        }
        if sig.derived_public_key:
            data["public_key"] = b64encode(sig.derived_public_key)
        return Response(data=data)
    results: list[dict[str, Any]] = []
    failed = succeeded = False
    for item in items:
        try:
            text = item.get("input")
            if text is None:
                raise InvalidRequest("missing input")
            message = decode_input(text)
            context = _context(item.get("context", ""))
            version = _signing_version(policy, f.key_version)
            sig = _sign_one(policy, await keys.material(policy, version), message, context, options)
        except StrongroomError as exc:
            results.append({"key_version": 0, "error": exc.message})
            failed = True
            continue
        result: dict[str, Any] = {
            "signature": version_prefix(version) + encode_signature(sig.value, marshaling),
            "key_version": version,
        }
        if sig.derived_public_key:
            result["publickey"] = b64encode(sig.derived_public_key)
        results.append(result)
        succeeded = True
    return batch_response(results, items, failed, succeeded, f.partial_failure_response_code)


def _which(items: list[dict[str, str]], batch: bool) -> str:
    """``signature`` or ``hmac``: Vault's rules for what the items carry (a signature wins in an item)."""
    sig_found = hmac_found = missing = False
    for item in items:
        if "signature" in item:
            sig_found = True
        elif "hmac" in item:
            hmac_found = True
        else:
            missing = True
    if not batch and not sig_found and not hmac_found:
        raise InvalidRequest("neither a 'signature' nor an 'hmac' were given to verify")
    if sig_found and hmac_found:
        raise InvalidRequest("elements of batch_input must all provide 'signature' or all provide 'hmac'")
    if missing and sig_found:
        raise InvalidRequest("some elements of batch_input are missing 'signature'")
    if missing and hmac_found:
        raise InvalidRequest("some elements of batch_input are missing 'hmac'")
    if missing:
        raise InvalidRequest("no batch_input elements have 'signature' or 'hmac'")
    return "hmac" if hmac_found else "signature"


async def verify_write(ctx: Context, req: Request, f: VerifyFields) -> Response:
    """Verify one signature or HMAC, or a batch.

    Raises:
        InvalidRequest: request-level problems; a single item's own problem (never for a wrong signature,
            which is ``valid: false``).
    """
    check_name(f.name)
    items = string_items(f.batch_input, await settings.batch_limit(ctx))
    batch = items is not None
    if items is None:
        single: dict[str, str] = {"input": f.input, "context": f.context}
        if f.signature is not None:
            single["signature"] = f.signature
        if f.hmac is not None:
            single["hmac"] = f.hmac
        items = [single]
    if _which(items, batch) == "hmac":
        return await verify_hmacs(ctx, f.name, _algorithm_name(f), items, batch, f.partial_failure_response_code)
    marshaling = _marshaling(f)
    salt = signing.parse_salt_length(f.salt_length)
    keys = TransitKeys(ctx)
    policy = await keys.require(f.name, "signature verification key not found")
    if not policy.type.supports_signing:
        raise InvalidRequest(f"key type {policy.type.value} does not support verification")
    options = _options(f, marshaling, salt)
    if batch:
        check_batch_size(len(items), await settings.batch_limit(ctx, asymmetric=True))
    return await verify_response(
        items, batch, f.partial_failure_response_code, lambda item: _verify_one(keys, policy, item, options)
    )


async def _verify_one(keys: TransitKeys, policy: KeyPolicy, item: Mapping[str, str],
                      options: signing.SigningOptions) -> bool:
    text = item.get("input")
    if text is None:
        raise InvalidRequest("missing input")
    message = decode_input(text)
    given = item.get("signature")
    if given is None:
        raise InvalidRequest("missing signature")
    context = _context(item.get("context", ""))
    version, payload = parse_version(given, "signature", "invalid signature: no prefix")
    if version > policy.latest_version:
        raise InvalidRequest("invalid signature: version is too new")
    if policy.min_decryption_version > 0 and version < policy.min_decryption_version:
        raise InvalidRequest(ERR_TOO_OLD)
    value = decode_signature(payload, options.marshaling)
    material = await keys.material(policy, version)
    return signing.verify(material, message, value, options, derivation=_derivation(policy, context))


ROUTES: list[Route[Context, Any]] = [
    Route("sign/{name}", SignFields, {Operation.UPDATE: sign_write}, summary="Sign data with a named key."),
    Route(
        "sign/{name}/{urlalgorithm}",
        SignFields,
        {Operation.UPDATE: sign_write},
        summary="Sign data with a named key and the hash algorithm in the path.",
    ),
    Route("verify/{name}", VerifyFields, {Operation.UPDATE: verify_write}, summary="Verify a signature or HMAC."),
    Route(
        "verify/{name}/{urlalgorithm}",
        VerifyFields,
        {Operation.UPDATE: verify_write},
        summary="Verify a signature or HMAC with the hash algorithm in the path.",
    ),
]
