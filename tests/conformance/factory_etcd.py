"""The etcd backend under the conformance suite: the session's shared 3-member cluster, one key prefix per
store, deleted when the store is closed."""

from __future__ import annotations

import secrets
from pathlib import Path

from strongroom.storage.base import StoreLimits
from strongroom.storage.etcd import EtcdStore
from tests.support.etcd import shared_cluster

NAME = "etcd"


class _PurgingStore(EtcdStore):
    """An etcd store that deletes its own key prefix when closed (each test cleans up after itself)."""

    async def close(self) -> None:
        try:
            await self.purge()
        finally:
            await super().close()


def make_store(tmp: Path, limits: StoreLimits) -> EtcdStore:
    cluster = shared_cluster()
    endpoints = [("127.0.0.1", m.client_port) for m in cluster.members]
    prefix = f"conformance/{secrets.token_hex(8)}/".encode()
    return _PurgingStore(endpoints, prefix=prefix, limits=limits)
