"""Backends under the conformance suite.

A new backend plugs in with its own module ``tests/conformance/factory_<name>.py`` defining ``NAME`` and
``make_store(tmp, limits) -> Store`` (a callable taking a temporary directory and the
:class:`StoreLimits` to use, returning an open store). Modules are discovered here, so backends never edit
a shared file. Factories that need a server (etcd, PostgreSQL, Redis) call
``tests.support.require.missing`` when it is not reachable: a skip locally, a failure in CI.
"""

from __future__ import annotations

import importlib
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
for _module_path in sorted(Path(__file__).parent.glob("factory_*.py")):
    _module = importlib.import_module(f"tests.conformance.{_module_path.stem}")
    FACTORIES[_module.NAME] = _module.make_store


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
