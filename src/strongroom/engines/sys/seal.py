"""Seal endpoints served before the seal check: ``sys/init``, ``sys/seal-status``, ``sys/unseal``,
``sys/health``, ``sys/leader``, ``sys/seal`` and ``sys/step-down``.

Their bodies are Vault's raw (non-envelope) shapes, key for key as OpenBao 2.7 sends them, plus the few
keys Vault 1.17 adds that OpenBao dropped (``build_date``; the extra ``sys/health`` fields); see
docs/api-compatibility.md. ``sys/health`` chooses its status code from query parameters as Vault does.
``sys/init`` and ``sys/unseal`` decode their bodies strictly, as Vault's Go structs do (a string where a
number belongs is a 400), instead of the lenient coercion of logical endpoints.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from strongroom.core.seal import decode_share
from strongroom.core.stored_ceremony import subject_of
from strongroom.core.vault import InitRequest
from strongroom.engines.bootstrap import setup_hook
from strongroom.engines.fields import NoFields
from strongroom.engines.framework import Operation, Request, Response, Route
from strongroom.engines.open import OpenContext
from strongroom.errors import InvalidRequest, NotInitialized, Sealed

OpenRoute = Route[OpenContext, Any]


async def seal_status_body(ctx: OpenContext) -> dict[str, Any]:
    """Return Vault's seal-status body for the addressed namespace.

    ``cluster_name``/``cluster_id`` are omitted while empty (sealed), as Vault's ``omitempty`` does.
    """
    status = await ctx.vault.status()
    body: dict[str, Any] = {
        "type": status["type"],
        "initialized": status["initialized"],
        "sealed": status["sealed"],
        "t": status["t"],
        "n": status["n"],
        "progress": status["progress"],
        "nonce": status["nonce"],
        "recovery_seal": False,
        "version": ctx.node.version,
        "build_date": BUILD_DATE,
        "commit_date": BUILD_DATE,
        "migration": False,
        "storage_type": ctx.node.store.kind,
    }
    for key in ("cluster_name", "cluster_id"):
        if status.get(key):
            body[key] = status[key]
    return body


BUILD_DATE = "2026-11-26T00:00:00Z"
"""Reported as Vault's ``build_date`` and OpenBao's ``commit_date``."""


async def read_init(ctx: OpenContext, req: Request, f: NoFields) -> Response:
    config = await ctx.vault.seal_config()
    return Response.raw({"initialized": config is not None})


@dataclass(frozen=True)
class InitFields:
    """Untyped on purpose: :func:`write_init` checks the JSON types strictly, as Vault's Go struct does."""

    secret_shares: Any = 0
    secret_threshold: Any = 0
    pgp_keys: Any = ()
    root_token_pgp_key: Any = ""
    recovery_shares: Any = 0
    recovery_threshold: Any = 0
    recovery_pgp_keys: Any = ()


_INIT_TYPES: dict[str, tuple[type[Any], str]] = {
    "secret_shares": (int, "int"),
    "secret_threshold": (int, "int"),
    "recovery_shares": (int, "int"),
    "recovery_threshold": (int, "int"),
    "pgp_keys": (list, "[]string"),
    "recovery_pgp_keys": (list, "[]string"),
    "root_token_pgp_key": (str, "string"),
}


def _strict(data: Any, types: dict[str, tuple[type[Any], str]], struct: str) -> None:
    """Refuse JSON values Go's decoder would refuse for ``struct`` (nulls are fine: they mean unset).

    Raises:
        InvalidRequest: a value has the wrong JSON type, in Vault's wording.
    """
    for name, (kind, go_type) in types.items():
        value = data.get(name)
        if value is None:
            continue
        ok = isinstance(value, kind) and not isinstance(value, bool)
        if kind is list and ok:
            ok = all(isinstance(v, str) for v in value)
        if not ok:
            raise InvalidRequest(
                f"failed to decode JSON input: json: cannot unmarshal {_json_kind(value)} into Go struct "
                f"field {struct}.{name} of type {go_type}"
            )


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return f"number {value}"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "string"


async def write_init(ctx: OpenContext, req: Request, f: InitFields) -> Response:
    _strict(req.data, _INIT_TYPES, "InitRequest")
    recovery = [
        name
        for name, given in (
            ("recovery_shares", f.recovery_shares),
            ("recovery_threshold", f.recovery_threshold),
            ("recovery_pgp_keys", f.recovery_pgp_keys),
        )
        if given
    ]
    if recovery:
        raise InvalidRequest(f"parameters {','.join(recovery)} not applicable to seal type shamir")
    result = await ctx.vault.initialize(
        InitRequest(
            int(f.secret_shares), int(f.secret_threshold), tuple(f.pgp_keys), str(f.root_token_pgp_key)
        ),
        setup_hook(ctx.node.clock),
    )
    return Response.raw(
        {"keys": result.keys, "keys_base64": result.keys_base64, "root_token": result.root_token}
    )


async def read_seal_status(ctx: OpenContext, req: Request, f: NoFields) -> Response:
    return Response.raw(await seal_status_body(ctx))


@dataclass(frozen=True)
class UnsealFields:
    """Unused by the handler: Vault matches this body's keys case-insensitively, so it reads raw data."""


