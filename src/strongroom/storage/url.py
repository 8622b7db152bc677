"""Open a store from a storage URL.

``memory://`` and ``sqlite:///relative/path`` / ``sqlite:////absolute/path`` are built in (three slashes:
relative to the working directory; four: absolute). Query parameters are backend options, e.g.
``sqlite:///data/strongroom.db?synchronous=NORMAL``. Later backends add their scheme to :data:`BACKENDS`.

Passwords never go into URLs (URLs end up in logs, process listings and configuration dumps): a URL with a
password is refused, and backends that need credentials read them from files or the environment.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from urllib.parse import SplitResult, parse_qsl, urlsplit

from strongroom.errors import InvalidRequest
from strongroom.storage.base import Store
from strongroom.storage.memory import MemoryStore
from strongroom.storage.sqlite import SqliteStore

__all__ = ["BACKENDS", "open_store"]


def _open_memory(url: SplitResult, options: dict[str, str]) -> Store:
    if url.netloc or url.path not in ("", "/") or options:
        raise InvalidRequest("memory:// takes no path or options")
    return MemoryStore()


def _open_sqlite(url: SplitResult, options: dict[str, str]) -> Store:
    if url.netloc:
        raise InvalidRequest(
            "sqlite URLs have no host: use sqlite:///relative/path or sqlite:////absolute/path"
        )
    # urlsplit keeps the slash that separates the (empty) host from the path: "/rel" or "//abs".
    path = url.path[1:]
    if not path or path.endswith("/"):
        raise InvalidRequest(
            "sqlite URL needs a file path: sqlite:///relative/path or sqlite:////absolute/path"
        )
    unknown = set(options) - {"synchronous"}
    if unknown:
        raise InvalidRequest(f"unknown sqlite option(s): {', '.join(sorted(unknown))}")
    return SqliteStore(path, synchronous=options.get("synchronous", "FULL"))


def _lazy(module: str) -> Callable[[SplitResult, dict[str, str]], Store]:
    """An opener that imports ``strongroom.storage.<module>`` only when its scheme is used.

    The module defines ``open_url(url, options) -> Store``; importing lazily keeps network clients out of
    processes that never use them.
    """

    def opener(url: SplitResult, options: dict[str, str]) -> Store:
        loaded = importlib.import_module(f"strongroom.storage.{module}")
        store: Store = loaded.open_url(url, options)
        return store

    return opener


BACKENDS: dict[str, Callable[[SplitResult, dict[str, str]], Store]] = {
    "memory": _open_memory,
    "sqlite": _open_sqlite,
    "postgresql": _lazy("postgresql"),
    "postgres": _lazy("postgresql"),
    "redis": _lazy("redis"),
    "etcd": _lazy("etcd"),
}
"""Scheme -> opener. An opener gets the split URL and its query options, and raises ``InvalidRequest``
for a URL it cannot use."""


def open_store(url: str) -> Store:
    """Open the store named by ``url``.

    Raises:
        InvalidRequest: unknown scheme, a password in the URL, or a malformed URL or option.
        StorageUnavailable: the backend cannot be opened.
    """
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError as exc:
        raise InvalidRequest("malformed storage URL") from exc
    if password is not None:
        raise InvalidRequest("storage URLs must not contain passwords; use the backend's credential file")
    opener = BACKENDS.get(parts.scheme.lower())
    if opener is None:
        known = ", ".join(f"{scheme}://" for scheme in sorted(BACKENDS))
        raise InvalidRequest(f"unknown storage URL scheme {parts.scheme!r}; known: {known}")
    options = dict(parse_qsl(parts.query, keep_blank_values=True))
    return opener(parts, options)
