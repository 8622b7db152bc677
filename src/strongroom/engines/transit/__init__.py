"""The transit secrets engine: encryption, signing, HMAC and key management as a service (Vault's API).

One module per endpoint family; this package only gathers their routes.
"""

from __future__ import annotations

import importlib
from typing import Any

from strongroom.engines.context import Context
from strongroom.engines.framework import Route

_MODULES = (
    "keys",
    "encrypt",
    "settings",
    "datakey",
    "random_hash",
    "trim",
    "sign",
    "hmac",
    "export",
    "backup",
    "byok",
)


def _routes() -> list[Route[Context, Any]]:
    routes: list[Route[Context, Any]] = []
    for name in _MODULES:
        module = importlib.import_module(f"strongroom.engines.transit.{name}")
        routes.extend(module.ROUTES)
    return routes


ROUTES: list[Route[Context, Any]] = _routes()
