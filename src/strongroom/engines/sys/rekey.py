"""``sys/rekey/{init,update,verify,backup}`` and OpenBao's ``sys/rotate/root/{init,update,verify,backup}``.

Both families drive the same :class:`~strongroom.core.stored_rekey.StoredRekey` (one rekey per namespace,
as in OpenBao, where both paths share the rotation state), whose progress is in storage for the platform and
for tenants alike, so the calls of one ceremony may reach any worker of any node.

* ``sys/rekey/*`` answers with Vault's raw bodies (no envelope). Vault leaves init/update/verify
  unauthenticated; strongroom requires a token with ``sudo`` on the path by default, as OpenBao's
  ``disable_unauthed_rekey_endpoints`` does, and behaves like Vault when
  ``NodeSettings.unauthenticated_rekey`` is set. ``sys/rekey/backup`` always needs ``sudo`` (a Vault
  root-protected path) and answers with the system-backend envelope.
* ``sys/rotate/root/*`` (what ``bao operator rotate-keys`` calls) answers inside the envelope's ``data``
  and needs a token whose policy allows the operation on the path, as in OpenBao (no ``sudo``).
"""

from __future__ import annotations

import base64
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from strongroom.core.rekey import BACKUP_RECORD, RekeyRequest, RekeyResult
from strongroom.core.seal import decode_share
from strongroom.core.stored_ceremony import subject_of
from strongroom.core.stored_rekey import StoredRekey
from strongroom.core.vault import Vault
from strongroom.engines.fields import NoFields
from strongroom.engines.framework import Operation, Request, Response, Route
from strongroom.engines.open import OpenContext
from strongroom.errors import InvalidRequest, Sealed
from strongroom.storage.base import Transaction, transactional

OpenRoute = Route[OpenContext, Any]


class Family(Enum):
    """Which API a route belongs to: how it authenticates, answers and words a few errors."""

    VAULT = "rekey"
    OPENBAO = "rotate/root"


@dataclass(frozen=True)
class InitFields:
    secret_shares: int = 0
    secret_threshold: int = 0
    pgp_keys: list[str] = field(default_factory=list)
    backup: bool = False
    require_verification: bool = False


@dataclass(frozen=True)
class KeyFields:
    key: str = ""
    nonce: str = ""


def ceremony(ctx: OpenContext) -> StoredRekey:
    """The rekey ceremony of the addressed namespace (the platform or a tenant), its progress in storage."""
    return StoredRekey(subject_of(ctx.vault), expiry_seconds=ctx.node.settings.unseal_expiry_seconds)


async def authorize(
    ctx: OpenContext, family: Family, endpoint: str, operation: Operation, params: Mapping[str, Any]
) -> None:
    """Apply the family's authentication rule to ``sys/<family>/<endpoint>``.

    Raises:
        Sealed: a token is required and the vault is sealed (the token store cannot be read).
        PermissionDenied: no valid token, or its policies do not allow the call.
    """
    path = f"sys/{family.value}/{endpoint}"
    if family is Family.VAULT:
        if endpoint != "backup" and ctx.node.settings.unauthenticated_rekey:
            return
        await ctx.require_sudo(path, operation.value, params)
        return
    await ctx.authorize(path, operation.value, params, sudo=False)


def reply(family: Family, body: dict[str, Any]) -> Response:
    """Vault's raw body, or OpenBao's envelope with the body as ``data``."""
    return Response.raw(body) if family is Family.VAULT else Response(data=body)


def openbao_status(body: dict[str, Any]) -> dict[str, Any]:
    """Reshape a rekey status body the way ``sys/rotate/root/init`` shows it (checked against OpenBao 2.7)."""
    if not body["started"]:
        return {name: body[name] for name in ("n", "required", "started", "t")}
    shaped = {k: v for k, v in body.items() if k not in ("pgp_fingerprints", "backup")}
    shaped.setdefault("verification_nonce", "")
    if body["pgp_fingerprints"]:
        shaped.update(pgp_fingerprints=body["pgp_fingerprints"], backup=body["backup"])
    return shaped


