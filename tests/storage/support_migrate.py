"""Helpers for the migrate and snapshot tests: open any backend, spy on or break a store's commits.

``open_backend(kind, tmp, limits)`` opens ``memory``, ``sqlite`` or, through the conformance factories
(``tests/conformance/factory_<kind>.py``), ``postgresql``, ``redis`` and ``etcd``: each gets its own
schema, key prefix or cluster prefix, removed when the store is closed. An unreachable service skips
locally and fails in CI (``tests.support.require.missing``).
"""

from __future__ import annotations

import importlib
import uuid
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from types import TracebackType

import httpx

from strongroom.api.app import VaultApp
from strongroom.clock import FakeClock
from strongroom.core.node import Node
from strongroom.errors import StorageUnavailable
from strongroom.storage.base import Store, StoreLimits, Transaction
from strongroom.storage.memory import MemoryStore
from strongroom.storage.sqlite import SqliteStore
from tests.support.vault import InProcessVault, start_vault


def open_backend(kind: str, tmp: Path, limits: StoreLimits | None = None) -> Store:
    """A new, empty store of backend ``kind`` (closing it removes what it wrote on shared services)."""
    limits = limits or StoreLimits()
    if kind == "memory":
        return MemoryStore(limits)
    directory = tmp / f"{kind}-{uuid.uuid4().hex[:8]}"
    directory.mkdir()
    if kind == "sqlite":
        return SqliteStore(directory / "store.db", synchronous="NORMAL", limits=limits)
    factory = importlib.import_module(f"tests.conformance.factory_{kind}")
    store: Store = factory.make_store(directory, limits)
    return store


async def dump(store: Store) -> dict[bytes, bytes]:
    """Every pair of the store (keys up to its key limit)."""
    async with store.transaction() as tx:
        return dict(await tx.range(b"", b"\xff" * (store.limits.max_key_bytes + 1)))


class _SpyTransaction:
    """Counts what one transaction writes, like ``BufferedTransaction`` does for the limits."""

    def __init__(self, spy: SpyStore, inner: AbstractAsyncContextManager[Transaction]) -> None:
        self._spy = spy
        self._inner = inner
        self._tx: Transaction | None = None
        self.ops = 0
        self.bytes = 0

    async def __aenter__(self) -> _SpyTransaction:
        self._tx = await self._inner.__aenter__()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        spy = self._spy
        if (
            exc_type is None
            and self.ops
            and spy.fail_after is not None
            and len(spy.commits) >= spy.fail_after
        ):
            # Discard the transaction (an exception leaving the block), then report the store as gone.
            await self._inner.__aexit__(RuntimeError, RuntimeError("dropped"), None)
            raise StorageUnavailable("injected: the store went away")
        await self._inner.__aexit__(exc_type, exc, tb)
        if exc_type is None and self.ops:
            spy.commits.append((self.ops, self.bytes))

    @property
    def tx(self) -> Transaction:
        assert self._tx is not None
        return self._tx

    async def get(self, key: bytes) -> bytes | None:
        return await self.tx.get(key)

    async def range(
        self, begin: bytes, end: bytes, *, limit: int = 0, reverse: bool = False
    ) -> list[tuple[bytes, bytes]]:
        return await self.tx.range(begin, end, limit=limit, reverse=reverse)

    def set(self, key: bytes, value: bytes) -> None:
        self.tx.set(key, value)
        self.ops += 1
        self.bytes += len(key) + len(value)
        if self._spy.drop_key is not None and key == self._spy.drop_key:
            self.tx.clear(key)  # a "lossy" store: the write is acknowledged but not kept

    def clear(self, key: bytes) -> None:
        self.tx.clear(key)
        self.ops += 1
        self.bytes += len(key)

    def clear_range(self, begin: bytes, end: bytes) -> None:
        self.tx.clear_range(begin, end)
        self.ops += 1
        self.bytes += len(begin) + len(end)


class SpyStore:
    """Wraps a store: records ``(ops, bytes)`` of every committed write transaction; can fail commits
    after ``fail_after`` of them (``StorageUnavailable``, nothing of the failing one committed), or
    silently lose the write of ``drop_key``."""

    def __init__(self, inner: Store, *, fail_after: int | None = None, drop_key: bytes | None = None) -> None:
        self.inner = inner
        self.fail_after = fail_after
        self.drop_key = drop_key
        self.commits: list[tuple[int, int]] = []

    @property
    def limits(self) -> StoreLimits:
        return self.inner.limits

    @property
    def kind(self) -> str:
        return self.inner.kind

    def transaction(self) -> _SpyTransaction:
        return _SpyTransaction(self, self.inner.transaction())

    async def close(self) -> None:
        await self.inner.close()


async def vault_with_secrets(
    store: Store, count: int = 12
) -> tuple[InProcessVault, dict[str, dict[str, str]]]:
    """An initialised, unsealed in-process vault on ``store`` with KV v2 at ``secret/`` holding ``count``
    secrets; returns it and the secrets (path -> data)."""
    vault = await start_vault(store)
    await vault.ok("POST", "sys/mounts/secret", json={"type": "kv", "options": {"version": "2"}})
    written: dict[str, dict[str, str]] = {}
    for i in range(count):
        data = {"value": f"secret-{i}", "blob": "x" * (i * 37)}
        await vault.ok("POST", f"secret/data/app/{i}", json={"data": data})
        written[f"app/{i}"] = data
    return vault, written


async def read_back(store: Store, keys: list[str], token: str, expected: dict[str, dict[str, str]]) -> None:
    """Start a node on ``store``, unseal it with ``keys`` and check every secret of ``expected`` reads back
    (and that nothing else is listed under ``secret/app/``)."""
    node = Node(store, clock=FakeClock())
    app = VaultApp(node)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sr.test") as client:
        sealed = await client.get("/v1/sys/seal-status")
        assert sealed.json()["sealed"] is True
        for key in keys:
            r = await client.put("/v1/sys/unseal", json={"key": key})
            assert r.status_code == 200, r.text
        assert r.json()["sealed"] is False
        headers = {"X-Vault-Token": token}
        for path, data in expected.items():
            r = await client.get(f"/v1/secret/data/{path}", headers=headers)
            assert r.status_code == 200, (path, r.text)
            assert r.json()["data"]["data"] == data
        listed = await client.request("LIST", "/v1/secret/metadata/app/", headers=headers)
        assert sorted(listed.json()["data"]["keys"]) == sorted(p.split("/", 1)[1] for p in expected)
    node.root.seal()


async def assert_not_servable(store: Store, keys: list[str]) -> None:
    """A node on ``store`` can neither initialise it anew nor be unsealed with ``keys``."""
    node = Node(store, clock=FakeClock())
    app = VaultApp(node)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sr.test") as client:
        r = await client.put("/v1/sys/init", json={"secret_shares": 1, "secret_threshold": 1})
        assert r.status_code >= 400, r.text
        for key in keys:
            r = await client.put("/v1/sys/unseal", json={"key": key})
        assert r.status_code >= 400, r.text
        assert (await client.get("/v1/sys/seal-status")).json()["sealed"] is True
    assert node.root.sealed
