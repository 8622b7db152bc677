"""Revocation lists: which biscuit revocation ids are revoked (docs/spec/tokens.md section 6).

A token is refused when any of its revocation ids is revoked, so revoking an issued token's first id
revokes every token attenuated from it (they all carry that id), and revoking an attenuation block's id
revokes only that branch. The server's implementation reads platform storage; tests use
:class:`InMemoryRevocationList`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol


class RevocationList(Protocol):
    """Answers whether a token must be refused because one of its revocation ids was revoked.

    Implementations must answer from state at least as new as the request's own transaction (so a
    revocation committed on any node is honoured by the next request everywhere) and may raise
    :class:`~strongroom.errors.StorageError`, which the verifier lets through rather than turning a storage
    outage into a silent 403.
    """

    def is_revoked(self, ids: Sequence[str]) -> bool:
        """Whether any of ``ids`` (lowercase hex) is revoked."""
        ...


class InMemoryRevocationList:
    """A revocation list held in a set: tests, and the snapshot a storage-backed list can hand over."""

    def __init__(self, ids: Iterable[str] = ()) -> None:
        self._ids: set[str] = {i.lower() for i in ids}

    def revoke(self, revocation_id: str) -> None:
        """Add ``revocation_id`` (hex, any case)."""
        self._ids.add(revocation_id.lower())

    def is_revoked(self, ids: Sequence[str]) -> bool:
        """Whether any of ``ids`` is revoked."""
        return not self._ids.isdisjoint(ids)

    def __len__(self) -> int:
        return len(self._ids)


class NothingRevoked:
    """A revocation list with nothing in it, for callers that have no list yet (say so explicitly)."""

    def is_revoked(self, ids: Sequence[str]) -> bool:
        """Always ``False``."""
        return False
