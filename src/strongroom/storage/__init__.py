"""strongroom.storage: the untrusted, ordered, transactional key-value store.

The protocol is in :mod:`strongroom.storage.base`, key encoding in :mod:`strongroom.storage.tuple` and
:mod:`strongroom.storage.subspace`, backends in :mod:`~strongroom.storage.memory` and
:mod:`~strongroom.storage.sqlite`, and :func:`open_store` opens one from a URL. The layout is specified in
``docs/spec/storage-layout.md``.
"""

from strongroom.storage.base import Store, StoreLimits, Transaction, iterate_range, transactional
from strongroom.storage.memory import MemoryStore
from strongroom.storage.sqlite import SqliteStore
from strongroom.storage.subspace import Subspace
from strongroom.storage.url import open_store

__all__ = [
    "MemoryStore",
    "SqliteStore",
    "Store",
    "StoreLimits",
    "Subspace",
    "Transaction",
    "iterate_range",
    "open_store",
    "transactional",
]
