"""Shared stores for cluster tests: where N ``strongroom server`` processes keep one state, and how to dump it.

Each :class:`Backend` names a fresh, private piece of a real service (a SQLite file in the test's temporary
directory, a random PostgreSQL schema, a random etcd key prefix, a random Redis key prefix), writes the
``storage`` block of a node's configuration file for it (so the cluster tests also run the HCL blocks of
``cli/config_storage.py`` end to end), dumps everything the service holds for it as raw bytes, and removes
it again. An unreachable service skips locally and fails in CI (``tests.support.require.missing``).
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

from tests.conformance import factory_postgresql, factory_redis
from tests.support.etcd import EtcdCluster, shared_cluster
from tests.support.require import missing

BACKENDS = ("sqlite", "postgresql", "etcd", "redis")


class Backend:
    """One shared store for a cluster of nodes (see the module docstring)."""

    name = ""

    def config(self) -> str:
        """The ``storage`` block of every node's configuration file."""
        raise NotImplementedError

    def url(self) -> str:
        """The same store as a ``--storage`` URL (for tools that open it directly)."""
        raise NotImplementedError

    def dump(self) -> bytes:
        """Everything the service holds for this store, as bytes (raw files or a logical dump)."""
        raise NotImplementedError

    def close(self) -> None:
        """Remove the store from the service (idempotent)."""


class SqliteBackend(Backend):
    """One SQLite file (with its WAL) shared by every node process on this machine."""

    name = "sqlite"

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / "store.db"

    def config(self) -> str:
        return f'storage "sqlite" {{ path = "{self.path}" }}\n'

    def url(self) -> str:
        return f"sqlite:///{self.path}"

    def dump(self) -> bytes:
        return b"".join(
            p.read_bytes() for p in sorted(self.directory.iterdir()) if p.name.startswith("store.db")
        )


class PostgresBackend(Backend):
    """A fresh schema in the test PostgreSQL database (``STRONGROOM_TEST_PG_URL``), dropped on close."""

    name = "postgresql"

    def __init__(self) -> None:
        factory_postgresql.require_server()
        self.schema = factory_postgresql.new_schema()
        self.server = urlsplit(factory_postgresql.URL)
        self.application_name = f"sr-{self.schema}"
        """Names the nodes' connections in ``pg_stat_activity`` (the fault tests terminate exactly those)."""

    def config(self) -> str:
        s = self.server
        return (
            'storage "postgresql" {\n'
            f'  host = "{s.hostname or "127.0.0.1"}"\n  port = {s.port or 5432}\n'
            f'  user = "{s.username or "postgres"}"\n  database = "{s.path.strip("/") or "postgres"}"\n'
            f'  schema = "{self.schema}"\n  pool_size = 8\n  connect_timeout = "5s"\n'
            f'  application_name = "{self.application_name}"\n}}\n'
        )

    def url(self) -> str:
        return f"{factory_postgresql.URL}?schema={self.schema}"

    def dump(self) -> bytes:
        """``pg_dump`` of the schema (bytea as hex text) plus the raw rows."""
        s = self.server
        pg_dump = shutil.which("pg_dump")
        text = b""
        if pg_dump is not None:
            text = subprocess.run(
                [pg_dump, "-h", s.hostname or "127.0.0.1", "-p", str(s.port or 5432), "-U", s.username or "postgres",
                 "-n", self.schema, s.path.strip("/") or "postgres"],
                check=True, capture_output=True, timeout=120,
            ).stdout  # fmt: skip

        async def rows() -> bytes:
            conn = await factory_postgresql.admin()
            try:
                found = await conn.fetch(f'SELECT key, value FROM "{self.schema}".kv')
            finally:
                await conn.close()
            return b"".join(bytes(r["key"]) + bytes(r["value"]) for r in found)

        return text + asyncio.run(rows())

    def close(self) -> None:
        asyncio.run(factory_postgresql.drop_schema(self.schema))


