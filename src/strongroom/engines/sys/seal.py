"""Unauthenticated seal endpoints: ``sys/init``, ``sys/seal-status``, ``sys/unseal``, ``sys/health``,
``sys/leader``.

Their bodies are Vault's raw (non-envelope) shapes; ``sys/health`` chooses its status code from query
parameters exactly as Vault does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from strongroom.core.vault import InitRequest
from strongroom.engines.bootstrap import setup_hook
from strongroom.engines.fields import NoFields
from strongroom.engines.framework import Operation, Request, Response, Route
from strongroom.engines.open import OpenContext
from strongroom.errors import InvalidRequest

OpenRoute = Route[OpenContext, Any]


async def seal_status_body(ctx: OpenContext) -> dict[str, Any]:
    """Return Vault's seal-status body for the addressed namespace."""
    status = await ctx.vault.status()
    return {
        "type": status["type"],
        "initialized": status["initialized"],
        "sealed": status["sealed"],
        "t": status["t"],
        "n": status["n"],
        "progress": status["progress"],
        "nonce": status["nonce"],
        "version": ctx.node.version,
        "build_date": "2026-11-26T00:00:00Z",
        "migration": False,
        "cluster_name": status["cluster_name"],
        "cluster_id": status["cluster_id"],
        "recovery_seal": False,
        "storage_type": ctx.node.store.kind,
        "removed_from_cluster": False,
    }


async def read_init(ctx: OpenContext, req: Request, f: NoFields) -> Response:
    config = await ctx.vault.seal_config()
    return Response.raw({"initialized": config is not None})


@dataclass(frozen=True)
class InitFields:
    secret_shares: int = 0
    secret_threshold: int = 0
    pgp_keys: list[str] = field(default_factory=list)
    root_token_pgp_key: str = ""
    stored_shares: int = 0
    recovery_shares: int = 0
    recovery_threshold: int = 0
    recovery_pgp_keys: list[str] = field(default_factory=list)


async def write_init(ctx: OpenContext, req: Request, f: InitFields) -> Response:
    if f.recovery_shares or f.recovery_threshold or f.recovery_pgp_keys:
        raise InvalidRequest("parameters recovery_shares,recovery_threshold not applicable to seal type shamir")
    if f.stored_shares:
        raise InvalidRequest("stored keys are not supported by the current seal type")
    result = await ctx.vault.initialize(
        InitRequest(f.secret_shares, f.secret_threshold, tuple(f.pgp_keys), f.root_token_pgp_key),
        setup_hook(ctx.node.clock),
    )
    return Response.raw(
        {"keys": result.keys, "keys_base64": result.keys_base64, "root_token": result.root_token}
    )


async def read_seal_status(ctx: OpenContext, req: Request, f: NoFields) -> Response:
    return Response.raw(await seal_status_body(ctx))


@dataclass(frozen=True)
class UnsealFields:
    key: str = ""
    reset: bool = False
    migrate: bool = False


async def write_unseal(ctx: OpenContext, req: Request, f: UnsealFields) -> Response:
    # Vault decodes this body into a Go struct without tags: keys are matched case-insensitively.
    lowered = {str(k).lower(): v for k, v in req.data.items()}
    key = lowered.get("key") or f.key
    reset = f.reset or lowered.get("reset") in (True, "true")
    if key is not None and not isinstance(key, str):
        raise InvalidRequest("'key' must be a valid hex or base64 string")
    if f.migrate:
        raise InvalidRequest("migrate option only valid when a seal migration is in progress")
    await ctx.vault.submit_unseal(key, reset)
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
    haunhealthycode: int = 474
    removedcode: int = 530


async def read_health(ctx: OpenContext, req: Request, f: HealthFields) -> Response:
    for name in ("activecode", "sealedcode", "uninitcode", "standbycode"):
        code = getattr(f, name)
        if code < 1 or code > 999:
            raise InvalidRequest(f"invalid {name} value {code}")
    config = await ctx.vault.seal_config()
    initialized = config is not None
    sealed = ctx.vault.sealed
    if not initialized:
        code = f.uninitcode
    elif sealed:
        code = f.sealedcode
    else:
        code = f.activecode
    info = await ctx.vault.cluster_info() if initialized else {"cluster_name": "", "cluster_id": ""}
    body = {
        "initialized": initialized,
        "sealed": sealed,
        "standby": False,
        "performance_standby": False,
        "replication_performance_mode": "disabled",
        "replication_dr_mode": "disabled",
        "server_time_utc": int(ctx.node.clock.now()),
        "version": ctx.node.version,
        "enterprise": False,
        "echo_duration_ms": 0,
        "clock_skew_ms": 0,
        "replication_primary_canary_age_ms": 0,
        "removed_from_cluster": False,
        **info,
    }
    return Response.raw(body, code)


async def read_leader(ctx: OpenContext, req: Request, f: NoFields) -> Response:
    return Response.raw(
        {
            "ha_enabled": False,
            "is_self": False,
            "active_time": "0001-01-01T00:00:00Z",
            "leader_address": "",
            "leader_cluster_address": "",
            "performance_standby": False,
            "performance_standby_last_remote_wal": 0,
            "raft_committed_index": 0,
            "raft_applied_index": 0,
        }
    )


ROUTES: list[OpenRoute] = [
    Route("init", InitFields, {Operation.READ: read_init, Operation.UPDATE: write_init}),
    Route("seal-status", NoFields, {Operation.READ: read_seal_status}),
    Route("unseal", UnsealFields, {Operation.UPDATE: write_unseal}),
    Route("health", HealthFields, {Operation.READ: read_health}),
    Route("leader", NoFields, {Operation.READ: read_leader}),
]
