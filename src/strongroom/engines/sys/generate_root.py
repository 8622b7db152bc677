"""``sys/generate-root/{attempt,update}``, OpenBao's ``sys/generate-root-token/{attempt,update}`` and
``sys/decode-token``.

Generating a root token is how operators recover when no root token is left, so every one of these
paths is unauthenticated: a quorum of unseal keys is the authority (Vault's design; see the differences
section of docs/operations/rekey-and-root-tokens.md for OpenBao, which authenticates the newer paths).
``sys/generate-root/*`` answers with Vault's raw bodies; the OpenBao paths answer inside the envelope's
``data``, which is where ``bao operator generate-root`` reads them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from strongroom.auth.tokens import TOKEN_PREFIX, TOKEN_RANDOM_CHARS
from strongroom.core.generate_root import decode_token
from strongroom.core.namespace import NamespaceKeys
from strongroom.core.seal import decode_share
from strongroom.core.stored_ceremony import subject_of
from strongroom.core.stored_generate_root import StoredRootGeneration
from strongroom.engines.bootstrap import create_root_token
from strongroom.engines.framework import Operation, Request, Response, Route
from strongroom.engines.open import OpenContext
from strongroom.errors import InvalidRequest, Sealed
from strongroom.storage.base import Transaction

OpenRoute = Route[OpenContext, Any]

TOKEN_LENGTH = len(TOKEN_PREFIX) + TOKEN_RANDOM_CHARS
"""Length of the root tokens we issue (``hvs.`` + 24 = 28, Vault's ``otp_length`` since 1.10)."""


@dataclass(frozen=True)
class AttemptFields:
    otp: str = ""
    pgp_key: str = ""


@dataclass(frozen=True)
class UpdateFields:
    key: str = ""
    nonce: str = ""


@dataclass(frozen=True)
class DecodeFields:
    encoded_token: str = ""
    otp: str = ""


def ceremony(ctx: OpenContext) -> StoredRootGeneration:
    """The generate-root ceremony of the addressed namespace (the platform or a tenant), its progress in
    storage so the shares may reach any worker of any node."""
    expiry = ctx.node.settings.unseal_expiry_seconds
    return StoredRootGeneration(subject_of(ctx.vault), token_length=TOKEN_LENGTH, expiry_seconds=expiry)


def routes(base: str, *, raw: bool) -> list[OpenRoute]:
    """``<base>/attempt`` and ``<base>/update``; ``raw`` selects Vault's bodies over the envelope."""

    def reply(body: dict[str, Any], *, drop: tuple[str, ...]) -> Response:
        if raw:
            return Response.raw(body)
        # OpenBao's envelope omits the fields that do not apply (checked against OpenBao 2.7).
        if not body["started"]:
            drop += ("nonce", "pgp_fingerprint")
        return Response(data={k: v for k, v in body.items() if k not in drop})

    status_drop = ("encoded_token", "encoded_root_token")
    update_drop = ("encoded_root_token", "otp", "otp_length")

    async def read_attempt(ctx: OpenContext, req: Request, f: AttemptFields) -> Response:
        return reply(await ceremony(ctx).status(), drop=status_drop)

    async def write_attempt(ctx: OpenContext, req: Request, f: AttemptFields) -> Response:
        generated = await ceremony(ctx).start(f.otp.strip(), f.pgp_key.strip())
        return reply(await ceremony(ctx).status(otp=generated), drop=status_drop)

    async def delete_attempt(ctx: OpenContext, req: Request, f: AttemptFields) -> None:
        if ctx.vault.sealed:
            raise Sealed()
        await ceremony(ctx).cancel()

    async def write_update(ctx: OpenContext, req: Request, f: UpdateFields) -> Response:
        key, nonce = f.key, f.nonce
        if raw:
            # Vault decodes this body with Go's JSON decoder: keys match case-insensitively.
            lowered = {str(k).lower(): v for k, v in req.data.items()}
            key = key or _text(lowered.get("key"))
            nonce = nonce or _text(lowered.get("nonce"))
            if not key:
                raise InvalidRequest("'key' must be specified in request body as JSON")
        else:
            if not nonce:
                raise InvalidRequest("nonce is required")
            if not key:
                raise InvalidRequest("key is required")
        clock = ctx.node.clock

        async def issue(tx: Transaction, keys: NamespaceKeys) -> str:
            return await create_root_token(tx, keys, clock)

        body = await ceremony(ctx).submit(decode_share(key), nonce, issue)
        return reply(body, drop=update_drop)

    return [
        Route(f"{base}/attempt", AttemptFields, {
            Operation.READ: read_attempt, Operation.UPDATE: write_attempt, Operation.DELETE: delete_attempt,
        }),
        Route(f"{base}/update", UpdateFields, {Operation.UPDATE: write_update}),
    ]


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


async def write_decode_token(ctx: OpenContext, req: Request, f: DecodeFields) -> Response:
    """OpenBao's ``sys/decode-token``: the server-side twin of ``generate-root -decode``."""
    if not f.encoded_token or not f.otp:
        raise InvalidRequest("provided 'encoded_token' or 'otp' is empty")
    return Response(data={"token": decode_token(f.encoded_token, f.otp)})


ROUTES: list[OpenRoute] = [
    *routes("generate-root", raw=True),
    *routes("generate-root-token", raw=False),
    Route("decode-token", DecodeFields, {Operation.UPDATE: write_decode_token}),
]