# The ceremony speaks Vault; OpenBao words the same conditions differently on its rotate paths.
_OPENBAO_MESSAGES = {
    "rekey already in progress": "rotation already in progress",
    "no rekey configuration found": "no rotation configuration found",
    "no barrier rekey in progress": "no rotation in progress",
    "no rekey in progress": "no rotation in progress",
    "no rekey verification in progress": "no rotation verification in progress",
    "given key has already been provided during this generation operation":
        "given key has already been provided during this rotation",
}
_OPENBAO_FRAGMENTS = (
    ("rekey operation already finished;", "rotation already finished;"),
    ("nonce for this rekey operation is", "nonce for rotation is"),
)


@contextmanager
def worded(family: Family) -> Iterator[None]:
    """Re-raise the ceremony's client errors in the family's wording (same class, same status)."""
    try:
        yield
    except InvalidRequest as exc:
        if family is Family.VAULT:
            raise
        text = _OPENBAO_MESSAGES.get(exc.message, exc.message)
        for vault_words, openbao_words in _OPENBAO_FRAGMENTS:
            text = text.replace(vault_words, openbao_words)
        if text == exc.message:
            raise
        raise type(exc)(text) from None


async def read_backup(vault: Vault) -> dict[str, Any] | None:
    """Return the stored backup ``{"nonce", "keys": {fingerprint: [hex message]}}``, or ``None``.

    Raises:
        Sealed: the vault is sealed on this node.
    """
    if vault.keys is None:
        raise Sealed()

    async def read(tx: Transaction) -> Any:
        # The keys storage holds now: another node may have rotated and re-wrapped the record.
        keys = await vault.current_keys(tx)
        return await keys.records(tx, "sys").get_json(BACKUP_RECORD)

    doc = await transactional(vault.store, read)
    return doc if isinstance(doc, dict) else None


async def delete_backup(vault: Vault) -> None:
    """Delete the stored backup (no error if there is none).

    Raises:
        Sealed: the vault is sealed on this node.
    """
    if vault.keys is None:
        raise Sealed()

    async def clear(tx: Transaction) -> None:
        keys = await vault.current_keys(tx)
        keys.records(tx, "sys").clear(BACKUP_RECORD)

    await transactional(vault.store, clear)


def share_fields(family: Family, req: Request, f: KeyFields) -> tuple[bytes, str]:
    """Return the decoded share and the nonce of an update/verify call.

    Vault decodes these bodies with Go's JSON decoder, which matches keys case-insensitively.

    Raises:
        InvalidRequest: missing key (or, for OpenBao, nonce), or a key that is neither hex nor base64.
    """
    key, nonce = f.key, f.nonce
    if family is Family.VAULT:
        lowered = {str(k).lower(): v for k, v in req.data.items()}
        key = key or _text(lowered.get("key"))
        nonce = nonce or _text(lowered.get("nonce"))
        if not key:
            raise InvalidRequest("'key' must be specified in request body as JSON")
    else:
        if not key:
            raise InvalidRequest("missing required field 'key'")
        if not nonce:
            raise InvalidRequest("missing required field 'nonce'")
    return decode_share(key), nonce


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def result_body(result: RekeyResult) -> dict[str, Any]:
    """The body of the ``update`` call that created the new shares."""
    body: dict[str, Any] = {
        "nonce": result.nonce,
        "complete": True,
        "keys": result.keys,
        "keys_base64": result.keys_base64,
        "pgp_fingerprints": result.pgp_fingerprints,
        "backup": result.backup,
        "verification_required": result.verification_required,
    }
    if result.verification_nonce:
        body["verification_nonce"] = result.verification_nonce
    return body


