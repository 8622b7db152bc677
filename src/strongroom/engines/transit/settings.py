"""Mount-wide transit settings: ``config/keys`` (upserts), ``cache-config`` and the batch size limit.

``config/keys`` stores ``disable_upsert`` as Vault does. ``cache-config`` stores the size of the
unwrapped-key cache (0: unbounded, else at least 10, Vault's rules); the cache itself is per worker and
per namespace key state (see :mod:`strongroom.engines.transit.store`). The batch limit comes from the
mount's ``max_batch_items`` option (``secrets enable -options=max_batch_items=N transit``), by
default :data:`~strongroom.engines.transit.common.MAX_BATCH_ITEMS`, or :data:`MAX_ASYMMETRIC_BATCH_ITEMS`
for batches of signatures, verifications and RSA decryptions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from strongroom.engines.context import Context
from strongroom.engines.framework import Operation, Request, Response, Route
from strongroom.engines.transit.common import MAX_BATCH_ITEMS
from strongroom.errors import InvalidRequest

_KEYS_CONFIG = ("config", "keys")
_CACHE_CONFIG = ("config", "cache")
MIN_CACHE_SIZE = 10
MAX_ASYMMETRIC_BATCH_ITEMS = 1000
"""Default cap on batches of asymmetric-key operations (deliberately lower than Vault's, which has none)."""


@dataclass(frozen=True)
class KeysConfig:
    """Stored ``config/keys``."""

    disable_upsert: bool = False

    @property
    def upsert(self) -> bool:
        """Whether ``encrypt`` may create a missing key."""
        return not self.disable_upsert


def _decode_keys_config(raw: bytes) -> KeysConfig:
    import orjson

    doc = orjson.loads(raw)
    return KeysConfig(disable_upsert=bool(doc.get("disable_upsert", False)))


async def load(ctx: Context) -> KeysConfig:
    """Return the mount's ``config/keys`` (defaults when never written)."""
    found = await ctx.records.get_decoded(_KEYS_CONFIG, _decode_keys_config, ctx.keys.cache)
    return found or KeysConfig()


async def batch_limit(ctx: Context, *, asymmetric: bool = False) -> int:
    """The largest ``batch_input`` this mount accepts.

    ``asymmetric``: every item costs an asymmetric-key operation (signing, signature verification, RSA
    decryption), up to ~7 ms each for RSA-4096, so the default is :data:`MAX_ASYMMETRIC_BATCH_ITEMS`
    instead of :data:`~strongroom.engines.transit.common.MAX_BATCH_ITEMS`: a default-size batch would
    hold a worker for minutes. An explicit ``max_batch_items`` applies to both kinds.

    Raises:
        InvalidRequest: the mount's ``max_batch_items`` option is not a positive integer.
    """
    raw = ctx.mount.options.get("max_batch_items") if ctx.mount.options else None
    if raw in (None, ""):
        return MAX_ASYMMETRIC_BATCH_ITEMS if asymmetric else MAX_BATCH_ITEMS
    try:
        limit = int(str(raw))
    except ValueError:
        raise InvalidRequest("mount option max_batch_items must be a positive integer") from None
    if limit < 1:
        raise InvalidRequest("mount option max_batch_items must be a positive integer")
    return limit


@dataclass(frozen=True)
class KeysConfigFields:
    """``config/keys`` parameters."""

    disable_upsert: bool = False


async def read_keys_config(ctx: Context, req: Request, f: KeysConfigFields) -> Response:
    """Return ``{"disable_upsert": bool}``."""
    return Response(data={"disable_upsert": (await load(ctx)).disable_upsert})


async def write_keys_config(ctx: Context, req: Request, f: KeysConfigFields) -> Response:
    """Store ``disable_upsert`` and return the configuration."""
    if (await load(ctx)).disable_upsert != f.disable_upsert:
        ctx.records.put_json(_KEYS_CONFIG, {"disable_upsert": f.disable_upsert})
    return Response(data={"disable_upsert": f.disable_upsert})


@dataclass(frozen=True)
class CacheFields:
    """``cache-config`` parameters."""

    size: int = 0


async def cache_size(ctx: Context) -> int:
    """The stored cache size (0: unbounded)."""
    doc = await ctx.records.get_json(*_CACHE_CONFIG)
    return int(doc.get("size", 0)) if isinstance(doc, dict) else 0


async def read_cache_config(ctx: Context, req: Request, f: CacheFields) -> Response:
    """Return ``{"size": N}``."""
    return Response(data={"size": await cache_size(ctx)})


async def write_cache_config(ctx: Context, req: Request, f: CacheFields) -> Response:
    """Store the cache size.

    Raises:
        InvalidRequest: a size below 10 other than 0.
    """
    if f.size != 0 and f.size < MIN_CACHE_SIZE:
        raise InvalidRequest(f"size must be 0 or a value greater or equal to {MIN_CACHE_SIZE}")
    ctx.records.put_json(_CACHE_CONFIG, {"size": f.size})
    return Response(data={"size": f.size})


ROUTES: list[Route[Context, Any]] = [
    Route(
        "config/keys",
        KeysConfigFields,
        {Operation.READ: read_keys_config, Operation.UPDATE: write_keys_config},
        summary="Mount-wide key settings (disable_upsert).",
    ),
    Route(
        "cache-config",
        CacheFields,
        {Operation.READ: read_cache_config, Operation.UPDATE: write_cache_config},
        summary="Size of the unwrapped-key cache.",
    ),
]
