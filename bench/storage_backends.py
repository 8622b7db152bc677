"""Stores and servers for the storage benchmarks: one fresh store per backend, a server over it.

* SQLite: a file in the benchmark's temporary directory.
* PostgreSQL: a fresh schema ``bench_<hex>`` on ``STRONGROOM_TEST_PG_URL`` (default
  ``postgresql://postgres@127.0.0.1:5432/test``), dropped afterwards.
* etcd: a 3-member cluster on loopback started for the run (``tests.support.etcd``; data on ``/dev/shm``
  when it has room, i.e. no disk fsync cost, as in the tests), a fresh prefix on it.
* Redis: a fresh key prefix on ``STRONGROOM_TEST_REDIS_URL`` (default ``redis://127.0.0.1:6379/0``), deleted
  afterwards (that Redis keeps nothing on disk on these machines).

Every server is ``strongroom server`` (one process, no ``--workers``) started by PID and stopped by PID.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.harness import ServerProcess, free_port

PG_URL = os.environ.get("STRONGROOM_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("STRONGROOM_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
TOKEN = "root"
STRONGROOM = str(Path(sys.executable).parent / "strongroom")


@dataclass
class Stores:
    """Fresh stores of each backend and what removes them again (use as a context manager)."""

    workdir: Path
    cleanups: list[Any] = field(default_factory=list)
    etcd: Any = None

    def url(self, backend: str, name: str) -> str:
        """A URL for a new store ``name`` of ``backend``."""
        tag = f"{name}_{secrets.token_hex(4)}"
        if backend == "sqlite":
            directory = self.workdir / tag
            directory.mkdir(parents=True)
            return f"sqlite:///{directory / 'store.db'}"
        if backend == "postgresql":
            schema = f"bench_{tag}".lower()
            self.cleanups.append(lambda: asyncio.run(_drop_schema(schema)))
            return f"{PG_URL}?schema={schema}&pool_size=16"
        if backend == "etcd":
            if self.etcd is None:
                from tests.support.etcd import start_cluster

                self.etcd = start_cluster()
                self.cleanups.append(self.etcd.close)
            return self.etcd.url(f"bench/{tag}/")
        if backend == "redis":
            prefix = f"bench:{tag}:"
            self.cleanups.append(lambda: asyncio.run(_delete_redis_prefix(prefix)))
            sep = "&" if "?" in REDIS_URL else "?"
            return f"{REDIS_URL}{sep}prefix={prefix}"
        raise ValueError(f"unknown backend {backend}")

    def close(self) -> None:
        for cleanup in reversed(self.cleanups):
            with contextlib.suppress(Exception):
                cleanup()

    def __enter__(self) -> Stores:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


async def _drop_schema(schema: str) -> None:
    import asyncpg  # type: ignore[import-untyped]

    conn = await asyncpg.connect(PG_URL, timeout=10)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


async def _delete_redis_prefix(prefix: str) -> None:
    import redis.asyncio

    client = redis.asyncio.Redis.from_url(REDIS_URL)
    try:
        async for key in client.scan_iter(match=prefix + "*", count=1000):
            await client.unlink(key)
    finally:
        await client.aclose()


@dataclass
class Server:
    """A running ``strongroom server`` and how to reach it."""

    process: ServerProcess
    addr: str
    token: str
    unseal_key: str = ""

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        self.process.stop()


def start_server(url: str, workdir: Path, *, dev: bool) -> Server:
    """``strongroom server`` on ``url``: ``dev`` (root token ``root``, KV v2 at secret/) or plain (sealed)."""
    port = free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    argv = [STRONGROOM, "server", "--listen", f"127.0.0.1:{port}", "--storage", url, "--log-level", "warn"]
    if dev:
        argv += ["--dev", "--dev-root-token-id", TOKEN]
    process = ServerProcess(argv, cwd=workdir, log_path=workdir / f"server-{port}.log").start()
    addr = f"http://127.0.0.1:{port}"
    process.wait_ready(addr + "/v1/sys/seal-status", timeout_s=60, ok_statuses=[200])
    return Server(process, addr, TOKEN if dev else "")


def init_store(url: str, workdir: Path) -> tuple[str, str]:
    """Initialise a new store through a server (1 share), mount KV v2 at secret/, stop the server.

    Returns the unseal key and the root token.
    """
    server = start_server(url, workdir, dev=False)
    try:
        with httpx.Client(base_url=server.addr, timeout=60) as client:
            init = client.put("/v1/sys/init", json={"secret_shares": 1, "secret_threshold": 1}).json()
            key, token = init["keys_base64"][0], init["root_token"]
            client.put("/v1/sys/unseal", json={"key": key}).raise_for_status()
            client.post("/v1/sys/mounts/secret", headers={"X-Vault-Token": token},
                        json={"type": "kv", "options": {"version": "2"}}).raise_for_status()  # fmt: skip
    finally:
        server.stop()
    return key, token


def reopen(url: str, workdir: Path, key: str, token: str) -> Server:
    """Start a server on an initialised store and unseal it."""
    server = start_server(url, workdir, dev=False)
    r = httpx.put(server.addr + "/v1/sys/unseal", json={"key": key}, timeout=60)
    r.raise_for_status()
    server.token, server.unseal_key = token, key
    return server


@contextlib.contextmanager
def servers(urls: dict[str, str], workdir: Path) -> Iterator[dict[str, Server]]:
    """Dev-mode servers, one per ``name -> url``; all stopped afterwards."""
    started: dict[str, Server] = {}
    try:
        for name, url in urls.items():
            started[name] = start_server(url, workdir / name, dev=True)
        yield started
    finally:
        for server in started.values():
            server.stop()
