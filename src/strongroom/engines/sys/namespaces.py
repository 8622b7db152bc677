"""``sys/namespaces``: list, create, read, patch and delete namespaces, and OpenBao's API lock.

Wire-compatible with OpenBao 2.7 (``bao namespace create|list|lookup|patch|delete|lock|unlock``); the
differences are listed in ``docs/spec/namespaces.md`` section 8. Every call acts on the children of the
namespace the request was resolved to (``X-Vault-Namespace`` and path prefix), in the request's one
transaction: the child's table entry, its registry record and, for a tenant created with a seal, its seal
configuration, keyring, mounts, default policy and root token all commit together or not at all.
The seal endpoints of a child (``.../seal``, ``.../unseal``, ``.../seal-status``, ``.../delete-sealed``)
are in :mod:`strongroom.engines.sys.namespaces_seal`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from strongroom.auth.hcl_reader import HclError, Obj, read_document
from strongroom.auth.policy_store import PolicyStore
from strongroom.core.initialization import InitRequest, prepare_init
from strongroom.core.mounts import load_table, store_table
from strongroom.core.namespace import NamespaceKeys
from strongroom.core.namespace_purge import schedule_purge
from strongroom.core.namespace_tree import Level
from strongroom.core.namespaces import (
    MAX_DEPTH,
    NamespaceEntry,
    NamespaceTable,
    canonical,
    forget,
    parse_name,
    register,
    split_path,
    unlock_hash,
    unlock_matches,
)
from strongroom.crypto.random import random_base62
from strongroom.engines.bootstrap import initial_table
from strongroom.engines.context import Context
from strongroom.engines.fields import NoFields
from strongroom.engines.framework import Operation, Request, Response, Route
from strongroom.errors import InvalidRequest, Sealed
from strongroom.storage.base import Transaction

SysRoute = Route[Context, Any]
SEAL_CONFIG_PREFIX = "invalid seal config: "
UNLOCK_KEY_CHARS = 24


# -- helpers shared with namespaces_seal ----------------------------------------------------------------


async def this_level(ctx: Context, req: Request) -> Level:
    """The level of the namespace the request was resolved to."""
    return await ctx.node.namespaces.level(ctx.tx, req.namespace)


async def child(ctx: Context, name: str) -> tuple[str, NamespaceEntry | None]:
    """Check ``name`` and return it with the child entry of the request's namespace (or ``None``)."""
    name = parse_name(name)
    return name, await NamespaceTable(ctx.tx, ctx.keys).get(name)


def _metadata(data: Any) -> dict[str, str]:
    if data is None:
        return {}
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise InvalidRequest("custom_metadata values must be strings")
    return {str(k): v for k, v in data.items()}


def parse_seal(value: Any) -> tuple[int, int]:
    """Parse the ``seal`` parameter (HCL or JSON text with one ``seal "shamir"`` stanza): shares, threshold.

    Missing ``shares``/``threshold`` are 0 (the caller decides whether that is allowed).

    Raises:
        InvalidRequest: not text, unparsable, not exactly one stanza, not shamir, non-integer parameters.
    """
    if isinstance(value, dict | list):
        raise InvalidRequest("seal config must be a HCL or JSON string")
    text = value if isinstance(value, str) else str(value).lower() if isinstance(value, bool) else str(value)
    try:
        items = read_document(text)
    except HclError as exc:
        raise InvalidRequest(f"unable to parse seal config: {exc}") from None
    stanzas = [item for item in items if item.keys and item.keys[0] == "seal"]
    if len(stanzas) != 1:
        raise InvalidRequest("seal config must contain exactly one seal stanza")
    stanza = stanzas[0]
    if stanza.keys[1:2] != ("shamir",) or not isinstance(stanza.value, Obj):
        raise InvalidRequest("namespaces currently only support shamir seals")
    params = {item.keys[0]: item.value for item in stanza.value.items if item.keys}
    return _integer(params.get("shares"), "shares"), _integer(params.get("threshold"), "threshold")


def _integer(value: Any, name: str) -> int:
    if value is None:
        return 0
    if isinstance(value, bool):
        raise InvalidRequest(f"value of {name} parameter must be integer")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit() and len(value) < 12:
        return int(value)
    raise InvalidRequest(f"value of {name} parameter must be integer")


@dataclass(frozen=True)
class WriteFields:
    """The fields of ``sys/namespaces/NAME`` (read and delete use ``name`` only)."""

    name: str
    custom_metadata: Any = None
    seal: Any = None
    pgp_keys: list[str] = field(default_factory=list)
    initialize: bool = True
    """strongroom: ``false`` creates a tenant whose shares and root token ``sys/init`` inside it makes."""


# -- list, read ------------------------------------------------------------------------------------------


