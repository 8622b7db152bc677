"""Automatic rotation of transit keys whose ``auto_rotate_period`` has passed (a background job).

What is due: a key with ``auto_rotate_period > 0`` whose latest version was created more than that many
seconds ago (strictly, as Vault's ``rotateIfRequired``), unless it is an imported key that does not allow
rotation (Vault skips those silently). A rotation adds one version exactly as ``keys/:name/rotate`` does
(:func:`~strongroom.engines.transit.keys.rotate_policy`), so the next period counts from the new version.

Why a period never yields two rotations: each rotation is one transaction that first re-reads the
mount table and the key's policy and re-checks that it is still due. Two runners that race on the same
key both read the old policy; the first to commit adds the version, the second's commit conflicts (it
read the policy the first one wrote), and its retry reads the new latest version, which is not due. The
job's lease (:mod:`strongroom.core.background`) normally keeps a second runner away altogether; the
transaction is what makes it correct when it does not (clock skew, a stalled holder), and the lease
check inside that transaction is the fence that stops a runner whose lease passed on.

Which namespaces: every tick works in the root namespace and in the next page of the other namespaces
(:func:`~strongroom.core.namespace_sweep.sweep`: at most
:data:`~strongroom.core.namespace_sweep.NAMESPACES_PER_TICK` per tick, resumed at a cursor stored under the
job's lease), each opened with keys from storage: a tenant's from its stored key copy. A sealed tenant is
skipped (a job never unseals anything); its due keys rotate at the first visit after it is unsealed. With N
namespaces a key may therefore rotate up to ceil(N / 64) ticks after it fell due.

Cost: per namespace visited, the mount table and, per transit mount, the key list and every key's policy
record, in one read-only transaction per mount, plus one write transaction per rotation. Policies decode
from the namespace's record cache, so an unchanged key costs a storage read and a ciphertext comparison
(in a tenant the sweep's keys are fresh each tick, so they decrypt). Mounts with very many keys would want
an index of due times; that is not needed yet.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from strongroom.auth.acl import ACL
from strongroom.core.background import Job, JobRun
from strongroom.core.jobs import LeaseLost
from strongroom.core.mounts import MountEntry, load_table
from strongroom.core.namespace import NamespaceKeys
from strongroom.core.namespace_sweep import label, sweep
from strongroom.core.node import Node
from strongroom.core.vault import Vault
from strongroom.engines.context import Context
from strongroom.engines.transit.keys import rotate_policy
from strongroom.engines.transit.policy import KeyPolicy
from strongroom.engines.transit.store import TransitKeys
from strongroom.errors import Sealed, StrongroomError
from strongroom.storage.base import Transaction, transactional

log = logging.getLogger(__name__)

JOB_NAME = "transit-auto-rotate"
REQUEST_ID = "transit-auto-rotate"

Fence = Callable[[Transaction], Awaitable[None]]
"""Called first in every write transaction (the job lease's check); raises to stop the job."""


def is_due(policy: KeyPolicy, now: float) -> bool:
    """Whether ``policy`` must be rotated at ``now`` (see the module docstring)."""
    if policy.auto_rotate_period <= 0:
        return False
    if policy.imported and not policy.allow_imported_key_rotation:
        return False
    latest = policy.versions.get(policy.latest_version)
    if latest is None:
        return False
    return now > latest.created_unix + policy.auto_rotate_period


def _context(node: Node, tx: Transaction, vault_keys: NamespaceKeys, mount: MountEntry) -> Context:
    # No caller: the job acts for the system, and TransitKeys never consults the ACL.
    return Context(node, vault_keys, tx, mount, None, "", ACL([]), REQUEST_ID)


def _transit_mount(entries: tuple[MountEntry, ...], uuid: str) -> MountEntry | None:
    for entry in entries:
        if entry.uuid == uuid and entry.type == "transit" and entry.kind == "secret":
            return entry
    return None


async def rotate_if_due(
    tx: Transaction, node: Node, vault: Vault, mount_uuid: str, name: str, fence: Fence | None = None
) -> tuple[int, list[Callable[[], None]]] | None:
    """In ``tx``: re-read key ``name`` of the transit mount ``mount_uuid`` and rotate it if still due.

    Returns ``(new latest version, after-commit actions)``, or ``None`` when there is nothing to do
    (mount or key gone, key not due any more).

    Raises:
        Sealed: the namespace is sealed on this node.
        LeaseLost: ``fence`` refused (the job's lease passed on).
        InvalidRequest: the key cannot be rotated (cannot happen for a due key; kept for safety).
        CorruptRecord: damaged storage.
    """
    if fence is not None:
        await fence(tx)
    keys = await vault.current_keys(tx)
    mount = _transit_mount((await load_table(tx, keys)).entries, mount_uuid)
    if mount is None:
        return None
    ctx = _context(node, tx, keys, mount)
    store = TransitKeys(ctx)
    policy = await store.get(name)
    if policy is None or not is_due(policy, node.clock.now()):
        return None
    rotated = await rotate_policy(store, policy)
    return rotated.latest_version, ctx.after_commit


async def due_keys(tx: Transaction, node: Node, vault: Vault, mount_uuid: str) -> list[str]:
    """In ``tx`` (read-only): the names of the keys of one transit mount that are due now."""
    keys = await vault.current_keys(tx)
    mount = _transit_mount((await load_table(tx, keys)).entries, mount_uuid)
    if mount is None:
        return []
    store = TransitKeys(_context(node, tx, keys, mount))
    now = node.clock.now()
    due = []
    for name in await store.names():
        policy = await store.get(name)
        if policy is not None and is_due(policy, now):
            due.append(name)
    return due


async def rotate_due_keys(
    node: Node,
    *,
    vault: Vault | None = None,
    fence: Fence | None = None,
    keep_alive: Callable[[], Awaitable[None]] | None = None,
) -> list[tuple[str, str, int]]:
    """Rotate every due transit key of one namespace: ``vault``'s (default: the root namespace's).

    Returns ``(mount path, key name, new version)`` per rotation this call committed (mount paths are
    relative to the namespace). A key that fails (damaged storage) is logged and skipped, so one bad key does
    not block the others. Does nothing while the namespace is sealed on ``node``.

    Raises:
        LeaseLost: ``fence`` or ``keep_alive`` found the job's lease gone; nothing more is written.
        Sealed: the namespace (or the platform) sealed during the run.
    """
    vault = node.root if vault is None else vault
    done: list[tuple[str, str, int]] = []
    if vault.sealed:
        return done

    async def mounts(tx: Transaction) -> list[MountEntry]:
        table = await load_table(tx, await vault.current_keys(tx))
        return [e for e in table.by_kind("secret") if e.type == "transit"]

    for mount in await transactional(node.store, mounts):
        if keep_alive is not None:
            await keep_alive()

        async def scan(tx: Transaction, uuid: str = mount.uuid) -> list[str]:
            return await due_keys(tx, node, vault, uuid)

        for name in await transactional(node.store, scan):
            version = await _rotate_one(node, vault, mount, name, fence)
            if version is not None:
                done.append((mount.path, name, version))
    return done


async def _rotate_one(
    node: Node, vault: Vault, mount: MountEntry, name: str, fence: Fence | None
) -> int | None:
    async def run(tx: Transaction) -> tuple[int, list[Callable[[], None]]] | None:
        return await rotate_if_due(tx, node, vault, mount.uuid, name, fence)

    try:
        result = await transactional(node.store, run)
    except (Sealed, LeaseLost):
        raise
    except StrongroomError as exc:
        log.warning(
            "auto-rotation of a key on mount %s (%s) failed: %s", mount.path, label(vault.ns_id), exc.message
        )
        return None
    if result is None:
        return None
    version, after_commit = result
    for action in after_commit:
        action()
    await vault.account_encryptions()
    where = label(vault.ns_id)
    log.debug("auto-rotated transit key %s on mount %s (%s) to version %d", name, mount.path, where, version)
    return version


async def _job(run: JobRun) -> None:
    async def work(vault: Vault) -> None:
        await rotate_due_keys(run.node, vault=vault, fence=run.check, keep_alive=run.keep_alive)

    await sweep(run.node, JOB_NAME, work, fence=run.check, keep_alive=run.keep_alive)


JOB = Job(JOB_NAME, _job)
"""The job to register with the node's :class:`~strongroom.core.background.BackgroundRunner`."""
