"""Storage URLs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from strongroom.errors import InvalidRequest
from strongroom.storage.memory import MemoryStore
from strongroom.storage.sqlite import SqliteStore
from strongroom.storage.url import BACKENDS, open_store


async def test_memory() -> None:
    store = open_store("memory://")
    assert isinstance(store, MemoryStore)
    await store.close()


async def test_sqlite_relative_and_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    rel = open_store("sqlite:///data/rel.db?synchronous=NORMAL")
    assert isinstance(rel, SqliteStore)
    assert rel.path == Path("data/rel.db")
    assert (tmp_path / "data" / "rel.db").exists()
    await rel.close()
    absolute = tmp_path / "abs" / "x.db"
    store = open_store(f"sqlite:///{absolute}")  # "sqlite:///" + "/tmp/..." = four slashes
    assert isinstance(store, SqliteStore)
    assert store.path == absolute
    assert os.path.isabs(store.path)
    await store.close()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("etcd3://host", "unknown storage URL scheme 'etcd3'"),
        ("nothing", "unknown storage URL scheme ''"),
        ("sqlite://host/x.db", "no host"),
        ("sqlite:///", "needs a file path"),
        ("sqlite:///x.db?durable=1", "unknown sqlite option"),
        ("sqlite:///x.db?synchronous=OFF", "synchronous must be"),
        ("memory://x", "no path"),
        ("postgresql://user:secret@db/strongroom", "must not contain passwords"),
    ],
)
def test_refused(url: str, message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InvalidRequest, match=message):
        open_store(url)


def test_registry_lists_known_schemes() -> None:
    assert {"memory", "sqlite", "postgresql", "redis", "etcd"} <= set(BACKENDS)
    with pytest.raises(InvalidRequest, match="known: etcd://, memory://, postgres://, postgresql://, redis://, sqlite://"):
        open_store("mongodb://localhost")