class EtcdBackend(Backend):
    """A random key prefix on an etcd cluster (the session's shared one unless given), deleted on close."""

    name = "etcd"

    def __init__(self, cluster: EtcdCluster | None = None) -> None:
        self.private = cluster is not None
        """A private cluster is deleted as a whole by its fixture: nothing to purge (members may be down)."""
        self.cluster = cluster or shared_cluster()
        self.prefix = f"cluster-test/{secrets.token_hex(8)}/"

    def config(self) -> str:
        address = ",".join(f"http://{e}" for e in self.cluster.endpoints().split(","))
        # Short bounds on a private cluster: the fault tests stop members and want 503s soon, never hangs.
        timeout = "2s" if self.private else "5s"
        return (
            f'storage "etcd" {{\n  address = "{address}"\n  path = "{self.prefix}"\n'
            f'  request_timeout = "{timeout}"\n  attempt_timeout = "1s"\n}}\n'
        )

    def url(self) -> str:
        return self.cluster.url(self.prefix)

    def dump(self) -> bytes:
        """Every key and value under the prefix, plus every member's data files (bbolt and WAL) raw."""
        from strongroom.storage.base import iterate_range
        from strongroom.storage.url import open_store

        async def logical() -> bytes:
            store = open_store(self.url())
            out = []
            try:
                async with store.transaction() as tx:
                    async for k, v in iterate_range(tx, b"", b"\xff" * 8):
                        out.append(k + v)
            finally:
                await store.close()
            return b"".join(out)

        files = b"".join(
            p.read_bytes()
            for p in sorted(self.cluster.root.rglob("*"))
            if p.is_file() and not p.name.endswith(".log")
        )
        return asyncio.run(logical()) + files

    def close(self) -> None:
        if self.private:
            return
        from strongroom.storage.etcd import EtcdStore
        from strongroom.storage.url import open_store

        async def purge() -> None:
            store = open_store(self.url())
            assert isinstance(store, EtcdStore)
            try:
                await store.purge()
            finally:
                await store.close()

        with contextlib.suppress(Exception):  # a test that stopped members may leave no quorum to purge on
            asyncio.run(purge())


class RedisBackend(Backend):
    """A random key prefix on the test Redis (``STRONGROOM_TEST_REDIS_URL``), deleted on close."""

    name = "redis"

    def __init__(self) -> None:
        factory_redis.require_redis()
        self.prefix = f"srcluster:{secrets.token_hex(8)}:"
        self.server = urlsplit(factory_redis.URL)

    def config(self) -> str:
        s = self.server
        return (
            f'storage "redis" {{\n  host = "{s.hostname or "127.0.0.1"}"\n  port = {s.port or 6379}\n'
            f'  db = {s.path.strip("/") or 0}\n  prefix = "{self.prefix}"\n}}\n'
        )

    def url(self) -> str:
        s = self.server
        return f"redis://{s.hostname or '127.0.0.1'}:{s.port or 6379}/{s.path.strip('/') or 0}?prefix={self.prefix}"

    def dump(self) -> bytes:
        """Every Redis key under the prefix with its whole content (strings, hashes, sorted sets)."""

        async def logical() -> bytes:
            client = factory_redis.admin()
            out: list[bytes] = []
            try:
                async for key in client.scan_iter(match=self.prefix + "*", count=1000):
                    kind = (await client.type(key)).decode()
                    out.append(key)
                    if kind == "string":
                        out.append(await client.get(key) or b"")
                    elif kind == "hash":
                        for f, v in (await client.hgetall(key)).items():
                            out += [f, v]
                    elif kind == "zset":
                        out += await client.zrange(key, 0, -1)
                    elif kind == "set":
                        out += list(await client.smembers(key))
                    elif kind == "list":
                        out += await client.lrange(key, 0, -1)
            finally:
                await client.aclose()
            return b"".join(out)

        return asyncio.run(logical())

    def close(self) -> None:
        asyncio.run(factory_redis.delete_prefix(self.prefix))


def make_backend(name: str, directory: Path, etcd: EtcdCluster | None = None) -> Backend:
    """A fresh store of backend ``name`` (``directory`` holds the SQLite file; ``etcd`` a private cluster)."""
    if name == "sqlite":
        return SqliteBackend(directory)
    if name == "postgresql":
        return PostgresBackend()
    if name == "etcd":
        return EtcdBackend(etcd)
    if name == "redis":
        return RedisBackend()
    missing(f"unknown backend {name}")
    raise AssertionError("unreachable")
