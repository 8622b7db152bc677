"""Namespaces: where a namespace's records live and the key state of an unsealed one.

Every namespace owns the subspace ``("ns", id)``. The root namespace (the platform) has the id
``b"root"``; later namespaces get random ids so that re-creating a name never reuses storage.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from strongroom.barrier.barrier import Barrier
from strongroom.barrier.keyring import Keyring
from strongroom.barrier.paths import PathIndex
from strongroom.barrier.records import Records
from strongroom.crypto.kdf import BlindIndexer, TokenHasher
from strongroom.crypto.secret import SecretBytes
from strongroom.storage.base import Transaction
from strongroom.storage.subspace import ROOT_NAMESPACE_ID, Subspace, namespace

__all__ = ["ROOT_NAMESPACE_ID", "NamespaceKeys"]


@dataclass(frozen=True)
class NamespaceKeys:
    """The unsealed key state of one namespace (built from its keyring; never persisted in clear)."""

    ns_id: bytes
    path: str
    root_key: SecretBytes
    keyring: Keyring
    barrier: Barrier
    indexer: BlindIndexer
    token_hasher: TokenHasher
    space: Subspace
    # Decoded hot records (mount table, policies), validated against the stored ciphertext on each use.
    cache: dict[bytes, tuple[bytes, Any]] = field(default_factory=dict, compare=False)
    areas: dict[tuple[Any, ...], Subspace] = field(default_factory=dict, compare=False)
    # Engines' unwrapped key material and primitive objects (transit): lives exactly as long as this key
    # state, so sealing or a keyring change drops it with everything else.
    engine_cache: dict[Any, Any] = field(default_factory=dict, compare=False)

    @classmethod
    def build(cls, ns_id: bytes, path: str, root_key: SecretBytes, keyring: Keyring) -> NamespaceKeys:
        """Derive the per-namespace helpers from ``keyring``."""
        return cls(
            ns_id=ns_id,
            path=path,
            root_key=root_key,
            keyring=keyring,
            barrier=Barrier(keyring),
            indexer=BlindIndexer(keyring.blind_key),
            token_hasher=TokenHasher(keyring.token_key),
            space=namespace(ns_id),
        )

    def __repr__(self) -> str:
        return f"NamespaceKeys(path={self.path!r}, keyring={self.keyring!r})"

    def records(self, tx: Transaction, *area: Any) -> Records:
        """Return barrier records of ``area`` (e.g. ``("sys",)``) of this namespace in ``tx``."""
        space = self.areas.get(area)
        if space is None:
            # Areas are a small fixed set plus one per mount: packing their prefix once is worth it.
            space = self.space.sub(*area)
            if len(self.areas) < 4096:
                self.areas[area] = space
        return Records(tx, self.barrier, space)

    def paths(self, tx: Transaction, *area: Any) -> PathIndex:
        """Return a blind-indexed path index over ``area`` of this namespace in ``tx``."""
        return PathIndex(self.records(tx, *area), self.indexer)
