"""The HTTP/1.1 connection that carries requests to etcd's JSON gateway (used by ``storage.etcd_client``).

Why not a general HTTP or gRPC library: per request it costs the caller about 3-4x less CPU than
``grpc.aio`` or aiohttp and 15x less than httpx (docs/dependencies.md, "etcd client"), and the server's
per-request budget is tens of microseconds. The subset of HTTP/1.1 it speaks is small: one request at a
time per connection (no pipelining), responses framed by ``Content-Length``, ``chunked`` (with trailers,
which the gateway sends on errors) or connection close. A malformed answer closes the connection and
fails the request with ``ConnectionError``; bytes after an answer make the connection unusable.
"""

from __future__ import annotations

import asyncio
from typing import cast

__all__ = ["HttpConnection"]

_MAX_HEAD = 64 * 1024
_MAX_BODY = 512 * 1024 * 1024

# Parser states.
_HEAD, _BODY, _CHUNK_SIZE, _CHUNK_DATA, _TRAILERS, _UNTIL_CLOSE = range(6)


class HttpConnection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection carrying one request at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.reusable = False
        self._waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self._buf = bytearray()
        self._body = bytearray()
        self._state = _HEAD
        self._status = 0
        self._need = 0

    # -- asyncio.Protocol -----------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A cast, not an isinstance check: uvloop's TCP transport does not derive from asyncio.Transport.
        self.transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._state == _UNTIL_CLOSE:
            self._finish()
        else:
            self._fail(ConnectionError("connection closed by the etcd member"))

    def data_received(self, data: bytes) -> None:
        if self._waiter is None or self._waiter.done():
            self.close()  # an answer nobody asked for: the connection is out of step
            return
        self._buf += data
        try:
            self._parse()
        except (ValueError, IndexError) as exc:
            self.close()
            self._fail(ConnectionError(f"malformed HTTP response from etcd: {exc}"))

    # -- use ------------------------------------------------------------------------------------------

    def request(self, data: bytes) -> asyncio.Future[tuple[int, bytes]]:
        """Send one complete request; the future gets ``(status, body)``."""
        assert self.transport is not None
        waiter = self._waiter = asyncio.get_running_loop().create_future()
        self.reusable = False
        self._state = _HEAD
        self._body = bytearray()
        self.transport.write(data)
        return waiter

    def abort(self, exc: Exception) -> None:
        """Fail the pending request with ``exc`` and close the connection."""
        self._fail(exc)
        self.close()

    def close(self) -> None:
        """Close the connection (idempotent)."""
        self.closed = True
        self.reusable = False
        if self.transport is not None:
            self.transport.close()

    # -- response parsing -----------------------------------------------------------------------------

    def _fail(self, exc: Exception) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(exc)

    def _finish(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result((self._status, bytes(self._body)))

    def _parse(self) -> None:
        buf = self._buf
        while True:
            state = self._state
            if state == _HEAD:
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    if len(buf) > _MAX_HEAD:
                        raise ValueError("header too long")
                    return
                self._head(bytes(buf[:end]))
                del buf[: end + 4]
            elif state == _BODY:
                if len(buf) < self._need:
                    return
                self._body = buf[: self._need]
                del buf[: self._need]
                self._done(buf)
                return
            elif state == _CHUNK_SIZE:
                end = buf.find(b"\r\n")
                if end < 0:
                    if len(buf) > _MAX_HEAD:
                        raise ValueError("chunk size line too long")
                    return
                size = int(bytes(buf[:end]).split(b";", 1)[0].strip(), 16)
                del buf[: end + 2]
                if size < 0 or len(self._body) + size > _MAX_BODY:
                    raise ValueError("bad chunk size")
                self._need = size
                self._state = _CHUNK_DATA if size else _TRAILERS
            elif state == _CHUNK_DATA:
                if len(buf) < self._need + 2:
                    return
                if buf[self._need : self._need + 2] != b"\r\n":
                    raise ValueError("chunk not terminated")
                self._body += buf[: self._need]
                del buf[: self._need + 2]
                self._state = _CHUNK_SIZE
            elif state == _TRAILERS:
                end = buf.find(b"\r\n")
                if end < 0:
                    return
                del buf[: end + 2]
                if end == 0:  # the empty line after the trailers (the gateway sends some on errors)
                    self._done(buf)
                    return
            else:  # _UNTIL_CLOSE: the body ends when the member closes the connection
                self._body += buf
                buf.clear()
                if len(self._body) > _MAX_BODY:
                    raise ValueError("response too large")
                return

    def _head(self, head: bytes) -> None:
        line_end = head.find(b"\r\n")
        version, status = head[: line_end if line_end >= 0 else None].split(b" ", 2)[:2]
        if not version.startswith(b"HTTP/1."):
            raise ValueError("not an HTTP/1.x response")
        self._status = int(status)
        if 100 <= self._status < 200:
            return  # an interim answer: the real one follows
        # Three searches instead of splitting every header line: the answers carry about ten headers.
        lower = head.lower()
        length = _header(lower, b"\r\ncontent-length:")
        connection = _header(lower, b"\r\nconnection:")
        chunked = b"chunked" in (_header(lower, b"\r\ntransfer-encoding:") or b"")
        self.reusable = b"close" not in connection if connection is not None else version == b"HTTP/1.1"
        if chunked:
            self._state = _CHUNK_SIZE
        elif length is not None:
            self._need = int(length)
            if not 0 <= self._need <= _MAX_BODY:
                raise ValueError("bad content length")
            self._state = _BODY
        else:
            self._state, self.reusable = _UNTIL_CLOSE, False

    def _done(self, rest: bytearray) -> None:
        if rest:
            self.reusable = False  # bytes after the answer: the stream cannot be trusted further
        self._finish()


def _header(lower_head: bytes, name: bytes) -> bytes | None:
    """The value of header ``name`` (``b"\\r\\nname:"``, lower case) in a lower-cased head, or ``None``."""
    start = lower_head.find(name)
    if start < 0:
        return None
    start += len(name)
    end = lower_head.find(b"\r\n", start)
    return lower_head[start : end if end >= 0 else None].strip()
