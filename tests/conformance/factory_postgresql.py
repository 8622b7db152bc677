"""PostgreSQL under the conformance suite: every store gets its own random schema, dropped when it closes.

The server is ``STRONGROOM_TEST_PG_URL`` (default ``postgresql://postgres@127.0.0.1:5432/test``, trust
auth as on the project's machines). Unreachable: a skip locally, a failure in CI
(``tests.support.require.missing``). Schemas a test left behind (it crashed before closing its store) are
dropped when the test process exits.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import secrets
import socket
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg  # type: ignore[import-untyped]

from strongroom.storage.base import Store, StoreLimits
from strongroom.storage.postgresql import PostgresStore
from strongroom.storage.postgresql_config import PostgresConfig, parse_url
from tests.support.require import missing

NAME = "postgresql"
URL = os.environ.get("STRONGROOM_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")

_left: set[str] = set()


def reachable() -> bool:
    """Whether something accepts TCP connections at the test server's address."""
    parts = urlsplit(URL)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 5432), timeout=2):
            return True
    except OSError:
        return False


def require_server() -> None:
    """Skip (locally) or fail (CI) the current test if the test server is not reachable."""
    if not reachable():
        missing(f"PostgreSQL is not reachable at {URL} (set STRONGROOM_TEST_PG_URL)")


def new_schema() -> str:
    """A fresh random schema name, remembered until :func:`drop_schema` drops it."""
    schema = "sr_test_" + secrets.token_hex(6)
    _left.add(schema)
    return schema


def config(schema: str, **options: str) -> PostgresConfig:
    """Settings for the test server with ``schema`` and extra URL options."""
    return parse_url(urlsplit(URL), {"schema": schema, **options})


async def admin() -> asyncpg.Connection:
    """A plain connection to the test server, for checks and clean-up that bypass strongroom."""
    return await asyncpg.connect(URL, timeout=10)


async def drop_schema(schema: str) -> None:
    """Drop ``schema`` and everything in it."""
    conn = await admin()
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()
    _left.discard(schema)


class SchemaDroppingStore(PostgresStore):
    """A store that drops its own schema when it is closed."""

    async def close(self) -> None:
        await super().close()
        await drop_schema(self.config.schema)


def make_store(tmp: Path, limits: StoreLimits) -> Store:
    """The conformance factory: a store in a new random schema (8 connections)."""
    require_server()
    return SchemaDroppingStore(config(new_schema(), pool_size="8"), limits=limits)


@atexit.register
def _drop_leftovers() -> None:
    if not _left:
        return

    async def drop_all() -> None:
        for schema in list(_left):
            await drop_schema(schema)

    with contextlib.suppress(Exception):
        asyncio.run(drop_all())
