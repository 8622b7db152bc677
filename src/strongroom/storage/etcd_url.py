"""Parsing ``etcd://host:port[,host:port...][/]?option=value...`` storage URLs (docs/storage/etcd.md)."""

from __future__ import annotations

import re
from urllib.parse import SplitResult

from strongroom.errors import InvalidRequest

__all__ = ["DEFAULT_PORT", "MAX_REQUEST_BYTES", "MAX_TXN_OPS", "parse_url"]

DEFAULT_PORT = 2379
MAX_REQUEST_BYTES = 1_572_864  # etcd's --max-request-bytes default
MAX_TXN_OPS = 128  # etcd's --max-txn-ops default

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


def parse_url(
    url: SplitResult, options: dict[str, str]
) -> tuple[list[tuple[str, int]], dict[str, float | bytes]]:
    """Return the endpoints and the settings (``prefix`` as bytes, numbers for the other options).

    Raises:
        InvalidRequest: no or malformed endpoints, a user name (etcd authentication is not supported),
            a path, or an unknown or malformed option.
    """
    if "@" in url.netloc:
        raise InvalidRequest("etcd URLs take no user name: etcd authentication is not supported")
    if url.path not in ("", "/"):
        raise InvalidRequest("etcd URLs have no path: use etcd://host:port,host:port?prefix=name/")
    if not url.netloc:
        raise InvalidRequest("etcd URL needs at least one endpoint: etcd://host:port")
    unknown = set(options) - set(_DEFAULTS) - {"prefix"}
    if unknown:
        raise InvalidRequest(f"unknown etcd option(s): {', '.join(sorted(unknown))}")
    endpoints = [_endpoint(part.strip()) for part in url.netloc.split(",")]
    settings: dict[str, float | bytes] = {"prefix": options.get("prefix", "strongroom/").encode()}
    for name, default in _DEFAULTS.items():
        settings[name] = _number(name, options[name]) if name in options else default
    return endpoints, settings
