"""Offline attenuation: append a block of checks to a token (docs/spec/tokens.md section 5).

The holder needs only the token and the published IAM public key (biscuit-python serialises a token again
only after verifying it, which also proves the token genuine). The new block restricts by path prefix,
operation and lifetime; blocks can only restrict, never widen. Values are Datalog parameters, never
spliced into the source.

:func:`inspect` shows a token's blocks without verifying anything, for humans.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import biscuit_auth

from strongroom.auth.iam.policy import DISCOVERY_PATH, OPERATIONS, SELF_SERVICE_PATHS
from strongroom.auth.iam.signing import IamPublicKey
from strongroom.auth.iam.text import (
    MAX_BLOCKS,
    MAX_TOKEN_CHARS,
    biscuit_text,
    is_library_failure,
    token_from_biscuit,
)
from strongroom.errors import InvalidRequest

OPERATION_ALIASES = {"write": ("create", "update")}
"""``write`` = what a Vault ``write`` can become: ``create`` the first time, ``update`` afterwards."""

MAX_PATH_CHARS = 1024

# Self-service and mount discovery stay usable whatever the restriction (spec section 5).
_EXEMPT = " or resource($r), {exempt}.contains($r) or resource($r), $r.starts_with({discovery})"


def attenuate(
    token: str,
    public_key: IamPublicKey,
    *,
    paths: Sequence[str] = (),
    operations: Sequence[str] = (),
    ttl: float | None = None,
    now: float | None = None,
) -> str:
    """Return ``token`` with one more block restricting it; the input token stays valid.

    ``paths`` are prefixes of the request path (``secret/data/app/``): a request must match one of them.
    ``operations`` are operation names or ``write``: a request must be one of them. ``ttl`` (seconds, with
    ``now``) makes the token expire earlier. With none of them, the new token differs from the old only by
    its own revocation id, which can be revoked separately.

    Raises:
        InvalidRequest: the token is not a biscuit that verifies with ``public_key``, it has too many
            blocks already, or a restriction is malformed.
    """
    ops = _operations(operations)
    for path in paths:
        _check_path(path)
    if ttl is not None and (now is None or not math.isfinite(ttl) or ttl <= 0):
        raise InvalidRequest("ttl must be a positive number of seconds (with now)")
    parsed = _verified(token, public_key)
    if parsed.block_count() >= MAX_BLOCKS:
        raise InvalidRequest(f"the token already has {parsed.block_count()} blocks (at most {MAX_BLOCKS})")
    code: list[str] = []
    params: dict[str, Any] = {"exempt": {*SELF_SERVICE_PATHS, DISCOVERY_PATH}, "discovery": DISCOVERY_PATH + "/"}
    if ttl is not None and now is not None:
        # Rounded down: the attenuated token never outlives what was asked.
        params["expiry"] = datetime.fromtimestamp(math.floor(now + ttl), tz=UTC)
        code.append("expiry({expiry});")
        code.append("check if time($time), $time < {expiry};")
    if paths:
        names = [f"p{i}" for i in range(len(paths))]
        params.update(zip(names, paths, strict=True))
        alternatives = " or ".join(f"resource($r), $r.starts_with({{{n}}})" for n in names)
        code.append(f"check if {alternatives}{_EXEMPT};")
    if ops:
        params["ops"] = set(ops)
        code.append(f"check if operation($op), {{ops}}.contains($op){_EXEMPT};")
    block = biscuit_auth.BlockBuilder("\n".join(code), params) if code else biscuit_auth.BlockBuilder("")
    result = parsed.append(block).to_base64()
    if len(result) > MAX_TOKEN_CHARS:
        raise InvalidRequest(f"the attenuated token would be longer than the {MAX_TOKEN_CHARS} characters "
                             "the server accepts: restrict with fewer blocks or fewer paths")
    return token_from_biscuit(result)


def root_key_id(token: str) -> int | None:
    """The root key id a token names, read without verifying (to pick the public key).

    Raises:
        InvalidRequest: not a biscuit token.
    """
    try:
        return biscuit_auth.UnverifiedBiscuit.from_base64(biscuit_text(token)).root_key_id()
    except BaseException as exc:
        if not is_library_failure(exc):
            raise
        raise InvalidRequest("not a strongroom biscuit token") from None


def inspect(token: str) -> dict[str, Any]:
    """The blocks of ``token`` as Datalog, with their revocation ids, **without verifying anything**.

    Raises:
        InvalidRequest: not a biscuit token.
    """
    try:
        parsed = biscuit_auth.UnverifiedBiscuit.from_base64(biscuit_text(token))
        ids = parsed.revocation_ids
        blocks = [
            {"index": i, "revocation_id": ids[i], "source": parsed.block_source(i)}
            for i in range(parsed.block_count())
        ]
        return {"verified": False, "root_key_id": parsed.root_key_id(), "blocks": blocks}
    except BaseException as exc:
        if not is_library_failure(exc):
            raise
        raise InvalidRequest("not a strongroom biscuit token") from None


def _verified(token: str, public_key: IamPublicKey) -> biscuit_auth.Biscuit:
    try:
        return biscuit_auth.Biscuit.from_base64(biscuit_text(token), public_key.biscuit_key)
    except BaseException as exc:
        if not is_library_failure(exc):
            raise
        raise InvalidRequest("the token is not a strongroom biscuit that verifies with this public key") from None


def _operations(operations: Sequence[str]) -> list[str]:
    result: list[str] = []
    for op in operations:
        name = op.strip().lower()
        expanded = OPERATION_ALIASES.get(name, (name,))
        for item in expanded:
            if item not in OPERATIONS:
                raise InvalidRequest(f"unknown operation {op!r}: expected one of {', '.join(OPERATIONS)} or write")
            if item not in result:
                result.append(item)
    return result


def _check_path(path: str) -> None:
    if not isinstance(path, str) or not path or len(path) > MAX_PATH_CHARS or path.startswith("/"):
        raise InvalidRequest("a path prefix is a non-empty path relative to the namespace, without a leading '/'")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in path):
        raise InvalidRequest("a path prefix cannot contain control characters")
