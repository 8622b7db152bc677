"""``keys/:name/trim``: delete the material of old key versions for good.

As Vault's ``path_trim.go``: ``min_available_version`` may only move up, needs both
``min_encryption_version`` and ``min_decryption_version`` set, and may not exceed either, so no version
that can still encrypt or decrypt is ever deleted. Versions below it lose their stored material in the
request's transaction; ciphertexts made with them can never be decrypted again. Setting the current
value again changes nothing and succeeds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from strongroom.engines.context import Context
from strongroom.engines.framework import Operation, Request, Response, Route
from strongroom.engines.transit.keys import describe
from strongroom.engines.transit.store import TransitKeys
from strongroom.errors import InvalidRequest


@dataclass(frozen=True)
class TrimFields:
    """``keys/:name/trim`` parameters."""

    name: str
    min_available_version: int | None = None


def check_trim(wanted: int, current: int, min_encryption: int, min_decryption: int) -> None:
    """Vault's rules for a new ``min_available_version``, checked in Vault's order.

    Raises:
        InvalidRequest: Vault's message for the first rule ``wanted`` breaks.
    """
    if wanted < current:
        raise InvalidRequest("minimum available version cannot be decremented")
    if min_encryption == 0:
        raise InvalidRequest(
            "minimum available version cannot be set when minimum encryption version is not set"
        )
    if min_decryption == 0:
        raise InvalidRequest(
            "minimum available version cannot be set when minimum decryption version is not set"
        )
    if wanted > min_encryption:
        # Vault's spelling ("minmum"), kept because clients and tests match on it.
        raise InvalidRequest("minimum available version cannot be greater than minmum encryption version")
    if wanted > min_decryption:
        raise InvalidRequest("minimum available version cannot be greater than minimum decryption version")
    if wanted < 0:
        raise InvalidRequest("minimum available version cannot be negative")
    if wanted == 0:
        raise InvalidRequest("minimum available version should be positive")


async def trim(ctx: Context, req: Request, f: TrimFields) -> Response:
    """Delete every version below ``min_available_version`` and return the key as ``keys/:name`` reads it.

    Raises:
        UnsupportedPath: ``name`` is not a valid key name.
        InvalidRequest: no such key (``invalid key name``), the parameter is missing, or a rule of
            :func:`check_trim` is broken.
    """
    keys = TransitKeys(ctx)
    policy = await keys.get(f.name)
    if policy is None:
        raise InvalidRequest("invalid key name")
    # An explicit JSON null counts as given (0), as Vault's GetOkErr sees it.
    if f.min_available_version is None and "min_available_version" not in req.data:
        raise InvalidRequest("missing min_available_version")
    wanted = f.min_available_version or 0
    check_trim(wanted, policy.min_available_version, policy.min_encryption_version,
               policy.min_decryption_version)
    if wanted != policy.min_available_version:
        policy = keys.drop_versions(policy, wanted)
    return Response(data=await describe(keys, policy))


ROUTES: list[Route[Context, Any]] = [
    Route("keys/{name}/trim", TrimFields, {Operation.UPDATE: trim}, summary="Trim old versions of a key."),
]
