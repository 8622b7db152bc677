"""``hmac/:name[/:algorithm]`` and the HMAC half of ``verify/:name``, as Vault does them.

Any key type can HMAC: the version's HMAC key is used (the key itself for type ``hmac``), never the
encryption or signing key. Output is ``vault:vN:<base64 HMAC>``.

Vault's rules kept here: the key and version are checked before the batch (a bad ``key_version`` fails the
whole request, even a batch); each batch item fails on its own; batches answer 200 with per-item
``error``s. Deliberate differences: an unknown algorithm is named in the error (OpenBao prints a Go zero
value, ``'\\x00'``); items that fail to verify carry ``"valid": false`` (OpenBao omits the field);
``partial_failure_response_code``, when given, gives batches with failed items the status rules of
``encrypt`` (OpenBao ignores it here); malformed batch items are a 400, not a 500.

The batch helpers here (Vault's ``map[string]string`` decoding of items, the status rule) serve
``sign.py`` too.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from strongroom.crypto.transit import mac
from strongroom.crypto.transit.digest import DEFAULT, HMAC_NAMES, lookup
from strongroom.engines.context import Context
from strongroom.engines.framework import Operation, Request, Response, Route
from strongroom.engines.transit import settings
from strongroom.engines.transit.common import (
    PREFIX,
    b64decode,
    b64encode,
    batch_items,
    override_status,
    version_prefix,
)
from strongroom.engines.transit.policy import KeyPolicy, check_name
from strongroom.engines.transit.store import TransitKeys
from strongroom.errors import InvalidRequest, StrongroomError

# -- helpers shared with sign.py -------------------------------------------------------------------------


def go_quote(text: str) -> str:
    """``text`` as Go's ``%q`` shows it in Vault's messages (bounded: requests must not echo megabytes)."""
    return json.dumps(text[:100], ensure_ascii=False)


def string_items(raw: Any, limit: int) -> list[dict[str, str]] | None:
    """Decode ``batch_input`` the way Vault decodes it into ``[]map[string]string``.

    Strings stay, numbers become their text (Vault reads JSON numbers as text), ``null`` becomes ``""``.
    Returns ``None`` when the request has no batch.

    Raises:
        InvalidRequest: not a list of objects, empty, over ``limit``, or an item value that is a boolean,
            list or object (Vault: ``failed to parse batch input``).
    """
    items = batch_items(raw, limit)
    if items is None:
        return None
    out: list[dict[str, str]] = []
    for i, item in enumerate(items):
        decoded: dict[str, str] = {}
        for key, value in item.items():
            if isinstance(value, str):
                decoded[key] = value
            elif value is None:
                decoded[key] = ""
            elif isinstance(value, int | float) and not isinstance(value, bool):
                decoded[key] = str(value)
            else:
                raise InvalidRequest(
                    f"failed to parse batch input: '[{i}][{key[:100]}]' expected type 'string', "
                    f"got unconvertible type '{type(value).__name__}'"
                )
        out.append(decoded)
    return out


def batch_response(results: list[dict[str, Any]], items: Sequence[Mapping[str, str]], failed: bool,
                   succeeded: bool, partial_failure_code: int | None) -> Response:
    """``batch_results`` with each item's ``reference``; 200 unless the caller asked for status rules.

    With ``partial_failure_response_code`` a batch with failed items answers 400, or that code when some
    items succeeded (``encrypt``'s rules; codes outside 200..599 fall back to 400 with a warning).
    """
    for result, item in zip(results, items, strict=True):
        result["reference"] = item.get("reference", "")
    resp = Response(data={"batch_results": results})
    if failed and partial_failure_code is not None:
        resp.status = 400
        if succeeded:
            resp.status = override_status(resp, partial_failure_code, 400)
    return resp


async def verify_response(items: Sequence[Mapping[str, str]], batch: bool, partial_failure_code: int | None,
                          verify_one: Callable[[Mapping[str, str]], Awaitable[bool]]) -> Response:
    """Run ``verify_one`` on each item and answer ``verify/:name`` (HMAC or signature alike).

    A single request answers ``{"valid": ...}``; a batch answers :func:`batch_response`, where an item
    whose check raised carries ``"valid": false`` and its ``error``.

    Raises:
        StrongroomError: (not a batch) what ``verify_one`` raised for the single item.
    """
    results: list[dict[str, Any]] = []
    failed = succeeded = False
    for item in items:
        try:
            valid = await verify_one(item)
        except StrongroomError as exc:
            if not batch:
                raise
            results.append({"valid": False, "error": exc.message})
            failed = True
            continue
        results.append({"valid": valid})
        succeeded = True
    if not batch:
        return Response(data=results[0])
    return batch_response(results, items, failed, succeeded, partial_failure_code)


def decode_input(text: str) -> bytes:
    """Base64 ``input`` of an item.

    Raises:
        InvalidRequest: ``unable to decode input as base64: ...`` as Vault words it.
    """
    try:
        return b64decode(text)
    except InvalidRequest as exc:
        raise InvalidRequest(f"unable to decode input as base64: {exc.message}") from None


def parse_version(value: str, what: str, no_prefix: str) -> tuple[int, str]:
    """Split ``vault:vN:payload`` as Vault does (Go's ``Atoi`` accepts ``+1``, ``01`` and ``-1``).

    Raises:
        InvalidRequest: ``no_prefix``, ``invalid <what>: wrong number of fields`` or ``... version number
            could not be decoded``.
    """
    if not value.startswith(PREFIX):
        raise InvalidRequest(no_prefix)
    number, sep, payload = value[len(PREFIX):].partition(":")
    if not sep:
        raise InvalidRequest(f"invalid {what}: wrong number of fields")
    digits = number[1:] if number[:1] in ("+", "-") else number
    if not digits.isascii() or not digits.isdigit() or len(digits) > 18:
        raise InvalidRequest(f"invalid {what}: version number could not be decoded")
    return int(number), payload


# -- hmac/:name ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HmacFields:
    """``hmac/:name[/:urlalgorithm]`` parameters."""

    name: str
    urlalgorithm: str = ""
    input: str | None = None
    algorithm: str = DEFAULT
    key_version: int = 0
    batch_input: Any = None
    partial_failure_response_code: int | None = None


def _hmac_version(policy: KeyPolicy, requested: int) -> int:
    """Vault's version rules for generating an HMAC (checked before any item)."""
    version = requested
    if version == 0:
        version = policy.latest_version
    elif version != policy.latest_version and 0 < policy.min_encryption_version > version:
        raise InvalidRequest("cannot generate HMAC: version is too old (disallowed by policy)")
    if version < 0:
        raise InvalidRequest("key version does not exist (cannot be negative)")
    if version > policy.latest_version:
        raise InvalidRequest(f"key version does not exist; latest key version is {policy.latest_version}")
    return version


async def hmac_write(ctx: Context, req: Request, f: HmacFields) -> Response:
    """HMAC one input or a batch with the named key.

    Raises:
        InvalidRequest: unknown key, bad version, unknown algorithm, bad batch; a single input's own error.
    """
    check_name(f.name)
    name = f.urlalgorithm or f.algorithm
    keys = TransitKeys(ctx)
    policy = await keys.require(f.name)
    version = _hmac_version(policy, f.key_version)
    key = mac.hmac_key(await keys.material(policy, version))
    algorithm = lookup(name)
    if algorithm is not None and algorithm.is_none:
        raise InvalidRequest("algorithm cannot be none")
    if algorithm is None or algorithm.name not in HMAC_NAMES:
        raise InvalidRequest(f"unsupported algorithm {go_quote(name)}")
    items = string_items(f.batch_input, await settings.batch_limit(ctx))
    if items is None:
        if f.input is None:
            raise InvalidRequest("missing input for HMAC")
        # The single-item path: no batch bookkeeping.
        digest = mac.compute(key, algorithm, decode_input(f.input))
        return Response(data={"hmac": version_prefix(version) + b64encode(digest)})
    prefix = version_prefix(version)
    results: list[dict[str, Any]] = []
    failed = succeeded = False
    for item in items:
        text = item.get("input")
        try:
            if text is None:
                raise InvalidRequest("missing input for HMAC")
            results.append({"hmac": prefix + b64encode(mac.compute(key, algorithm, decode_input(text)))})
            succeeded = True
        except StrongroomError as exc:
            results.append({"error": exc.message})
            failed = True
    return batch_response(results, items, failed, succeeded, f.partial_failure_response_code)


# -- verify/:name with hmac ------------------------------------------------------------------------------


async def verify_hmacs(ctx: Context, name: str, algorithm_name: str, items: list[dict[str, str]],
                       batch: bool, partial_failure_code: int | None) -> Response:
    """``verify/:name`` for items carrying ``hmac`` (``sign.py`` routes here).

    Raises:
        InvalidRequest: unknown algorithm or key, ``none``; a single item's own error.
    """
    algorithm = lookup(algorithm_name)
    if algorithm is None:
        raise InvalidRequest(f"invalid hash algorithm {go_quote(algorithm_name)}")
    keys = TransitKeys(ctx)
    policy = await keys.require(name)
    if algorithm.is_none:
        raise InvalidRequest("algorithm cannot be none")
    return await verify_response(
        items, batch, partial_failure_code, lambda item: _verify_one(keys, policy, algorithm_name, item)
    )


async def _verify_one(keys: TransitKeys, policy: KeyPolicy, algorithm_name: str, item: Mapping[str, str]) -> bool:
    text = item.get("input")
    if text is None:
        raise InvalidRequest("missing input")
    data = decode_input(text)
    given = item.get("hmac")
    if given is None:
        raise InvalidRequest("missing hmac")
    version, payload = parse_version(given, "HMAC", "invalid HMAC to verify: no prefix")
    try:
        expected = b64decode(payload)
    except InvalidRequest as exc:
        raise InvalidRequest(f"unable to decode verification HMAC as base64: {exc.message}") from None
    if version > policy.latest_version:
        raise InvalidRequest("invalid HMAC: version is too new")
    if policy.min_decryption_version > 0 and version < policy.min_decryption_version:
        raise InvalidRequest("cannot verify HMAC: version is too old (disallowed by policy)")
    if version < 0:
        raise InvalidRequest("key version does not exist (cannot be negative)")
    key = mac.hmac_key(await keys.material(policy, version))
    algorithm = lookup(algorithm_name)
    assert algorithm is not None
    return mac.verify(key, algorithm, data, expected)


ROUTES: list[Route[Context, Any]] = [
    Route("hmac/{name}", HmacFields, {Operation.UPDATE: hmac_write}, summary="HMAC data with a named key."),
    Route(
        "hmac/{name}/{urlalgorithm}",
        HmacFields,
        {Operation.UPDATE: hmac_write},
        summary="HMAC data with a named key and the algorithm in the path.",
    ),
]
