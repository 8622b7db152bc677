"""``storage "postgresql"``, ``storage "etcd"`` and ``storage "redis"`` blocks: options to storage URLs.

Each function takes a block's options (as parsed from HCL or JSON) and the file name (for messages) and
returns the storage URL the backend accepts (docs/storage/*.md), or raises
:class:`~strongroom.errors.InvalidRequest` naming the file, the block and the setting. Unknown keys are
errors, so a typo or a Vault setting strongroom does not honour is not silently dropped.

Credentials never go into the URL. A backend reads its password where it always does (an environment
variable of its own, or a file named by an option), so a block can only point there:

* ``password_env`` must name the backend's variable (``STRONGROOM_PG_PASSWORD``,
  ``STRONGROOM_ETCD_PASSWORD``, ``STRONGROOM_REDIS_PASSWORD``), and it must be set when the file is
  loaded: a server that would start without its password fails at once, with a clear message;
* ``password_file`` (a file holding just the password) exists for etcd only; PostgreSQL takes a pgpass
  file (``passfile``) instead; Redis only the variable.

A literal ``password`` is refused before these functions run (:func:`strongroom.cli.config._storage`).
The backends are not imported here (``strongroom server --help`` must not load database drivers); a test
checks that the variable names agree with theirs.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote, urlencode

from strongroom.errors import InvalidRequest

__all__ = ["PASSWORD_ENVS", "etcd_url", "postgresql_url", "redis_url"]

PASSWORD_ENVS = {
    "postgresql": "STRONGROOM_PG_PASSWORD",
    "etcd": "STRONGROOM_ETCD_PASSWORD",
    "redis": "STRONGROOM_REDIS_PASSWORD",
}
"""The environment variable each backend reads its password from (``password_env`` must name it)."""

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m)?")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, None: 1.0}


def _text(options: Mapping[str, Any], key: str, what: str) -> str | None:
    value = options.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise InvalidRequest(f"{what} {key} must be a string, not {type(value).__name__}")
    text = str(value).strip()
    if not text:
        raise InvalidRequest(f"{what} {key} must not be empty")
    return text


def _seconds(options: Mapping[str, Any], key: str, what: str) -> str | None:
    """A number of seconds, or a duration such as ``"500ms"``, ``"5s"``, ``"1m"`` (Vault writes those)."""
    text = _text(options, key, what)
    if text is None:
        return None
    match = _DURATION.fullmatch(text)
    if match is None:
        raise InvalidRequest(f'{what} {key} must be seconds or a duration such as "5s", not {text!r}')
    seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if seconds <= 0:
        raise InvalidRequest(f"{what} {key} must be positive")
    return f"{seconds:g}"


def _whole(options: Mapping[str, Any], key: str, what: str) -> str | None:
    text = _text(options, key, what)
    if text is not None and not text.isdigit():
        raise InvalidRequest(f"{what} {key} must be a whole number, not {text!r}")
    return text


def _check_keys(options: Mapping[str, Any], allowed: set[str], what: str) -> None:
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise InvalidRequest(
            f"{what}: unknown setting(s) {', '.join(unknown)} (known: {', '.join(sorted(allowed))})"
        )


def _password_env(options: Mapping[str, Any], backend: str, what: str, environ: Mapping[str, str]) -> None:
    """Check ``password_env``: it must name the backend's own variable, and that must be set."""
    var = _text(options, "password_env", what)
    if var is None:
        return
    wanted = PASSWORD_ENVS[backend]
    if var != wanted:
        raise InvalidRequest(
            f"{what} password_env: the {backend} backend reads its password from {wanted}; "
            f'write password_env = "{wanted}" and export the password there'
        )
    if not environ.get(var):
        raise InvalidRequest(f"{what} password_env: environment variable {var} is not set")


def _host(host: str) -> str:
    # An IPv6 address goes in brackets in a URL's authority.
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def _query(pairs: list[tuple[str, str | None]]) -> str:
    given = [(k, v) for k, v in pairs if v is not None]
    return "?" + urlencode(given, safe="/:") if given else ""


# --- PostgreSQL ------------------------------------------------------------------------------------------