async def list_namespaces(ctx: Context, req: Request, f: NoFields) -> Response | None:
    entries = await NamespaceTable(ctx.tx, ctx.keys).entries()
    if not entries:
        return None
    keys = [e.name + "/" for e in entries]
    return Response(
        data={"keys": keys, "key_info": {k: e.describe() for k, e in zip(keys, entries, strict=True)}}
    )


async def read_namespace(ctx: Context, req: Request, f: WriteFields) -> Response | None:
    _, entry = await child(ctx, f.name)
    return None if entry is None else Response(data=entry.describe())


# -- create / update -------------------------------------------------------------------------------------


async def write_namespace(ctx: Context, req: Request, f: WriteFields) -> Response:
    name, existing = await child(ctx, f.name)
    metadata = _metadata(f.custom_metadata)
    sealable = req.data.get("seal") is not None
    shares = threshold = 0
    if sealable:
        shares, threshold = parse_seal(f.seal)
    if existing is not None:
        if sealable:
            raise InvalidRequest("cannot modify existing namespace seal config")
        updated = dataclasses.replace(existing, custom_metadata=metadata)
        await NamespaceTable(ctx.tx, ctx.keys).put(name, updated)
        return Response(data=updated.describe())
    level = await this_level(ctx, req)
    if level.path.count("/") >= MAX_DEPTH:  # checked before a seal's shares are made
        raise InvalidRequest(f"namespaces cannot be nested more than {MAX_DEPTH} deep")
    prepared = None
    if sealable and f.initialize:
        request = InitRequest(shares, threshold, tuple(f.pgp_keys))
        prepared = prepare_init(request, error_prefix=SEAL_CONFIG_PREFIX)
    elif sealable and (shares or threshold or f.pgp_keys):
        raise InvalidRequest("shares, threshold and pgp_keys are chosen by sys/init when initialize is false")
    mounts = await load_table(ctx.tx, ctx.keys)
    for mount in mounts.by_kind("secret"):
        if mount.path.split("/", 1)[0] == name:
            raise InvalidRequest(f"new namespace conflicts with existing mount: {level.path}{mount.path}")
    tree = ctx.node.namespaces
    entry = NamespaceEntry.new(
        level.path + name + "/", sealable=sealable, custom_metadata=metadata, now=ctx.clock.now()
    )
    await NamespaceTable(ctx.tx, ctx.keys).put(name, entry)
    platform = await ctx.node.root.current_keys(ctx.tx)
    register(ctx.tx, platform, entry.ns_id, level.keys.ns_id if level.keys else b"", sealable=sealable)
    data = entry.describe()
    if not sealable:
        await _setup(ctx.tx, tree.derived(ctx.keys, entry, level.owner))
    elif prepared is not None:
        tenant = tree.tenant(entry)
        await _setup(
            ctx.tx, await tenant.write_new_seal(ctx.tx, prepared.root_key, prepared.config, prepared.cluster)
        )
        # No root token, as OpenBao: the shareholders make one with generate-root inside the tenant.
        data.update(key_shares=prepared.keys_hex, key_threshold=threshold)
    return Response(data=data)


async def _setup(tx: Transaction, keys: NamespaceKeys) -> None:
    """A new namespace's first records: ``sys/`` and ``auth/token/`` mounts and the ``default`` policy."""
    store_table(tx, keys, initial_table(dev_kv=False))
    await PolicyStore(tx, keys).write_default()


# -- patch -----------------------------------------------------------------------------------------------


async def patch_namespace(ctx: Context, req: Request, f: WriteFields) -> Response:
    name, entry = await child(ctx, f.name)
    if entry is None:
        raise InvalidRequest("namespace not found")
    if "custom_metadata" not in req.data:
        return Response(data=entry.describe())
    patch = req.data["custom_metadata"]
    if patch is None:
        metadata: dict[str, str] = {}
    elif not isinstance(patch, dict):
        raise InvalidRequest(f"metadata patch can only have string or null values, got {_go_type(patch)}")
    else:
        for value in patch.values():
            if value is not None and not isinstance(value, str):
                raise InvalidRequest(
                    f"metadata patch can only have string or null values, got {_go_type(value)}"
                )
        # RFC 7396 on a flat string map: null removes a key, a string sets it.
        metadata = dict(entry.custom_metadata)
        for key, value in patch.items():
            if value is None:
                metadata.pop(str(key), None)
            else:
                metadata[str(key)] = value
    updated = dataclasses.replace(entry, custom_metadata=metadata)
    await NamespaceTable(ctx.tx, ctx.keys).put(name, updated)
    return Response(data=updated.describe())


def _go_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "json.Number"
    if isinstance(value, list):
        return "[]interface {}"
    if isinstance(value, dict):
        return "map[string]interface {}"
    return type(value).__name__


# -- delete ----------------------------------------------------------------------------------------------

NOT_FOUND_WARNING = "requested namespace does not exist"


