"""Every route of the token auth method (``auth/token/``), one endpoint family per module.

The registry imports :data:`ROUTES`; patterns are relative to the mount.
"""

from __future__ import annotations

from typing import Any

from strongroom.engines.context import Context
from strongroom.engines.framework import Route
from strongroom.engines.token import create, lookup, renew, revoke, roles

ROUTES: list[Route[Context, Any]] = [
    *create.ROUTES,
    *lookup.ROUTES,
    *renew.ROUTES,
    *revoke.ROUTES,
    *roles.ROUTES,
]
