"""Which backend serves a mount: the one place engine types are mapped to route sets.

Backends are built once per process (routes are immutable data); the router asks for the backend of a
mount entry on every request, which is a dictionary lookup.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from strongroom.core.mounts import MountEntry
from strongroom.engines.context import Context
from strongroom.engines.framework import Backend
from strongroom.engines.open import OpenContext
from strongroom.errors import UnsupportedPath

SECRET_ENGINE_TYPES = frozenset({"kv", "transit"})
"""Engine types ``sys/mounts`` accepts."""


@cache
def open_backend() -> Backend[OpenContext]:
    """The system endpoints served before the seal check (paths relative to ``sys/``).

    Some of them authenticate by themselves (``sys/rekey/*`` by default, ``sys/rotate/root/*``).
    """
    from strongroom.engines.sys import generate_root, rekey, seal

    return Backend([*seal.ROUTES, *rekey.ROUTES, *generate_root.ROUTES])


@cache
def tenant_open_backend() -> Backend[OpenContext]:
    """The system endpoints a tenant serves before its seal check (``docs/spec/namespaces.md`` 5)."""
    from strongroom.engines.sys import namespaces_seal

    return Backend(list(namespaces_seal.TENANT_OPEN_ROUTES))


@cache
def _backends() -> dict[str, Backend[Context]]:
    from strongroom.engines.kv import v1, v2
    from strongroom.engines.sys import (
        auth_methods,
        iam,
        keys,
        mounts,
        namespaces,
        namespaces_seal,
        policies,
        rewrap,
        snapshot,
    )
    from strongroom.engines.token import routes as token_routes
    from strongroom.engines.transit import ROUTES as transit_routes

    sys_routes: list[Any] = [
        *mounts.ROUTES, *auth_methods.ROUTES, *policies.ROUTES, *keys.ROUTES, *snapshot.ROUTES,
        *namespaces.ROUTES, *namespaces_seal.ROUTES, *rewrap.ROUTES, *iam.ROUTES,
    ]  # fmt: skip
    return {
        "system": Backend(sys_routes),
        "token": Backend(list(token_routes.ROUTES)),
        "kv1": Backend(list(v1.ROUTES)),
        "kv2": Backend(list(v2.ROUTES)),
        "transit": Backend(list(transit_routes)),
    }


def backend_for(mount: MountEntry) -> Backend[Context]:
    """Return the backend serving ``mount``.

    Raises:
        UnsupportedPath: the mount's engine type is unknown to this server.
    """
    key = mount.type
    if key == "kv":
        key = "kv2" if mount.version == "2" else "kv1"
    backend = _backends().get(key)
    if backend is None:
        raise UnsupportedPath(f"no backend for engine type {mount.type!r}")
    return backend