async def delete_namespace(ctx: Context, req: Request, f: WriteFields) -> Response:
    name, entry = await child(ctx, f.name)
    if entry is None:
        return Response(warnings=[NOT_FOUND_WARNING])
    tree = ctx.node.namespaces
    if entry.sealable:
        tenant = tree.tenant(entry)
        status = await tenant.status_in(ctx.tx)
        if not status["sealed"]:
            raise InvalidRequest("cannot delete an unsealed namespace: seal it, then use delete-sealed")
        if status["initialized"]:
            raise Sealed("namespace is sealed")
    else:
        level = await this_level(ctx, req)
        keys = tree.derived(ctx.keys, entry, level.owner)
        if not await NamespaceTable(ctx.tx, keys).empty():
            raise InvalidRequest("unable to delete namespace containing child namespaces")
    await remove(ctx, name, [entry.ns_id])
    return Response(data={"status": "in-progress"})


async def remove(ctx: Context, name: str, ids: list[bytes]) -> None:
    """Unlink child ``name`` and forget namespaces ``ids`` (it and its descendants) in the request's tx;
    after the commit, purge their storage and drop this node's state of them."""
    await NamespaceTable(ctx.tx, ctx.keys).remove(name)
    forget(ctx.tx, await ctx.node.root.current_keys(ctx.tx), ids, ctx.clock.now())
    tree, node = ctx.node.namespaces, ctx.node

    def after() -> None:
        for ns_id in ids:
            tree.forget(ns_id)
        schedule_purge(node)

    ctx.after_commit.append(after)


# -- API lock --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LockFields:
    path: str = ""
    unlock_key: str = ""


async def _lock_target(ctx: Context, req: Request, path: str) -> tuple[Level, Level, list[Level]]:
    """Return (parent level, target level, chain) of the namespace at ``path`` below the request's one."""
    relative = canonical(path)
    try:
        split_path(relative)
    except InvalidRequest:
        raise InvalidRequest(NOT_FOUND_WARNING) from None
    res = await ctx.node.namespaces.resolve(ctx.tx, req.namespace + relative, "", follow=False)
    if res.unknown:
        raise InvalidRequest(NOT_FOUND_WARNING)
    if len(res.levels) == 1:
        raise InvalidRequest("root namespace cannot be locked/unlocked")
    return res.levels[-2], res.levels[-1], res.levels


async def lock(ctx: Context, req: Request, f: LockFields) -> Response:
    parent, target, chain = await _lock_target(ctx, req, f.path)
    for level in chain[1:]:
        assert level.entry is not None
        if level.entry.locked and level is target:
            raise InvalidRequest(f'cannot lock namespace "{target.path}": is already locked')
        if level.entry.locked:
            raise InvalidRequest(
                f'cannot lock namespace "{target.path}": ancestor namespace "{level.path}" is already locked'
            )
    assert parent.keys is not None and target.entry is not None
    key = random_base62(UNLOCK_KEY_CHARS)
    locked = dataclasses.replace(target.entry, lock=unlock_hash(parent.keys, key))
    await NamespaceTable(ctx.tx, parent.keys).put(locked.name, locked)
    return Response(data={"unlock_key": key})


async def unlock(ctx: Context, req: Request, f: LockFields) -> Response | None:
    sudo = ctx.acl.is_root or "sudo" in ctx.acl.capabilities("sys/" + req.path)
    if not f.unlock_key and not sudo:
        raise InvalidRequest("provided empty key")
    parent, target, chain = await _lock_target(ctx, req, f.path)
    assert parent.keys is not None and target.entry is not None
    if not target.entry.locked:
        raise InvalidRequest(f'namespace "{target.path}" is not locked')
    locking = next(level for level in chain[1:] if level.entry is not None and level.entry.locked)
    if locking is not target:
        raise InvalidRequest(f'cannot unlock "{target.path}" with namespace "{locking.path}" being locked')
    if f.unlock_key and not unlock_matches(parent.keys, target.entry, f.unlock_key):
        raise InvalidRequest("incorrect unlock key")
    unlocked = dataclasses.replace(target.entry, lock="")
    await NamespaceTable(ctx.tx, parent.keys).put(unlocked.name, unlocked)
    if not f.unlock_key:
        return Response(warnings=["Namespace unlocked using sudo capabilities"])
    return None


ROUTES: list[SysRoute] = [
    Route("namespaces", NoFields, {Operation.LIST: list_namespaces}),
    Route(
        "namespaces/{name:*}",
        WriteFields,
        {
            Operation.READ: read_namespace,
            Operation.UPDATE: write_namespace,
            Operation.PATCH: patch_namespace,
            Operation.DELETE: delete_namespace,
        },
    ),
    Route("namespaces/api-lock/lock", LockFields, {Operation.UPDATE: lock}),
    Route("namespaces/api-lock/lock/{path:*}", LockFields, {Operation.UPDATE: lock}),
    Route("namespaces/api-lock/unlock", LockFields, {Operation.UPDATE: unlock}),
    Route("namespaces/api-lock/unlock/{path:*}", LockFields, {Operation.UPDATE: unlock}),
]
