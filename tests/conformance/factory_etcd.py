"""The etcd backend under the conformance suite: the session's shared 3-member cluster, one key prefix per
store, deleted when the store is closed."""

from __future__ import annotations

import secrets
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from strongroom.storage.base import StoreLimits
from strongroom.storage.etcd import EtcdStore
from strongroom.storage.etcd_url import parse_url
from tests.support.etcd import shared_cluster

NAME = "etcd"


class _PurgingStore(EtcdStore):
    """An etcd store that deletes its own key prefix when closed (each test cleans up after itself)."""

    async def close(self) -> None:
        try:
            await self.purge()
        finally:
            await super().close()


def make_store(tmp: Path, limits: StoreLimits) -> EtcdStore:
    # The URL a server would be given (its prefix= option), parsed as open_store does; the limits of the
    # suite's size tests cannot be said in a URL, hence the store is built here.
    url = urlsplit(shared_cluster().url(f"conformance/{secrets.token_hex(8)}/"))
    settings = parse_url(url, dict(parse_qsl(url.query)))
    return _PurgingStore(settings.endpoints, prefix=settings.prefix, limits=limits)
