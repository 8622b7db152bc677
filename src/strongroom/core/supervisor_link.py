"""The wire protocol between a node's supervisor and its worker processes (``strongroom server --workers N``).

Each worker shares one ``AF_UNIX`` socketpair with its supervisor, created before the fork and never
reachable by any other process: key material crosses it, so it never touches disk or the network.

Framing: ``u32 length`` (big-endian) then a body of ``length`` bytes; the body is ``u8 kind``, ``u32
request`` and the kind's fields, each as ``u32 length`` + bytes, in the order :data:`SCHEMA` gives. A
request carries a non-zero id that its reply repeats; unsolicited messages use id 0. Every body is checked
strictly: unknown kind, missing or extra fields, trailing bytes and a length over :data:`MAX_MESSAGE` raise
:class:`MalformedMessage` / :class:`MessageTooLarge` before anything acts on the message, and the peer that
sent it is treated as broken (a worker is killed and restarted; a worker whose supervisor misbehaves exits).

Messages (worker -> supervisor unless marked):

=============  ======================================================================================
``HELLO``      a starting worker (or one without keys asked to seal the node) asks for the node's state;
               reply ``STATE`` (epoch, root key or empty)
``SHARE``      one unseal share, the seal's threshold and share count, the keyring's physical key and
               encrypted blob (the supervisor proves a combined key by opening it); reply ``PROGRESS``
               or ``ERROR``
``RESET``      forget the collected shares; reply ``PROGRESS``
``STATUS``     reply ``PROGRESS`` (progress, nonce) for ``sys/seal-status``
``SEAL``       seal every worker; reply ``DONE`` once all confirmed (or were killed)
``SEAL_IF``    ``SEAL`` only if the node is still at this epoch; otherwise reply ``STATE`` (it changed: an
               unseal or a rekey the worker had not seen), so a worker without keys never undoes an unseal
``NEW_KEY``    this worker adopted a new root key (a rekey committed here); reply ``DONE``
``ACK``        confirms an ``INSTALL`` or ``SEAL_ALL`` (epoch, outcome)
``INSTALL``    supervisor -> worker: unseal with this root key (epoch)
``SEAL_ALL``   supervisor -> worker: seal now (epoch)
=============  ======================================================================================

A :class:`Message` never shows its field values in ``repr`` (they may be shares or root keys) and refuses
pickling.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, NoReturn

from strongroom.errors import (
    CorruptRecord,
    InvalidRequest,
    InvalidShare,
    NotInitialized,
    Sealed,
    StrongroomError,
)

MAX_MESSAGE = 4 * 1024 * 1024
"""Largest body accepted (a keyring blob grows by ~80 bytes per rotation: room for ~50,000 terms)."""
_HEADER = struct.Struct(">I")
_BODY_HEAD = struct.Struct(">BI")
_U64 = struct.Struct(">Q")


class LinkError(StrongroomError):
    """The supervisor link failed; the process on the other side is gone or broken."""


class LinkClosed(LinkError):
    """The peer closed the link (``truncated`` when it did so in the middle of a message)."""

    def __init__(self, truncated: bool = False) -> None:
        super().__init__(
            "the supervisor link was closed" + (" in the middle of a message" if truncated else "")
        )
        self.truncated = truncated


class MalformedMessage(LinkError):
    """A frame that does not decode as a message of this protocol."""


class MessageTooLarge(LinkError):
    """A frame announcing a body longer than :data:`MAX_MESSAGE`."""


class Kind(IntEnum):
    """Message kinds (one byte on the wire)."""

    HELLO = 1
    STATE = 2
    SHARE = 3
    PROGRESS = 4
    RESET = 5
    STATUS = 6
    SEAL = 7
    NEW_KEY = 8
    DONE = 9
    ERROR = 10
    ACK = 11
    INSTALL = 12
    SEAL_ALL = 13
    SEAL_IF = 14


SCHEMA: dict[Kind, tuple[str, ...]] = {
    Kind.HELLO: (),
    Kind.STATE: ("epoch", "root_key"),
    Kind.SHARE: ("share", "threshold", "shares", "keyring_key", "keyring"),
    Kind.PROGRESS: ("progress", "nonce"),
    Kind.RESET: (),
    Kind.STATUS: (),
    Kind.SEAL: (),
    Kind.NEW_KEY: ("root_key",),
    Kind.DONE: ("epoch",),
    Kind.ERROR: ("error", "message"),
    Kind.ACK: ("epoch", "outcome"),
    Kind.INSTALL: ("epoch", "root_key"),
    Kind.SEAL_ALL: ("epoch",),
    Kind.SEAL_IF: ("epoch",),
}
"""The fields of each kind, in wire order. Every value is bytes on the wire; ints are 8-byte big-endian."""

SECRET_FIELDS = frozenset({"root_key", "share"})
"""Fields holding key material: handled through :meth:`Message.secret`, which names the act."""


class AckOutcome(IntEnum):
    """What a worker reports in an ``ACK``."""

    OK = 0
    FAILED = 1
    """Could not apply (e.g. storage unavailable); the worker keeps trying an ``INSTALL`` on its own."""
    OBSOLETE = 2
    """The root key no longer opens the stored keyring (a rekey elsewhere): the supervisor forgets it."""


@dataclass(frozen=True, repr=False)
class Message:
    """One decoded message: its kind, request id and fields by name (bytes)."""

    kind: Kind
    request: int
    fields: dict[str, bytes]

    def __repr__(self) -> str:
        sizes = ", ".join(f"{name}:{len(value)}B" for name, value in self.fields.items())
        return f"Message({self.kind.name}, request={self.request}, {sizes})"

    __str__ = __repr__

    def __reduce__(self) -> NoReturn:
        raise TypeError("a supervisor link message may hold key material and cannot be pickled")

    def integer(self, name: str) -> int:
        """Return the unsigned integer field ``name``.

        Raises:
            MalformedMessage: the field is not 8 bytes long.
        """
        raw = self.fields[name]
        if len(raw) != _U64.size:
            raise MalformedMessage(f"{self.kind.name}.{name} is not an integer")
        value: int = _U64.unpack(raw)[0]
        return value

    def text(self, name: str) -> str:
        """Return the UTF-8 text field ``name``.

        Raises:
            MalformedMessage: the field is not UTF-8.
        """
        try:
            return self.fields[name].decode()
        except UnicodeDecodeError:
            raise MalformedMessage(f"{self.kind.name}.{name} is not UTF-8 text") from None

    def secret(self, name: str) -> bytes:
        """Return the key-material field ``name`` (a share or a root key): the one way to read it."""
        if name not in SECRET_FIELDS:
            raise KeyError(name)
        return self.fields[name]


def message(kind: Kind, request: int = 0, **values: bytes | int | str) -> Message:
    """Build a message; ints become 8-byte fields and text becomes UTF-8.

    Raises:
        ValueError: a field is missing or unknown for ``kind``, or an int is negative (a programming error).
    """
    names = SCHEMA[kind]
    if set(values) != set(names):
        raise ValueError(f"{kind.name} takes fields {names}, got {tuple(values)}")
    fields: dict[str, bytes] = {}
    for name in names:
        value = values[name]
        if isinstance(value, int):
            fields[name] = _U64.pack(value)
        elif isinstance(value, str):
            fields[name] = value.encode()
        else:
            fields[name] = bytes(value)
    return Message(kind, request, fields)


def encode(msg: Message) -> bytes:
    """Return the framed bytes of ``msg``.

    Raises:
        MessageTooLarge: the body would exceed :data:`MAX_MESSAGE`.
    """
    parts = [_BODY_HEAD.pack(int(msg.kind), msg.request)]
    for name in SCHEMA[msg.kind]:
        value = msg.fields[name]
        parts.append(_HEADER.pack(len(value)))
        parts.append(value)
    body = b"".join(parts)
    if len(body) > MAX_MESSAGE:
        raise MessageTooLarge(f"{msg.kind.name} message of {len(body)} bytes exceeds {MAX_MESSAGE}")
    return _HEADER.pack(len(body)) + body


def body_length(header: bytes, limit: int = MAX_MESSAGE) -> int:
    """Return the body length a 4-byte frame header announces.

    Raises:
        MessageTooLarge: longer than ``limit``.
        MalformedMessage: zero (a body holds at least kind and request id).
    """
    (length,) = _HEADER.unpack(header)
    if length > limit:
        raise MessageTooLarge(f"a message of {length} bytes exceeds the limit of {limit}")
    if length < _BODY_HEAD.size:
        raise MalformedMessage(f"a message of {length} bytes is shorter than its header")
    return int(length)


def decode_body(body: bytes | memoryview) -> Message:
    """Decode one message body (without its frame header).

    Raises:
        MalformedMessage: unknown kind, truncated or missing fields, or trailing bytes.
    """
    view = memoryview(body)
    if len(view) < _BODY_HEAD.size:
        raise MalformedMessage("message shorter than its header")
    kind_byte, request = _BODY_HEAD.unpack_from(view, 0)
    try:
        kind = Kind(kind_byte)
    except ValueError:
        raise MalformedMessage(f"unknown message kind {kind_byte}") from None
    offset = _BODY_HEAD.size
    fields: dict[str, bytes] = {}
    for name in SCHEMA[kind]:
        if offset + _HEADER.size > len(view):
            raise MalformedMessage(f"{kind.name} message is missing its field {name!r}")
        (size,) = _HEADER.unpack_from(view, offset)
        offset += _HEADER.size
        if offset + size > len(view):
            raise MalformedMessage(f"{kind.name} field {name!r} is truncated")
        fields[name] = bytes(view[offset : offset + size])
        offset += size
    if offset != len(view):
        raise MalformedMessage(f"{kind.name} message has {len(view) - offset} trailing bytes")
    return Message(kind, request, fields)


class FrameDecoder:
    """Incremental decoder for a byte stream (the supervisor's non-blocking side).

    Feed received bytes with :meth:`feed`; call :meth:`eof` when the peer closed. A frame header over the
    limit fails at once, before its body is buffered, so a broken peer cannot make the supervisor buffer
    gigabytes.
    """

    def __init__(self, limit: int = MAX_MESSAGE) -> None:
        self._buffer = bytearray()
        self._limit = limit
        self._need: int | None = None

    def __repr__(self) -> str:
        return f"FrameDecoder(buffered={len(self._buffer)})"

    def feed(self, data: bytes) -> list[Message]:
        """Add received bytes; return the messages they complete, in order.

        Raises:
            MessageTooLarge: a frame announces a body over the limit.
            MalformedMessage: a complete frame does not decode.
        """
        self._buffer += data
        out: list[Message] = []
        while True:
            if self._need is None:
                if len(self._buffer) < _HEADER.size:
                    return out
                self._need = body_length(bytes(self._buffer[: _HEADER.size]), self._limit)
                del self._buffer[: _HEADER.size]
            if len(self._buffer) < self._need:
                return out
            body = bytes(self._buffer[: self._need])
            del self._buffer[: self._need]
            self._need = None
            out.append(decode_body(body))

    def eof(self) -> NoReturn:
        """The peer closed: raise :class:`LinkClosed`, marked truncated if a partial frame was buffered."""
        raise LinkClosed(truncated=bool(self._buffer) or self._need is not None)


ERROR_CLASSES: dict[str, type[StrongroomError]] = {
    cls.__name__: cls
    for cls in (StrongroomError, InvalidRequest, InvalidShare, NotInitialized, Sealed, CorruptRecord)
}
"""Error classes an ``ERROR`` reply carries by name; the worker re-raises the same class (others: the base)."""


def error_message(request: int, exc: StrongroomError) -> Message:
    """The ``ERROR`` reply for ``exc`` (its class name if registered, else the base class)."""
    name = type(exc).__name__ if ERROR_CLASSES.get(type(exc).__name__) is type(exc) else "StrongroomError"
    return message(Kind.ERROR, request, error=name, message=exc.message)


def raise_error(msg: Message) -> NoReturn:
    """Re-raise the error an ``ERROR`` reply describes (an unknown class becomes :class:`StrongroomError`)."""
    cls: Any = ERROR_CLASSES.get(msg.text("error"), StrongroomError)
    raise cls(msg.text("message"))
