"""The exception tree of strongroom.

Every failure that can reach a client is one of these classes. Nothing here knows HTTP: the single
translation to status codes and Vault's ``{"errors": [...]}`` bodies lives in ``strongroom.api.errors``.
Messages must never contain key material, tokens or stored plaintext.

::

    StrongroomError
    ├── InvalidRequest              a request the caller can fix (400)
    │   ├── AlreadyInitialized      sys/init on an initialised vault
    │   └── CheckAndSetMismatch     KV cas did not match
    ├── PermissionDenied            no token, bad token, or the ACL says no (403)
    ├── NotFound                    nothing stored there (404); may carry Vault's extra ``data``
    ├── UnsupportedPath             no mount or route handles the path (404)
    ├── UnsupportedOperation        the path exists but not for this method (405)
    ├── RequestTooLarge             body or record over the configured limit (413)
    ├── Sealed                      the node or namespace is sealed (503)
    ├── NamespaceLocked             the namespace's API is locked (sys/namespaces/api-lock) (503)
    ├── NotInitialized              the vault has not been initialised (400 on most paths)
    ├── StorageError                the store failed
    │   ├── StorageUnavailable      the store cannot be reached now (503)
    │   ├── TransactionConflict     an optimistic transaction lost a race; retried by ``transactional``
    │   ├── RecordTooLarge          one value or transaction exceeds the backend's limit (413)
    │   └── CorruptRecord           a stored record failed authentication or decoding (500)
    └── CryptoError
        ├── DecryptionFailed        one error for every authentication failure; reveals nothing more
        └── InvalidShare            an unseal/rekey share is malformed, duplicated or does not combine
"""

from __future__ import annotations

from typing import Any


class StrongroomError(Exception):
    """Base of every error strongroom raises on purpose.

    ``message`` is what a client sees; it never contains secret material.
    """

    def __init__(self, message: str = "") -> None:
        super().__init__(message)
        self.message = message


class InvalidRequest(StrongroomError):
    """The request is malformed or asks for something impossible; the caller can fix it."""


class CiphertextRejected(InvalidRequest):
    """A transit ciphertext or signature input did not authenticate (400).

    One fixed message, Vault's own wording, for a wrong key, tampered bytes, a wrong derivation context or
    wrong associated data: a caller learns nothing about which check failed.
    """

    def __init__(self) -> None:
        super().__init__("cipher: message authentication failed")


class AlreadyInitialized(InvalidRequest):
    """``sys/init`` was called on a vault that is already initialised."""

    def __init__(self, message: str = "Vault is already initialized") -> None:
        super().__init__(message)


class CheckAndSetMismatch(InvalidRequest):
    """A check-and-set version did not match the stored current version."""


class PermissionDenied(StrongroomError):
    """Authentication failed or the policy forbids the operation."""

    def __init__(self, message: str = "permission denied") -> None:
        super().__init__(message)


class NotFound(StrongroomError):
    """Nothing is stored at the path.

    ``data`` lets an engine return a body with the 404, as Vault's KV v2 does for a deleted version.
    """

    def __init__(self, message: str = "", data: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.data = data


class UnsupportedPath(StrongroomError):
    """No mount or route handles this path."""

    def __init__(self, message: str = "unsupported path") -> None:
        super().__init__(message)


class UnsupportedOperation(StrongroomError):
    """The path exists but does not support this operation."""

    def __init__(self, message: str = "unsupported operation") -> None:
        super().__init__(message)


class RequestTooLarge(StrongroomError):
    """The request body exceeds the configured limit."""

    def __init__(self, message: str = "http: request body too large") -> None:
        super().__init__(message)


class Sealed(StrongroomError):
    """The node or the addressed namespace is sealed."""

    def __init__(self, message: str = "Vault is sealed") -> None:
        super().__init__(message)


class NamespaceLocked(StrongroomError):
    """The addressed namespace, or an ancestor, is locked by ``sys/namespaces/api-lock`` (OpenBao's 503)."""

    def __init__(self, locked_path: str) -> None:
        super().__init__(
            "API access to this namespace has been locked by an administrator - "
            f'"{locked_path}" must be unlocked to gain access.'
        )


class NotInitialized(StrongroomError):
    """The vault has not been initialised yet."""

    def __init__(self, message: str = "Vault is not initialized") -> None:
        super().__init__(message)


class StorageError(StrongroomError):
    """The storage backend failed."""


class StorageUnavailable(StorageError):
    """The storage backend cannot be reached or refused the operation for now."""


class TransactionConflict(StorageError):
    """An optimistic transaction conflicted with a concurrent commit; safe to retry."""

    def __init__(self, message: str = "storage transaction conflict") -> None:
        super().__init__(message)


class RecordTooLarge(StorageError):
    """A value or a whole transaction exceeds the backend's size limits."""


class CorruptRecord(StorageError):
    """A stored record failed authentication or could not be decoded.

    Raised when storage was tampered with or corrupted; the message names no key material.
    """


class CryptoError(StrongroomError):
    """A cryptographic operation failed."""


class DecryptionFailed(CryptoError):
    """Ciphertext authentication failed.

    This is deliberately the one error for a wrong key, tampered data or wrong associated data, so
    that a caller learns nothing about which.
    """

    def __init__(self, message: str = "decryption failed") -> None:
        super().__init__(message)


class InvalidShare(CryptoError, InvalidRequest):
    """A key share is malformed, duplicated, or the shares do not combine to the key."""
