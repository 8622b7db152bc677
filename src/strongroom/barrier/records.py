"""Encrypted record access for one subspace inside one transaction.

:class:`Records` is what engines and core services use instead of raw storage: keys are tuples inside a
subspace, values go through the :class:`~strongroom.barrier.barrier.Barrier` with the physical key as
associated data. Engines only ever get a :class:`Records` scoped to their own mount's subspace.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import orjson

from strongroom.barrier.barrier import Barrier
from strongroom.errors import CorruptRecord
from strongroom.storage.base import Transaction
from strongroom.storage.subspace import Subspace

Key = tuple[Any, ...]
T = TypeVar("T")


class Records:
    """Barrier-encrypted records of ``subspace`` read and written through ``tx``."""

    __slots__ = ("barrier", "subspace", "tx")

    def __init__(self, tx: Transaction, barrier: Barrier, subspace: Subspace) -> None:
        self.tx = tx
        self.barrier = barrier
        self.subspace = subspace

    def sub(self, *items: Any) -> Records:
        """Return the records of a nested subspace."""
        return Records(self.tx, self.barrier, self.subspace.sub(*items))

    async def get(self, *key: Any) -> bytes | None:
        """Return the decrypted value at ``key`` or ``None``.

        Raises:
            CorruptRecord: the stored record failed authentication.
        """
        physical = self.subspace.key(*key)
        record = await self.tx.get(physical)
        if record is None:
            return None
        return self.barrier.decrypt(physical, record)

    async def get_json(self, *key: Any) -> Any:
        """Return the decoded JSON value at ``key`` or ``None``."""
        raw = await self.get(*key)
        if raw is None:
            return None
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise CorruptRecord("stored record is not valid JSON") from None

    async def get_decoded(
        self, key: Key, decode: Callable[[bytes], T], cache: dict[bytes, tuple[bytes, Any]]
    ) -> T | None:
        """Return ``decode(plaintext)`` of the record at ``key``, reusing a cached decoding.

        The cache maps the physical key to ``(stored ciphertext, decoded value)``; a hit needs the stored
        bytes to be identical, so a change by any writer (any node) is always seen. Decoded values must
        be immutable. Used for hot, rarely changing records (mount table, policies).
        """
        physical = self.subspace.key(*key)
        record = await self.tx.get(physical)
        if record is None:
            cache.pop(physical, None)
            return None
        hit = cache.get(physical)
        if hit is not None and hit[0] == record:
            value: T = hit[1]
            return value
        decoded = decode(self.barrier.decrypt(physical, record))
        if len(cache) > 4096:
            cache.clear()
        cache[physical] = (record, decoded)
        return decoded

    async def exists(self, *key: Any) -> bool:
        """Return whether a record is stored at ``key`` (without decrypting it)."""
        return await self.tx.get(self.subspace.key(*key)) is not None

    def put(self, key: Key, value: bytes) -> None:
        """Encrypt and buffer ``value`` at ``key``."""
        physical = self.subspace.key(*key)
        self.tx.set(physical, self.barrier.encrypt(physical, value))

    def put_json(self, key: Key, value: Any) -> None:
        """Encode ``value`` as JSON, encrypt and buffer it at ``key``."""
        self.put(key, orjson.dumps(value))

    def clear(self, *key: Any) -> None:
        """Delete the record at ``key``."""
        self.tx.clear(self.subspace.key(*key))

    def clear_prefix(self, *prefix: Any) -> None:
        """Delete every record whose key starts with ``prefix`` (the prefix key itself excluded)."""
        begin, end = self.subspace.sub(*prefix).range()
        self.tx.clear_range(begin, end)

    async def range(
        self, *prefix: Any, limit: int = 0, reverse: bool = False
    ) -> list[tuple[tuple[Any, ...], bytes]]:
        """Return ``(key suffix after prefix, plaintext)`` for records under ``prefix``, in key order."""
        sub = self.subspace.sub(*prefix)
        begin, end = sub.range()
        rows = await self.tx.range(begin, end, limit=limit, reverse=reverse)
        return [(sub.unpack(k), self.barrier.decrypt(k, v)) for k, v in rows]

    async def any_under(self, *prefix: Any) -> bool:
        """Return whether at least one record exists under ``prefix``."""
        begin, end = self.subspace.sub(*prefix).range()
        return bool(await self.tx.range(begin, end, limit=1))
