"""``sys/iam/config`` inside a tenant: how much the tenant trusts the platform's biscuit tokens.

The platform can mint an Administrator or User biscuit for any tenant (``POST sys/iam/tokens``), so by
default the platform operator's IAM is part of what an unsealed tenant trusts. The tenant decides how far
(``docs/tenants.md``, ``docs/security.md``):

* ``accept_platform_tokens = "all"`` (default): biscuits work as ``docs/spec/tokens.md`` section 4 says;
* ``"admin-ceremony-only"``: biscuits may only run the tenant's ceremonies (``sys/init``, ``sys/unseal``,
  ``sys/seal``, ``sys/seal-status``, rekey, generate-root: all of which need the tenant's key shares
  except seal and seal-status); every other request, data and administration alike, needs a token of
  the tenant's own token store, which the platform never sees.

The setting is a record of the tenant's own barrier, ``("ns", tenant id, "sys", "iam", "config")``, so it
is readable only while the tenant is unsealed. That is exactly when it matters: a sealed tenant serves
ceremonies only, which both values allow. Writing it needs ``sudo`` on ``sys/iam/config`` inside the
tenant: the tenant's root token, a tenant token with ``sudo``, or (while the value is ``all``) the
Administrator biscuit. Once it is ``admin-ceremony-only`` no biscuit can change it back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from strongroom.core.namespace import NamespaceKeys
from strongroom.engines.context import Context
from strongroom.engines.framework import Request, Response
from strongroom.errors import CorruptRecord, InvalidRequest
from strongroom.storage.base import Transaction

CONFIG_KEY = ("iam", "config")
ALL = "all"
CEREMONIES_ONLY = "admin-ceremony-only"
MODES = (ALL, CEREMONIES_ONLY)


@dataclass(frozen=True)
class ConfigFields:
    accept_platform_tokens: Any = None


def _decode(raw: bytes) -> str:
    try:
        mode = orjson.loads(raw).get("accept_platform_tokens")
    except (orjson.JSONDecodeError, AttributeError):
        raise CorruptRecord("malformed IAM configuration") from None
    if mode not in MODES:
        raise CorruptRecord("malformed IAM configuration")
    return str(mode)


async def accepted_mode(tx: Transaction, keys: NamespaceKeys) -> str:
    """The tenant's ``accept_platform_tokens`` (one point read, decoded once per ciphertext)."""
    mode = await keys.records(tx, "sys").get_decoded(CONFIG_KEY, _decode, keys.cache)
    return mode or ALL


async def _tenant_only(ctx: Context, req: Request) -> None:
    if not req.namespace or not (await ctx.node.namespaces.level(ctx.tx, req.namespace)).tenant:
        raise InvalidRequest("sys/iam/config is a tenant's setting: call it inside a tenant's namespace")


async def read_config(ctx: Context, req: Request, f: ConfigFields) -> Response:
    await _tenant_only(ctx, req)
    return Response(data={"accept_platform_tokens": await accepted_mode(ctx.tx, ctx.keys)})


async def write_config(ctx: Context, req: Request, f: ConfigFields) -> Response:
    await _tenant_only(ctx, req)
    mode = f.accept_platform_tokens
    if mode not in MODES:
        raise InvalidRequest(f"accept_platform_tokens must be one of {', '.join(repr(m) for m in MODES)}")
    ctx.keys.records(ctx.tx, "sys").put_json(CONFIG_KEY, {"accept_platform_tokens": mode})
    return Response(data={"accept_platform_tokens": mode})
