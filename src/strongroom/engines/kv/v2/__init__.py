"""KV version 2: versioned secrets with metadata, soft delete, check-and-set and subkeys.

One module per endpoint family (``config``, ``data``, ``delete``/``undelete``/``destroy``, ``metadata``,
``subkeys``) plus the catch-all that answers non-v2 paths with Vault's hint; the storage layout is
described in :mod:`strongroom.engines.kv.v2.model`.
"""

from __future__ import annotations

from typing import Any

from strongroom.engines.context import Context
from strongroom.engines.framework import Route
from strongroom.engines.kv.v2 import config, data, invalid, metadata, subkeys, versions

ROUTES: list[Route[Context, Any]] = [
    *config.ROUTES,
    *data.ROUTES,
    *versions.ROUTES,
    *metadata.ROUTES,
    *subkeys.ROUTES,
    *invalid.ROUTES,
]