_PG_KEYS = {
    "host", "port", "user", "username", "database", "dbname", "schema", "pool_size", "connect_timeout",
    "command_timeout", "sslmode", "sslrootcert", "sslcert", "sslkey", "sslcrl", "passfile",
    "application_name", "password_env", "password_file",
}  # fmt: skip


def postgresql_url(options: Mapping[str, Any], where: str, environ: Mapping[str, str] | None = None) -> str:
    """``storage "postgresql" {...}`` -> ``postgresql://user@host:port/database?schema=...&...``.

    Raises:
        InvalidRequest: an unknown or malformed setting, ``password_file`` (use ``passfile`` or
            ``password_env``), or a ``password_env`` that is not the backend's variable or is not set.
    """
    what = f'{where}: storage "postgresql"'
    _check_keys(options, _PG_KEYS, what)
    if "password_file" in options:
        raise InvalidRequest(
            f'{what} password_file: the PostgreSQL backend takes a pgpass file (passfile = "...", '
            'lines host:port:dbname:user:password, mode 0600) or password_env = "STRONGROOM_PG_PASSWORD"'
        )
    _password_env(options, "postgresql", what, os.environ if environ is None else environ)
    for a, b in (("user", "username"), ("database", "dbname")):
        if a in options and b in options:
            raise InvalidRequest(f"{what}: give {a} or {b}, not both")
    user = _text(options, "user", what) or _text(options, "username", what)
    host = _text(options, "host", what)
    port = _whole(options, "port", what)
    database = _text(options, "database", what) or _text(options, "dbname", what)
    authority = (quote(user, safe="") + "@" if user else "") + (_host(host) if host else "")
    if port is not None:
        authority += f":{port}"
    path = "/" + quote(database, safe="") if database else ""
    query = _query(
        [
            ("schema", _text(options, "schema", what)),
            ("pool_size", _whole(options, "pool_size", what)),
            ("connect_timeout", _seconds(options, "connect_timeout", what)),
            ("command_timeout", _seconds(options, "command_timeout", what)),
            *(
                (k, _text(options, k, what))
                for k in ("sslmode", "sslrootcert", "sslcert", "sslkey", "sslcrl")
            ),
            ("passfile", _text(options, "passfile", what)),
            ("application_name", _text(options, "application_name", what)),
        ]
    )
    return f"postgresql://{authority}{path}{query}"


# --- etcd --------------------------------------------------------------------------------------------------

_ETCD_KEYS = {
    "address", "path", "prefix", "username", "etcd_api", "request_timeout", "timeout", "attempt_timeout",
    "max_connections", "max_request_bytes", "max_txn_ops", "tls_ca_file", "tls_cert_file", "tls_key_file",
    "password_file", "password_env",
}  # fmt: skip


def _etcd_endpoints(address: str, what: str) -> tuple[list[str], bool]:
    """Vault's ``address``: comma-separated ``http(s)://host:port`` (a scheme is optional here)."""
    hosts: list[str] = []
    schemes: set[str] = set()
    for part in address.split(","):
        part = part.strip()
        scheme, sep, rest = part.partition("://")
        if not sep:
            scheme, rest = "", part
        if scheme not in ("", "http", "https"):
            raise InvalidRequest(f"{what} address: {part!r} is not http(s)://host:port")
        rest = rest.rstrip("/")
        if not rest or "/" in rest or "@" in rest:
            raise InvalidRequest(f"{what} address: {part!r} is not http(s)://host:port")
        schemes.add(scheme or "http")
        hosts.append(rest)
    if len(schemes) > 1:
        raise InvalidRequest(f"{what} address: use http:// or https:// for every member, not both")
    return hosts, schemes == {"https"}


