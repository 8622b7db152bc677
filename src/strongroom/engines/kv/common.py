"""Helpers shared by KV v1 and v2: Vault's odd responses, path rules, Go-style value formatting.

Nothing here touches storage. The responses built here are the ones Vault sends through
``logical.RespondWithStatusCode``: a full response envelope (request id, warnings, data) with a status
other than 200, used by KV v2 for deleted versions and for paths that do not exist on a v2 mount.
"""

from __future__ import annotations

import re
from typing import Any

from strongroom.engines.context import Context
from strongroom.engines.fields import parse_duration
from strongroom.engines.framework import Response
from strongroom.errors import InvalidRequest

PATH_AREA = "k"
"""The :class:`~strongroom.barrier.paths.PathIndex` area holding secret paths, in v1 and v2 alike.

Both versions index paths the same way so that upgrading a mount from v1 to v2 keeps every entry id
and directory marker: only the records inside each entry change.
"""


def status_response(
    ctx: Context, status: int, data: dict[str, Any] | None = None, warnings: list[str] | None = None
) -> Response:
    """Return a raw response whose body is Vault's full envelope, sent with ``status``.

    Guarantees: the body has exactly the nine envelope keys of a normal response, as Vault's
    ``RespondWithStatusCode`` produces (clients such as hvac read ``data`` from a 404 of a deleted
    KV v2 version).
    """
    body = {
        "request_id": ctx.request_id,
        "lease_id": "",
        "renewable": False,
        "lease_duration": 0,
        "data": data,
        "wrap_info": None,
        "warnings": warnings or None,
        "auth": None,
    }
    return Response.raw(body, status)


def no_trailing_slash(path: str) -> None:
    """Refuse a write to a path ending in ``/``, as Vault's core does for every write.

    Raises:
        InvalidRequest: ``path`` ends with ``/``.
    """
    # A key named "foo/" would be indistinguishable from the directory "foo/" when listing.
    if path.endswith("/"):
        raise InvalidRequest("cannot write to a path ending in '/'")


def go_duration(seconds: int) -> str:
    """Format whole seconds as Go's ``time.Duration.String`` does (``0s``, ``1m30s``, ``1h0m0s``, ``-1s``)."""
    if seconds < 0:
        return "-" + go_duration(-seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"


MAX_DURATION_SECONDS = (2**63 - 1) // 1_000_000_000
"""The longest Go ``time.Duration``, in whole seconds (about 292 years)."""
MAX_UINT32 = 2**32 - 1

_INT = re.compile(r"\s*[-+]?\d+\s*")


def weak_int(value: Any) -> int:
    """Convert ``value`` to an int the way Go's ``mapstructure.WeakDecode`` does for Vault's ``cas``.

    ``null`` is 0, booleans are 0/1, integers and integer strings are themselves.

    Raises:
        ValueError: anything else (floats, other strings, lists, maps).
    """
    if value is None:
        return 0
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, str) and _INT.fullmatch(value):
        return int(value)
    raise ValueError(f"not an integer: {value!r}")


def int_list(value: Any, name: str) -> list[int]:
    """Parse Vault's ``TypeCommaIntSlice``: a list of ints, a comma-separated string or one int.

    Raises:
        InvalidRequest: an element is not an integer.
    """
    if value is None:
        return []
    if isinstance(value, str):
        items: list[Any] = [p for p in value.split(",") if p.strip()]
    elif isinstance(value, list):
        items = value
    else:
        items = [value]
    out = []
    for item in items:
        try:
            if item is None or isinstance(item, bool):
                raise ValueError
            out.append(weak_int(item))
        except ValueError:
            raise InvalidRequest(
                f"error converting input for field {name!r}: {item!r} cannot be parsed as an integer"
            ) from None
    return out


def merge_patch(target: Any, patch: Any) -> Any:
    """Apply a JSON merge patch (RFC 7396) to ``target`` without modifying either argument.

    A ``null`` member removes the key; an object member merges recursively; anything else replaces.
    A non-object target is treated as an empty object when the patch is an object.
    """
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def signed_duration(value: Any, name: str) -> int:
    """Parse a Vault duration that may be negative (``"-5s"``, ``-5``) into whole seconds.

    Raises:
        InvalidRequest: the value is not a duration.
    """
    if isinstance(value, str) and value.strip().startswith("-"):
        seconds = -parse_duration(value.strip()[1:], name)
    else:
        seconds = parse_duration(value, name)
    # Go durations are int64 nanoseconds: anything longer is an error there, and would overflow here.
    if abs(seconds) > MAX_DURATION_SECONDS:
        raise InvalidRequest(f"error converting input for field {name!r}: duration out of range")
    return seconds


def uint32(value: int, name: str) -> int:
    """Check that ``value`` fits Vault's ``uint32`` settings (``max_versions``).

    Raises:
        InvalidRequest: negative or larger than 2**32 - 1.
    """
    # Vault would silently wrap such values; refusing them is the only sane reading.
    if not 0 <= value <= MAX_UINT32:
        raise InvalidRequest(f"{name} must be between 0 and {MAX_UINT32}")
    return value