async def write_unseal(ctx: OpenContext, req: Request, f: UnsealFields) -> Response:
    # Vault decodes this body into a Go struct without tags: keys match case-insensitively, the types
    # are strict, and the checks run in this order: reset, missing key, key decoding, initialisation.
    lowered = {str(k).lower(): v for k, v in req.data.items()}
    _strict(lowered, {"key": (str, "string")}, "UnsealRequest")
    for flag in ("reset", "migrate"):
        if lowered.get(flag) is not None and not isinstance(lowered[flag], bool):
            raise InvalidRequest(
                f"failed to decode JSON input: json: cannot unmarshal {_json_kind(lowered[flag])} into Go "
                f"struct field UnsealRequest.{flag.capitalize()} of type bool"
            )
    key = lowered.get("key") or ""
    if lowered.get("reset"):
        if not ctx.vault.sealed:
            raise InvalidRequest("vault is unsealed")
        await ctx.vault.reset_unseal()  # the node's progress: in the supervisor under --workers N
        return Response.raw(await seal_status_body(ctx))
    if not key:
        raise InvalidRequest("'key' must be specified in request body as JSON, or 'reset' set to true")
    decode_share(key)  # an undecodable key is a 400 even on an unsealed or uninitialised vault
    if lowered.get("migrate"):
        if await ctx.vault.seal_config() is None:
            raise NotInitialized()
        raise InvalidRequest("migrate option only valid when a seal migration is in progress")
    await ctx.vault.submit_unseal(key)
    return Response.raw(await seal_status_body(ctx))


@dataclass(frozen=True)
class HealthFields:
    standbyok: bool = False
    perfstandbyok: bool = False
    activecode: int = 200
    standbycode: int = 429
    drsecondarycode: int = 472
    performancestandbycode: int = 473
    sealedcode: int = 503
    uninitcode: int = 501


_HEALTH_CODES = (
    "activecode",
    "standbycode",
    "drsecondarycode",
    "performancestandbycode",
    "sealedcode",
    "uninitcode",
)


async def read_health(ctx: OpenContext, req: Request, f: HealthFields) -> Response:
    for name in _HEALTH_CODES:
        code = getattr(f, name)
        # Go cannot write a status outside 100..999 (OpenBao drops the connection); we answer 400.
        if not 100 <= code <= 999:
            raise InvalidRequest(f"invalid {name} value {code}: a status code must be in 100..999")
    config = await ctx.vault.seal_config()
    initialized = config is not None
    sealed = ctx.vault.sealed
    # A node without HA is never a standby (hence standbycode, standbyok and the performance-standby and
    # DR codes never apply), but Vault reports a sealed node as standby with an unknown replication mode.
    if not initialized:
        code = f.uninitcode
    elif sealed:
        code = f.sealedcode
    else:
        code = f.activecode
    replication = "unknown" if sealed else "disabled"
    body: dict[str, Any] = {
        "initialized": initialized,
        "sealed": sealed,
        "standby": sealed,
        "performance_standby": False,
        "replication_performance_mode": replication,
        "replication_dr_mode": replication,
        "server_time_utc": int(ctx.node.clock.now()),
        "version": ctx.node.version,
        "enterprise": False,
        "echo_duration_ms": 0,
        "clock_skew_ms": 0,
        "replication_primary_canary_age_ms": 0,
    }
    if initialized and not sealed:
        body.update(await ctx.vault.cluster_info())
    return Response.raw(body, code)


async def read_leader(ctx: OpenContext, req: Request, f: NoFields) -> Response:
    # Without HA, Vault and OpenBao answer only this one key.
    return Response.raw({"ha_enabled": False})


async def seal(ctx: OpenContext, req: Request, f: NoFields) -> None:
    """``sys/seal``: 204 on a sealed node (nothing to do, no token needed, as in Vault); otherwise the
    caller needs ``update`` and ``sudo`` on ``sys/seal``, and when it returns no worker of the node serves.

    Under ``--workers`` the process that takes the call may hold no keys while its node does (it saw another
    worker's rekey commit a moment before the new key reached it, possibly while checking this very token):
    it then asks the supervisor (:meth:`Vault.seal_unless_node_unsealed`) instead of answering for a node
    that would stay unsealed, and takes the node's key to check the token.

    Raises:
        PermissionDenied: the token is missing, invalid or not allowed (the node is unsealed).
        Sealed: the node's keys kept changing while this call looked (retry).
    """
    vault = ctx.vault
    for retry in (False, True):
        if vault.sealed and await vault.seal_unless_node_unsealed():
            return
        try:
            await ctx.require_sudo("sys/seal", "update", req.data)
        except Sealed:
            # The key went obsolete as the token was checked (a rekey committed in another worker or node):
            # this process sealed itself; look at the node again, once.
            if retry:
                raise
            continue
        break
    # As in Vault, sealing ends a rekey or root-token generation in progress (their progress is in storage).
    await subject_of(vault).end_ceremonies()
    # Every worker process of this node, not only the one that took the request (returns once sealed).
    await vault.seal_node()


async def step_down(ctx: OpenContext, req: Request, f: NoFields) -> None:
    # Without HA there is nothing to step down from: Vault returns before looking at the token.
    return None


ROUTES: list[OpenRoute] = [
    Route("init", InitFields, {Operation.READ: read_init, Operation.UPDATE: write_init}),
    Route("seal-status", NoFields, {Operation.READ: read_seal_status}),
    Route("unseal", UnsealFields, {Operation.UPDATE: write_unseal}),
    Route("health", HealthFields, {Operation.READ: read_health}),
    Route("leader", NoFields, {Operation.READ: read_leader}),
    Route("seal", NoFields, {Operation.UPDATE: seal}),
    Route("step-down", NoFields, {Operation.UPDATE: step_down}),
]
