"""Parsing ``etcd://host:port[,host:port...][/]?option=value...`` storage URLs (docs/storage/etcd.md)."""

from __future__ import annotations

import os
import re
import ssl
from dataclasses import dataclass, field
from urllib.parse import SplitResult, unquote

from strongroom.errors import InvalidRequest

__all__ = ["DEFAULT_PORT", "MAX_REQUEST_BYTES", "MAX_TXN_OPS", "PASSWORD_ENV", "Settings", "parse_url"]

DEFAULT_PORT = 2379
MAX_REQUEST_BYTES = 1_572_864  # etcd's --max-request-bytes default
MAX_TXN_OPS = 128  # etcd's --max-txn-ops default
PASSWORD_ENV = "STRONGROOM_ETCD_PASSWORD"
_FILES = {"ca_file", "cert_file", "key_file", "password_file"}

_DEFAULTS: dict[str, float] = {
    "timeout": 5.0,
    "attempt_timeout": 2.0,
    "max_connections": 32,
    "max_request_bytes": MAX_REQUEST_BYTES,
    "max_txn_ops": MAX_TXN_OPS,
}
_INTEGERS = {"max_connections", "max_request_bytes", "max_txn_ops"}


def _endpoint(text: str) -> tuple[str, int]:
    match = re.fullmatch(r"(?:\[([0-9A-Fa-f:.]+)\]|([^:\[\]/]+))(?::(\d{1,5}))?", text)
    if match is None:
        raise InvalidRequest(f"malformed etcd endpoint {text!r}: use host:port")
    host = match.group(1) or match.group(2)
    port = int(match.group(3) or DEFAULT_PORT)
    if not 0 < port < 65536:
        raise InvalidRequest(f"etcd endpoint port out of range: {text!r}")
    return host, port


def _number(name: str, text: str) -> float:
    try:
        value = int(text) if name in _INTEGERS else float(text)
    except ValueError:
        kind = "an integer" if name in _INTEGERS else "a number"
        raise InvalidRequest(f"etcd option {name} must be {kind}") from None
    if not 0 < value < 1e10:
        raise InvalidRequest(f"etcd option {name} out of range")
    return value


@dataclass
class Settings:
    """What an etcd URL says: endpoints, key prefix, numeric options, TLS context and credentials."""

    endpoints: list[tuple[str, int]]
    prefix: bytes
    numbers: dict[str, float] = field(default_factory=dict)
    ssl_context: ssl.SSLContext | None = None
    credentials: tuple[str, str] | None = None


def _tls(options: dict[str, str]) -> ssl.SSLContext | None:
    wanted = options.get("tls", "")
    if wanted not in ("", "true", "false"):
        raise InvalidRequest("etcd option tls must be true or false")
    if wanted != "true" and not _FILES & set(options) - {"password_file"}:
        return None
    if wanted == "false":
        raise InvalidRequest("etcd options ca_file, cert_file and key_file need tls")
    if ("cert_file" in options) != ("key_file" in options):
        raise InvalidRequest("etcd options cert_file and key_file go together")
    try:
        context = ssl.create_default_context(cafile=options.get("ca_file"))
        if "cert_file" in options:
            context.load_cert_chain(options["cert_file"], options["key_file"])
    except (OSError, ssl.SSLError) as exc:
        raise InvalidRequest(f"etcd TLS files unusable: {exc.strerror or exc}") from None
    return context


def _password(options: dict[str, str]) -> str:
    path = options.get("password_file")
    if path is None:
        password = os.environ.get(PASSWORD_ENV)
        if not password:
            raise InvalidRequest(f"etcd user given but no password: set {PASSWORD_ENV} or password_file")
        return password
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().rstrip("\r\n")
    except OSError as exc:
        raise InvalidRequest(f"etcd password_file unreadable: {exc.strerror}") from None


def parse_url(url: SplitResult, options: dict[str, str]) -> Settings:
    """Parse ``etcd://[USER@]host:port[,host:port...][/]?option=value...``.

    Files named by options (CA, client certificate and key, password) are read here, once.

    Raises:
        InvalidRequest: no or malformed endpoints, a path, an unknown or malformed option, a user without
            a password, or unreadable files.
    """
    if url.path not in ("", "/"):
        raise InvalidRequest("etcd URLs have no path: use etcd://host:port,host:port?prefix=name/")
    user, _, hosts = url.netloc.rpartition("@")
    if not hosts:
        raise InvalidRequest("etcd URL needs at least one endpoint: etcd://host:port")
    unknown = set(options) - set(_DEFAULTS) - _FILES - {"prefix", "tls"}
    if unknown:
        raise InvalidRequest(f"unknown etcd option(s): {', '.join(sorted(unknown))}")
    settings = Settings(
        endpoints=[_endpoint(part.strip()) for part in hosts.split(",")],
        prefix=options.get("prefix", "strongroom/").encode(),
        numbers={
            name: _number(name, options[name]) if name in options else d for name, d in _DEFAULTS.items()
        },
        ssl_context=_tls(options),
    )
    if user:
        settings.credentials = (unquote(user), _password(options))
    elif "password_file" in options:
        raise InvalidRequest("etcd option password_file needs a user name in the URL")
    return settings
