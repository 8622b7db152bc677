"""Settings of the PostgreSQL backend, parsed from its storage URL.

``postgresql://[user@][host][:port][/dbname][?option=value&...]`` (``postgres://`` too). User, host, port
and database name come from the URL; anything missing takes libpq's defaults (``PGUSER``, ``PGHOST``,
``PGPORT``, ``PGDATABASE``, the Unix socket, the OS user name), as asyncpg applies them.

Options:

``schema``           PostgreSQL schema holding strongroom's tables (default ``strongroom``; ``[a-z_][a-z0-9_]*``)
``pool_size``        most connections one store opens (default 10)
``connect_timeout``  seconds to connect, and to wait for a free pooled connection (default 5)
``command_timeout``  seconds any one statement may take (default 10)
``sslmode``          ``disable``, ``allow``, ``prefer`` (libpq's default), ``require``, ``verify-ca``,
                     ``verify-full``; with ``sslrootcert``, ``sslcert``, ``sslkey``, ``sslcrl`` (paths)
``passfile``         a pgpass-format file (``host:port:dbname:user:password``), mode 0600 or stricter
``application_name`` shown in ``pg_stat_activity`` (default ``strongroom``)

The password never appears in the URL (``strongroom.storage.url`` refuses it). It is taken from the
environment variable ``STRONGROOM_PG_PASSWORD`` if set, else from ``passfile``, else from libpq's own
sources (``PGPASSWORD``, ``~/.pgpass``).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import SplitResult, urlencode, urlunsplit

from strongroom.errors import InvalidRequest
from strongroom.storage.postgresql_sql import check_schema_name

__all__ = ["PASSWORD_ENV", "PostgresConfig", "parse_url"]

PASSWORD_ENV = "STRONGROOM_PG_PASSWORD"
"""The environment variable holding the password, if any."""

_SSL_OPTIONS = ("sslmode", "sslrootcert", "sslcert", "sslkey", "sslcrl")
_SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
_OPTIONS = frozenset(
    {
        "schema",
        "pool_size",
        "connect_timeout",
        "command_timeout",
        "passfile",
        "application_name",
        *_SSL_OPTIONS,
    }
)


@dataclass(frozen=True)
class PostgresConfig:
    """Everything needed to connect; ``dsn`` never holds a password and ``repr`` never shows one."""

    dsn: str
    schema: str = "strongroom"
    pool_size: int = 10
    connect_timeout: float = 5.0
    command_timeout: float = 10.0
    application_name: str = "strongroom"
    passfile: str | None = None
    password: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        """Check the values.

        Raises:
            InvalidRequest: a bad schema name, pool size or timeout.
        """
        try:
            check_schema_name(self.schema)
        except ValueError as exc:
            raise InvalidRequest(f"postgresql option schema: {exc}") from None
        if not 1 <= self.pool_size <= 1000:
            raise InvalidRequest("postgresql option pool_size must be between 1 and 1000")
        if not (0 < self.connect_timeout <= 3600 and 0 < self.command_timeout <= 3600):
            raise InvalidRequest("postgresql timeouts must be positive numbers of seconds (at most 3600)")


def _number(options: Mapping[str, str], name: str, default: float) -> float:
    raw = options.get(name)
    if raw is None:
        return default
    try:
        return float(raw)
    except ValueError:
        raise InvalidRequest(f"postgresql option {name} must be a number") from None


def _check_passfile(path: str) -> None:
    try:
        st = os.stat(path)
    except OSError:
        raise InvalidRequest("postgresql passfile does not exist or cannot be read") from None
    if not stat.S_ISREG(st.st_mode):
        raise InvalidRequest("postgresql passfile is not a regular file")
    if st.st_mode & 0o077:
        # libpq and asyncpg ignore such a file; say so instead of failing later with a login error.
        raise InvalidRequest("postgresql passfile must not be readable by group or others (chmod 600)")


def parse_url(
    url: SplitResult, options: Mapping[str, str], environ: Mapping[str, str] | None = None
) -> PostgresConfig:
    """Build the settings from a split storage URL and its query options.

    Raises:
        InvalidRequest: a password in the URL, an unknown option, or an invalid value.
    """
    environ = os.environ if environ is None else environ
    try:
        if url.password is not None:
            raise InvalidRequest("storage URLs must not contain passwords; set STRONGROOM_PG_PASSWORD")
        url.port  # noqa: B018 -- raises ValueError for a malformed port
    except ValueError:
        raise InvalidRequest("malformed postgresql URL") from None
    unknown = set(options) - _OPTIONS
    if unknown:
        raise InvalidRequest(f"unknown postgresql option(s): {', '.join(sorted(unknown))}")
    sslmode = options.get("sslmode")
    if sslmode is not None and sslmode not in _SSL_MODES:
        raise InvalidRequest(f"postgresql sslmode must be one of {', '.join(_SSL_MODES)}")
    passfile = options.get("passfile")
    if passfile is not None:
        _check_passfile(passfile)
    pool_size = _number(options, "pool_size", 10)
    if pool_size != int(pool_size):
        raise InvalidRequest("postgresql option pool_size must be a whole number")
    # asyncpg reads the TLS options from the DSN, as libpq does.
    query = urlencode([(k, options[k]) for k in _SSL_OPTIONS if k in options])
    dsn = urlunsplit(("postgresql", url.netloc, url.path, query, ""))
    return PostgresConfig(
        dsn=dsn,
        schema=options.get("schema", "strongroom"),
        pool_size=int(pool_size),
        connect_timeout=_number(options, "connect_timeout", 5.0),
        command_timeout=_number(options, "command_timeout", 10.0),
        application_name=options.get("application_name", "strongroom"),
        passfile=passfile,
        password=environ.get(PASSWORD_ENV) or None,
    )
