"""The one place where strongroom's exceptions become HTTP status codes and Vault error bodies."""

from __future__ import annotations

from typing import Any

from strongroom.errors import (
    CorruptRecord,
    InvalidRequest,
    NamespaceLocked,
    NotFound,
    NotInitialized,
    PermissionDenied,
    RecordTooLarge,
    RequestTooLarge,
    Sealed,
    StorageUnavailable,
    StrongroomError,
    TransactionConflict,
    UnsupportedOperation,
    UnsupportedPath,
)


class UnsupportedMediaType(InvalidRequest):
    """The body's media type is not the one the method requires (PATCH needs JSON merge patch): 415.

    It lives here rather than in :mod:`strongroom.errors` because only the HTTP layer knows media types.
    """


# Most specific classes first: the first isinstance match wins.
_STATUS: tuple[tuple[type[StrongroomError], int], ...] = (
    (PermissionDenied, 403),
    (NotFound, 404),
    (UnsupportedPath, 404),
    (UnsupportedOperation, 405),
    (RequestTooLarge, 413),
    (RecordTooLarge, 413),
    (UnsupportedMediaType, 415),
    (Sealed, 503),
    (NamespaceLocked, 503),
    (StorageUnavailable, 503),
    (TransactionConflict, 503),
    (NotInitialized, 400),
    (InvalidRequest, 400),
    (CorruptRecord, 500),
)


def status_of(exc: StrongroomError) -> int:
    """Return the HTTP status for ``exc`` (500 for anything unclassified)."""
    for cls, status in _STATUS:
        if isinstance(exc, cls):
            return status
    return 500


def error_body(exc: StrongroomError) -> dict[str, Any]:
    """Return Vault's error body: ``{"errors": [message]}`` (empty list when there is no message).

    A :class:`NotFound` that carries data (KV v2 deleted versions) adds ``"data"`` as Vault does.
    """
    body: dict[str, Any] = {"errors": [exc.message] if exc.message else []}
    if isinstance(exc, NotFound) and exc.data is not None:
        body["data"] = exc.data
    return body
