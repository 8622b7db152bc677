"""The records a new vault starts with, written inside the ``sys/init`` transaction.

Vault starts with the system backend at ``sys/``, the token auth method at ``auth/token/``, the
``default`` policy and one root token. Dev mode adds KV v2 at ``secret/``. The platform (root namespace)
also gets its IAM signing key, as the offline platform ceremony writes one (``docs/spec/tokens.md``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from strongroom.auth.policy_store import PolicyStore
from strongroom.auth.tokens import TokenEntry, TokenStore
from strongroom.clock import Clock
from strongroom.core.mounts import MountTable, new_entry, store_table
from strongroom.core.namespace import ROOT_NAMESPACE_ID, NamespaceKeys
from strongroom.storage.base import Transaction

DEFAULT_MOUNT_DESCRIPTIONS = {
    "sys/": "system endpoints used for control, policy and debugging",
    "token/": "token based credentials",
}


def initial_table(*, dev_kv: bool) -> MountTable:
    """Return the mount table of a fresh vault."""
    entries = [
        new_entry("sys/", "system", description=DEFAULT_MOUNT_DESCRIPTIONS["sys/"]),
        new_entry("token/", "token", kind="auth", description=DEFAULT_MOUNT_DESCRIPTIONS["token/"]),
    ]
    if dev_kv:
        entries.append(new_entry("secret/", "kv", description="key/value secret storage", options={"version": "2"}))
    return MountTable(tuple(entries))


async def create_root_token(tx: Transaction, keys: NamespaceKeys, clock: Clock, token_id: str | None = None) -> str:
    """Create a root token (no TTL, orphan) and return its text."""
    entry = TokenEntry(
        token_hash=b"",
        accessor="",
        policies=("root",),
        display_name="root",
        creation_time=clock.now(),
        orphan=True,
        path="auth/token/root",
    )
    token, _ = await TokenStore(tx, keys, clock).create(entry, token_id)
    return token


def setup_hook(
    clock: Clock, *, dev_kv: bool = False, root_token_id: str | None = None
) -> Callable[[Transaction, NamespaceKeys], Awaitable[str]]:
    """Return the ``setup`` hook for :meth:`~strongroom.core.vault.Vault.initialize`."""

    async def setup(tx: Transaction, keys: NamespaceKeys) -> str:
        store_table(tx, keys, initial_table(dev_kv=dev_kv))
        await PolicyStore(tx, keys).write_default()
        if keys.ns_id == ROOT_NAMESPACE_ID:
            from strongroom.engines.sys.iam_state import write_signing_key  # biscuit: only the platform pays

            write_signing_key(tx, keys)
        return await create_root_token(tx, keys, clock, root_token_id)

    return setup
