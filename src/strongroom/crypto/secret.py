"""A container for key material that does not leak it by accident.

``SecretBytes`` follows Tink's ``KeysetHandle`` rule (DESIGN.md section 9.6): the value can leave the object
only through the explicitly named :meth:`SecretBytes.reveal`, so a ``grep reveal`` finds every place key
material is handled in clear. ``repr``/``str``/f-strings show the kind and length only, pickling is refused
(a pickle would write the key to wherever the pickle goes: a cache, a queue, a crash dump), and equality is
constant time.

What this does not promise: CPython ``bytes`` are immutable and may be copied by the interpreter, so the
memory is not zeroed when the object dies. Keeping secrets out of logs and serialised state is the goal.
"""

from __future__ import annotations

import hmac
from typing import Any, NoReturn

__all__ = ["SecretBytes", "constant_time_equal"]


def constant_time_equal(a: bytes, b: bytes) -> bool:
    """Compare two byte strings in time that depends on their lengths only, never on their contents."""
    return hmac.compare_digest(a, b)


class SecretBytes:
    """Immutable key material with no secret ``repr``, no pickling and constant-time equality.

    ``kind`` is a short, non-secret label shown in the ``repr`` (``"key"``, ``"root key"``...). Two
    ``SecretBytes`` are equal when their values are equal, whatever their kinds. Comparing to anything else
    (including plain ``bytes``) is ``False``, so a caller cannot compare against a revealed value by mistake
    in non-constant time. Instances are unhashable: a hash of a key would be a side channel and a dict key
    built from it would be one more copy.

    Raises ``TypeError`` when ``value`` is not bytes-like and on any attempt to pickle.
    """

    __slots__ = ("_kind", "_value")

    _value: bytes
    _kind: str

    def __init__(self, value: bytes | bytearray | memoryview, kind: str = "key") -> None:
        if not isinstance(value, bytes | bytearray | memoryview):
            raise TypeError("SecretBytes needs a bytes-like value")
        # bytes() copies a bytearray/memoryview, so later mutation by the caller cannot change the key.
        object.__setattr__(self, "_value", bytes(value))
        object.__setattr__(self, "_kind", kind)

    def reveal(self) -> bytes:
        """Return the key material. Every caller of this is a place where the key exists in clear."""
        return self._value

    @property
    def kind(self) -> str:
        """The non-secret label given at construction."""
        return self._kind

    def __len__(self) -> int:
        return len(self._value)

    def __repr__(self) -> str:
        return f"SecretBytes(kind={self._kind!r}, length={len(self._value)})"

    __str__ = __repr__

    def __format__(self, format_spec: str) -> str:
        # Without this, format(s, "x") or f"{s:...}" would reach object.__format__; be explicit instead.
        return repr(self)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SecretBytes):
            return NotImplemented
        return hmac.compare_digest(self._value, other._value)

    def __ne__(self, other: object) -> bool:
        result = self.__eq__(other)
        return result if result is NotImplemented else not result

    __hash__ = None  # type: ignore[assignment]

    def __setattr__(self, name: str, value: Any) -> NoReturn:
        raise AttributeError("SecretBytes is immutable")

    def __delattr__(self, name: str) -> NoReturn:
        raise AttributeError("SecretBytes is immutable")

    def __copy__(self) -> SecretBytes:
        # Immutable, so a copy is the object itself; defining this keeps copy.copy away from __reduce_ex__.
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> SecretBytes:
        return self

    def __reduce__(self) -> NoReturn:
        raise TypeError("SecretBytes cannot be pickled")

    def __reduce_ex__(self, protocol: Any) -> NoReturn:
        raise TypeError("SecretBytes cannot be pickled")

    def __getstate__(self) -> NoReturn:
        raise TypeError("SecretBytes cannot be pickled")
