"""``datakey/plaintext/:name`` and ``datakey/wrapped/:name``: fresh data keys for envelope encryption.

As Vault's ``path_datakey.go``: a random key of 128, 256 (default) or 512 bits is encrypted with the
named transit key (any type that can encrypt: the AEADs and RSA-OAEP), exactly as ``encrypt`` would
encrypt it, so ``decrypt`` of the returned ciphertext yields the base64 of the key. ``plaintext`` also
returns that base64 key; ``wrapped`` returns only the ciphertext, so the caller can hand the wrapped key
to whoever may later ask transit to unwrap it. Data keys never create the named key (no upsert).

Deliberate difference from OpenBao: a ``nonce`` parameter is refused (``nonce provided when not allowed``,
as ``encrypt`` refuses it) where OpenBao ignores it with a warning; a caller who believes it chose the
nonce must not be told it succeeded. Undecodable ``associated_data`` is a 400 here (OpenBao answers 500).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from strongroom.crypto.transit import random_data
from strongroom.engines.context import Context
from strongroom.engines.framework import Operation, Request, Response, Route
from strongroom.engines.transit.common import b64decode, b64encode
from strongroom.engines.transit.encrypt import encrypt_one
from strongroom.engines.transit.policy import check_name
from strongroom.engines.transit.store import TransitKeys
from strongroom.errors import InvalidRequest

_KINDS = ("plaintext", "wrapped")


@dataclass(frozen=True)
class DatakeyFields:
    """``datakey/:plaintext/:name`` parameters (``plaintext`` is the path segment, as Vault names it)."""

    plaintext: str
    name: str
    context: str = ""
    bits: int = 256
    key_version: int = 0
    associated_data: str = ""
    nonce: str = ""


async def generate(ctx: Context, req: Request, f: DatakeyFields) -> Response:
    """Generate a data key and return it wrapped (and in clear for ``plaintext``).

    Raises:
        UnsupportedPath: the key name or the kind segment is not a valid name (Vault's router: 404).
        InvalidRequest: Vault's messages: a kind other than ``plaintext``/``wrapped``, a bad context, a
            missing key, a bit length other than 128/256/512, associated data for a non-AEAD key, a type
            that cannot encrypt, version rules, a missing context for a derived key; and a nonce.
    """
    check_name(f.name)
    check_name(f.plaintext)
    if f.plaintext not in _KINDS:
        raise InvalidRequest("Invalid path, must be 'plaintext' or 'wrapped'")
    if f.nonce:
        raise InvalidRequest("nonce provided when not allowed")
    context = b""
    if f.context:
        try:
            context = b64decode(f.context)
        except InvalidRequest:
            raise InvalidRequest("failed to base64-decode context") from None
    keys = TransitKeys(ctx)
    policy = await keys.require(f.name)
    if f.bits not in random_data.DATA_KEY_BYTES:
        raise InvalidRequest("invalid bit length")
    aad: bytes | None = None
    if f.associated_data:
        if not policy.type.symmetric_aead:
            raise InvalidRequest(f"'associated_data' provided for non-AEAD cipher suite {policy.type.value}")
        try:
            aad = b64decode(f.associated_data)
        except InvalidRequest as exc:
            raise InvalidRequest(
                f"unable to get associated_data/additional_data from factory[0]: {exc.message}"
            ) from None
    data_key = random_data.data_key(f.bits)
    ciphertext, version = await encrypt_one(keys, policy, data_key, context, f.key_version, aad)
    data: dict[str, Any] = {"ciphertext": ciphertext, "key_version": version}
    if f.plaintext == "plaintext":
        data["plaintext"] = b64encode(data_key)
    return Response(data=data)


ROUTES: list[Route[Context, Any]] = [
    Route(
        "datakey/{plaintext}/{name}",
        DatakeyFields,
        {Operation.UPDATE: generate},
        summary="Generate a data key wrapped by a named key (and in clear for 'plaintext').",
    ),
]