def routes(family: Family) -> list[OpenRoute]:
    """The four endpoints of one family."""

    async def status(ctx: OpenContext) -> Response:
        with worded(family):
            body = await ceremony(ctx).status()
        return reply(family, body if family is Family.VAULT else openbao_status(body))

    async def verification_status(ctx: OpenContext) -> Response:
        with worded(family):
            return reply(family, await ceremony(ctx).verification_status())

    async def read_init(ctx: OpenContext, req: Request, f: InitFields) -> Response:
        await authorize(ctx, family, "init", Operation.READ, req.data)
        return await status(ctx)

    async def write_init(ctx: OpenContext, req: Request, f: InitFields) -> Response:
        await authorize(ctx, family, "init", Operation.UPDATE, req.data)
        request = RekeyRequest(
            f.secret_shares, f.secret_threshold, tuple(f.pgp_keys), f.backup, f.require_verification
        )
        with worded(family):
            await ceremony(ctx).start(request)
        return await status(ctx)

    async def delete_init(ctx: OpenContext, req: Request, f: InitFields) -> None:
        await authorize(ctx, family, "init", Operation.DELETE, req.data)
        if ctx.vault.sealed:
            raise Sealed()
        await ceremony(ctx).cancel()

    async def write_update(ctx: OpenContext, req: Request, f: KeyFields) -> Response:
        await authorize(ctx, family, "update", Operation.UPDATE, req.data)
        share, nonce = share_fields(family, req, f)
        with worded(family):
            result = await ceremony(ctx).submit(share, nonce)
        if result is None:
            return await status(ctx)
        return reply(family, result_body(result))

    async def read_verify(ctx: OpenContext, req: Request, f: KeyFields) -> Response:
        await authorize(ctx, family, "verify", Operation.READ, req.data)
        return await verification_status(ctx)

    async def write_verify(ctx: OpenContext, req: Request, f: KeyFields) -> Response:
        await authorize(ctx, family, "verify", Operation.UPDATE, req.data)
        share, nonce = share_fields(family, req, f)
        with worded(family):
            done = await ceremony(ctx).verify(share, nonce)
        if done is None:
            return await verification_status(ctx)
        return reply(family, {"nonce": done, "complete": True})

    async def delete_verify(ctx: OpenContext, req: Request, f: KeyFields) -> Response:
        await authorize(ctx, family, "verify", Operation.DELETE, req.data)
        await ceremony(ctx).restart_verification()
        return await verification_status(ctx)

    async def read_backup_keys(ctx: OpenContext, req: Request, f: NoFields) -> Response:
        await authorize(ctx, family, "backup", Operation.READ, req.data)
        backup = await read_backup(ctx.vault)
        if backup is None:
            raise InvalidRequest("no backed-up keys found")
        keys: dict[str, list[str]] = backup.get("keys") or {}
        data = {
            "nonce": backup.get("nonce", ""),
            "keys": keys,
            "keys_base64": {
                fingerprint: [base64.b64encode(bytes.fromhex(m)).decode() for m in messages]
                for fingerprint, messages in keys.items()
            },
        }
        # Both Vault and OpenBao copy this body to the top level too (their HTTP data injector).
        return Response(data=data, sys_inject=True)

    async def delete_backup_keys(ctx: OpenContext, req: Request, f: NoFields) -> None:
        await authorize(ctx, family, "backup", Operation.DELETE, req.data)
        await delete_backup(ctx.vault)

    base = family.value
    return [
        Route(f"{base}/init", InitFields, {
            Operation.READ: read_init, Operation.UPDATE: write_init, Operation.DELETE: delete_init,
        }),
        Route(f"{base}/update", KeyFields, {Operation.UPDATE: write_update}),
        Route(f"{base}/verify", KeyFields, {
            Operation.READ: read_verify, Operation.UPDATE: write_verify, Operation.DELETE: delete_verify,
        }),
        Route(f"{base}/backup", NoFields, {
            Operation.READ: read_backup_keys, Operation.DELETE: delete_backup_keys,
        }),
    ]


ROUTES: list[OpenRoute] = [*routes(Family.VAULT), *routes(Family.OPENBAO)]