def etcd_url(options: Mapping[str, Any], where: str, environ: Mapping[str, str] | None = None) -> str:
    """``storage "etcd" {...}`` (Vault's keys where they exist) -> ``etcd://[user@]h:p,h:p?prefix=...``.

    Raises:
        InvalidRequest: no ``address``, an unknown or malformed setting, ``etcd_api`` other than v3, a
            password without a user, or a ``password_env`` that is not the backend's variable or not set.
    """
    what = f'{where}: storage "etcd"'
    _check_keys(options, _ETCD_KEYS, what)
    api = _text(options, "etcd_api", what)
    if api is not None and api != "v3":
        raise InvalidRequest(f"{what} etcd_api: strongroom speaks etcd v3 only, not {api!r}")
    address = _text(options, "address", what)
    if address is None:
        raise InvalidRequest(
            f'{what} needs an address, e.g. address = "http://10.0.0.1:2379,http://10.0.0.2:2379"'
        )
    hosts, tls = _etcd_endpoints(address, what)
    _password_env(options, "etcd", what, os.environ if environ is None else environ)
    user = _text(options, "username", what)
    if user is None and ("password_file" in options or "password_env" in options):
        raise InvalidRequest(f"{what}: a password needs a username")
    for a, b in (("path", "prefix"), ("request_timeout", "timeout")):
        if a in options and b in options:
            raise InvalidRequest(f"{what}: give {a} or {b}, not both")
    prefix = _text(options, "path", what) or _text(options, "prefix", what)
    if prefix is not None:
        # Vault's path is "/vault/"; etcd keys need no leading slash, but keep whatever was written.
        prefix = prefix if prefix.endswith("/") else prefix + "/"
    files = [("ca_file", "tls_ca_file"), ("cert_file", "tls_cert_file"), ("key_file", "tls_key_file")]
    query = _query(
        [
            ("prefix", prefix),
            ("timeout", _seconds(options, "request_timeout", what) or _seconds(options, "timeout", what)),
            ("attempt_timeout", _seconds(options, "attempt_timeout", what)),
            *((k, _whole(options, k, what)) for k in ("max_connections", "max_request_bytes", "max_txn_ops")),
            ("tls", "true" if tls else None),
            *((ours, _text(options, theirs, what)) for ours, theirs in files),
            ("password_file", _text(options, "password_file", what)),
        ]
    )
    authority = (quote(user, safe="") + "@" if user else "") + ",".join(hosts)
    return f"etcd://{authority}{query}"


# --- Redis -------------------------------------------------------------------------------------------------

_REDIS_KEYS = {"address", "host", "port", "db", "username", "prefix", "timeout", "snapshot_window",
               "password_env", "password_file"}  # fmt: skip


def redis_url(options: Mapping[str, Any], where: str, environ: Mapping[str, str] | None = None) -> str:
    """``storage "redis" {...}`` -> ``redis://[user@]host:port/db?prefix=...``.

    Raises:
        InvalidRequest: an unknown or malformed setting, ``address`` together with ``host``/``port``,
            ``password_file`` (Redis takes ``password_env`` only), or a ``password_env`` that is not the
            backend's variable or is not set.
    """
    what = f'{where}: storage "redis"'
    _check_keys(options, _REDIS_KEYS, what)
    if "password_file" in options:
        raise InvalidRequest(
            f"{what} password_file: the Redis backend reads its password from the environment only: "
            'password_env = "STRONGROOM_REDIS_PASSWORD"'
        )
    _password_env(options, "redis", what, os.environ if environ is None else environ)
    address = _text(options, "address", what)
    if address is not None:
        if "host" in options or "port" in options:
            raise InvalidRequest(f"{what}: give address or host and port, not both")
        host, sep, port = address.removeprefix("redis://").rstrip("/").rpartition(":")
        if not sep or not port.isdigit() or not host:
            raise InvalidRequest(f'{what} address must be "host:port", not {address!r}')
        host = host.strip("[]")
    else:
        host = _text(options, "host", what) or "127.0.0.1"
        port = _whole(options, "port", what) or "6379"
    db = _whole(options, "db", what) or "0"
    user = _text(options, "username", what)
    authority = (quote(user, safe="") + "@" if user else "") + f"{_host(host)}:{port}"
    query = _query(
        [
            ("prefix", _text(options, "prefix", what)),
            ("timeout", _seconds(options, "timeout", what)),
            ("snapshot_window", _seconds(options, "snapshot_window", what)),
        ]
    )
    return f"redis://{authority}/{db}{query}"


BLOCKS: dict[str, Callable[[Mapping[str, Any], str], str]] = {
    "postgresql": postgresql_url,
    "etcd": etcd_url,
    "redis": redis_url,
}
"""Block type -> URL builder, registered by :mod:`strongroom.cli.config`."""
