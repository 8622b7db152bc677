"""``export/:type/:name[/:version]``: a key's material or public key in Vault's encodings.

Follows Vault's ``path_export.go``: ``type`` is ``encryption-key``, ``signing-key``, ``hmac-key``,
``public-key`` or ``certificate-chain``; ``version`` is a number (``v3`` accepted), ``latest``, or
absent for every version from ``min_decryption_version`` on; ``format`` is ``raw``, ``der``, ``pem`` or
empty for the type's default. Private material needs ``exportable``; public keys and certificate
chains do not. The encodings themselves are in :func:`strongroom.crypto.transit.vault_entry.export_key`.

Deliberate difference: where Vault answers a kind or format that does not fit the key with a 500
(``unknown key type ... for export type ...``, ``unknown key format ...``), this answers 400 with the
same message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from strongroom.crypto.transit.vault_entry import EXPORT_FORMATS, EXPORT_TYPES, export_key
from strongroom.engines.context import Context
from strongroom.engines.framework import Operation, Request, Response, Route
from strongroom.engines.transit.policy import check_name
from strongroom.engines.transit.store import TransitKeys
from strongroom.errors import InvalidRequest

_GO_ATOI = re.compile(r"[+-]?\d{1,19}\Z")


@dataclass(frozen=True)
class ExportFields:
    """``export/:type/:name[/:version]`` parameters (``format`` from the query string)."""

    type: str
    name: str
    version: str = ""
    format: str = ""


def _version(text: str, latest: int) -> int:
    """Vault's reading of the ``version`` segment: ``latest``, or Go's ``Atoi`` after an optional ``v``.

    Raises:
        InvalidRequest: ``invalid key version``.
    """
    if text == "latest":
        return latest
    text = text.removeprefix("v")
    if not _GO_ATOI.match(text) or not -(2**63) <= int(text) < 2**63:
        raise InvalidRequest("invalid key version")
    return int(text)


async def export(ctx: Context, req: Request, f: ExportFields) -> Response | None:
    """Return ``{"name", "type", "keys": {version: exported}}`` (404 when the key does not exist).

    Raises:
        InvalidRequest: unknown type or format, a key that is not exportable, a kind the key type does
            not have, or a version that is invalid, below ``min_decryption_version`` or missing.
    """
    if f.type not in EXPORT_TYPES:
        raise InvalidRequest(f"invalid export type: {f.type[:100]}")
    if f.format not in EXPORT_FORMATS:
        raise InvalidRequest(f"invalid format: {f.format[:100]}")
    check_name(f.name)
    keys = TransitKeys(ctx)
    policy = await keys.get(f.name)
    if policy is None:
        return None
    kt = policy.type
    if not policy.exportable and f.type not in ("public-key", "certificate-chain"):
        raise InvalidRequest("private key material is not exportable")
    if f.type == "encryption-key" and not kt.supports_encryption:
        raise InvalidRequest("encryption not supported for the key")
    if f.type == "signing-key" and not kt.supports_signing:
        raise InvalidRequest("signing not supported for the key")
    if f.type == "certificate-chain" and not kt.supports_signing:
        raise InvalidRequest("certificate chain not supported for keys that do not support signing")
    if f.version:
        number = _version(f.version, policy.latest_version)
        if number < policy.min_decryption_version:
            raise InvalidRequest("version for export is below minimum decryption version")
        if number not in policy.versions:
            raise InvalidRequest("version does not exist or cannot be found")
        versions = [number]
    else:
        # Vault exports the versions of its live key map: those from min_decryption_version on.
        versions = sorted(v for v in policy.versions if v >= policy.min_decryption_version)
    out: dict[str, str] = {}
    for v in versions:
        material = await keys.material(policy, v)
        chain = policy.versions[v].certificate_chain
        out[str(v)] = export_key(material, f.type, f.format, certificate_chain=chain)
    return Response(data={"name": policy.name, "type": kt.value, "keys": out})


ROUTES: list[Route[Context, Any]] = [
    Route("export/{type}/{name}", ExportFields, {Operation.READ: export},
          summary="Export every version of a key."),
    Route("export/{type}/{name}/{version}", ExportFields, {Operation.READ: export},
          summary="Export one version of a key."),
]
