"""Backends under the conformance suite.

A new backend plugs in by adding one factory to ``FACTORIES``: a callable taking a temporary directory
and the :class:`StoreLimits` to use, returning an open store. Factories that need a server (etcd,
PostgreSQL, Redis) should ``pytest.skip`` when it is not configured.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from strongroom.storage.base import Store, StoreLimits
from strongroom.storage.memory import MemoryStore
from strongroom.storage.sqlite import SqliteStore

StoreFactory = Callable[[Path, StoreLimits], Store]


def _memory(tmp: Path, limits: StoreLimits) -> Store:
    return MemoryStore(limits)


def _sqlite(tmp: Path, limits: StoreLimits) -> Store:
    # NORMAL keeps the suite fast; durability under FULL is covered by tests/storage/test_sqlite.py
    # (test_kill_9_loses_no_acknowledged_commit).
    return SqliteStore(tmp / "conformance.db", synchronous="NORMAL", limits=limits)


FACTORIES: dict[str, StoreFactory] = {
    "memory": _memory,
    "sqlite": _sqlite,
}


@pytest.fixture(params=sorted(FACTORIES))
def store_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[..., Store]:
    """Return ``make(limits=StoreLimits())`` building a store of the parametrized backend."""
    factory = FACTORIES[request.param]
    counter = iter(range(1_000_000))

    def make(limits: StoreLimits | None = None) -> Store:
        directory = tmp_path / f"store{next(counter)}"
        directory.mkdir()
        return factory(directory, limits or StoreLimits())

    return make


@pytest.fixture
async def store(store_factory: Callable[..., Store]) -> AsyncIterator[Store]:
    """An open store of the parametrized backend, closed afterwards."""
    s = store_factory()
    yield s
    await s.close()
