"""A small HTTP/1.1 client for etcd's JSON gateway (``/v3/...``), with fail-over between members.

Why not a general HTTP or gRPC library: per request it costs the caller about 3-4x less CPU than
``grpc.aio`` or aiohttp and 15x less than httpx (docs/dependencies.md, "etcd client"), and the server's
per-request budget is tens of microseconds. The subset of HTTP/1.1 it speaks is small: ``POST`` with a
``Content-Length`` body, responses framed by ``Content-Length``, ``chunked`` (with trailers, which the
gateway sends on errors) or connection close.

Guarantees:

* :meth:`EtcdClient.call` never waits longer than the client's ``timeout`` in total (each attempt is also
  bounded by ``attempt_timeout``): it then raises :class:`~strongroom.errors.StorageUnavailable`.
* A member that refuses connections, drops them, does not answer in time, or answers with a transient
  error (gRPC ``Unavailable``, ``DeadlineExceeded``, "too many requests") is left for the next member of
  the list; the request is retried there. Requests are therefore sent at least once, possibly more often:
  callers make them safe to repeat (reads are; commits carry a marker, see ``storage.etcd``), and the
  result says whether an earlier attempt may have reached etcd.
* Any other error answer is definite and raised as :class:`EtcdError` without retrying.
* No raw socket or parser exception escapes: they become retries or ``StorageUnavailable``.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any, cast

import orjson

from strongroom.errors import RecordTooLarge, StorageError, StorageUnavailable, TransactionConflict

__all__ = ["EtcdClient", "EtcdError", "storage_error"]

_MAX_HEAD = 64 * 1024
_MAX_BODY = 512 * 1024 * 1024
_IDLE_PER_MEMBER = 32
# gRPC status codes that mean "this member cannot answer now; another one may".
_UNAVAILABLE = 14
_DEADLINE_EXCEEDED = 4
_RESOURCE_EXHAUSTED = 8
_INVALID_ARGUMENT = 3
_OUT_OF_RANGE = 11

# Parser states.
_HEAD, _BODY, _CHUNK_SIZE, _CHUNK_DATA, _TRAILERS, _UNTIL_CLOSE = range(6)


class EtcdError(Exception):
    """A definite error answer from etcd: ``code`` is the gRPC status code, ``message`` etcd's text."""

    def __init__(self, code: int, message: str, maybe_sent: bool = False) -> None:
        super().__init__(f"etcd error {code}: {message}")
        self.code = code
        self.message = message
        # Whether an earlier attempt of the same call, which failed without an answer, may have applied.
        self.maybe_sent = maybe_sent


def storage_error(exc: EtcdError) -> StorageError:
    """Map a definite etcd error to strongroom's exceptions (etcd's texts name no key or value)."""
    if exc.code in (_INVALID_ARGUMENT, _RESOURCE_EXHAUSTED) and re.search(
        "too large|too many operations|larger than max", exc.message
    ):
        return RecordTooLarge(f"etcd refused the transaction as too large ({exc.message})")
    if exc.code == _OUT_OF_RANGE and "compacted" in exc.message:
        return TransactionConflict("the transaction's snapshot was compacted away by etcd")
    return StorageUnavailable(f"etcd refused the request ({exc.message})")


class _Failed(Exception):
    """An attempt failed in a way that another member (or a later attempt) may not."""


class _Connection(asyncio.Protocol):
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


def _error(body: bytes) -> tuple[int | None, str]:
    """The gRPC code and message of a gateway error answer (``{"code": N, "message": ...}``)."""
    try:
        doc = orjson.loads(body)
        return int(doc["code"]), str(doc.get("message") or doc.get("error") or "")
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None, body[:200].decode("utf-8", "replace")


def _transient(status: int, code: int | None, message: str) -> bool:
    if code in (_UNAVAILABLE, _DEADLINE_EXCEEDED):
        return True
    if code == _RESOURCE_EXHAUSTED:
        return "too many requests" in message
    return code is None and status >= 500  # a proxy or the gateway itself, not etcd


class EtcdClient:
    """Requests to an etcd cluster through any of its members (see the module docstring).

    Belongs to one event loop. ``max_connections`` bounds the requests in flight at once; further
    callers wait for a free slot, within their own ``timeout``.
    """

    def __init__(
        self,
        endpoints: list[tuple[str, int]],
        *,
        timeout: float,
        attempt_timeout: float,
        max_connections: int,
    ) -> None:
        if not endpoints:
            raise ValueError("at least one endpoint is needed")
        self.endpoints = list(endpoints)
        self.timeout = timeout
        self.attempt_timeout = attempt_timeout
        self._max_connections = max_connections
        self._slots: asyncio.Semaphore | None = None
        self._current = 0
        self._idle: list[list[_Connection]] = [[] for _ in endpoints]
        self._closed = False
        self._heads: dict[tuple[int, str, bool], bytes] = {}  # request heads up to Content-Length

    @property
    def current(self) -> int:
        """Index of the member that requests go to first."""
        return self._current

    async def call(
        self, path: str, payload: bytes | dict[str, Any], *, require_leader: bool = True
    ) -> tuple[Any, bool]:
        """POST ``payload`` (JSON text, or a document to encode) to ``path``; return
        ``(decoded answer, maybe_sent_before)``.

        ``maybe_sent_before`` is true when an earlier, failed attempt of this call may have reached etcd
        (and so may have taken effect). With ``require_leader`` a member without a leader refuses at
        once (etcd's ``hasleader`` metadata), so the request moves on instead of waiting.

        Raises:
            EtcdError: etcd answered with a definite error.
            StorageUnavailable: no member answered usefully within ``timeout``, or the client is closed.
        """
        if self._closed:
            raise StorageUnavailable("the etcd store is closed")
        body = payload if isinstance(payload, bytes) else orjson.dumps(payload)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        if self._slots is None:
            self._slots = asyncio.Semaphore(self._max_connections)
        if self._slots.locked():
            try:
                async with asyncio.timeout(self.timeout):
                    await self._slots.acquire()
            except TimeoutError:
                raise StorageUnavailable("etcd: too many requests in flight; none finished in time") from None
        else:
            await self._slots.acquire()  # free: returns at once
        try:
            return await self._call(path, body, require_leader, deadline)
        finally:
            self._slots.release()

    async def _call(self, path: str, body: bytes, require_leader: bool, deadline: float) -> tuple[Any, bool]:
        loop = asyncio.get_running_loop()
        maybe_sent = False
        failures = 0
        pause = 0.02
        last = "no attempt"
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise StorageUnavailable(f"etcd: no member answered within {self.timeout:g}s ({last})")
            index = self._current
            host, port = self.endpoints[index]
            head = self._heads.get((index, path, require_leader))
            if head is None:
                head = (
                    f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
                ).encode()
                if require_leader:
                    head += b"Grpc-Metadata-Hasleader: true\r\n"
                self._heads[(index, path, require_leader)] = head
            request = b"%sContent-Length: %d\r\n\r\n%s" % (head, len(body), body)
            try:
                status, answer, sent = await self._attempt(index, request, remaining)
            except _Failed as exc:
                maybe_sent = maybe_sent or bool(exc.args[1])
                last = f"{host}:{port}: {exc.args[0]}"
            else:
                if status == 200:
                    try:
                        return orjson.loads(answer), maybe_sent
                    except orjson.JSONDecodeError:
                        raise StorageUnavailable("etcd answered with malformed JSON") from None
                code, message = _error(answer)
                if not _transient(status, code, message):
                    raise EtcdError(code if code is not None else -1, message, maybe_sent)
                maybe_sent = maybe_sent or sent
                last = f"{host}:{port}: {message or status}"
            # Move on to the next member, unless another request already did.
            if self._current == index:
                self._current = (index + 1) % len(self.endpoints)
            failures += 1
            if failures % len(self.endpoints) == 0:
                # Every member failed once: wait a little (a leader election takes about a second).
                await asyncio.sleep(min(pause, max(0.0, deadline - loop.time())))
                pause = min(pause * 2, 0.5)

    async def _attempt(self, index: int, request: bytes, remaining: float) -> tuple[int, bytes, bool]:
        """One attempt on member ``index``: ``(status, body, sent)``; raises ``_Failed(reason, sent)``."""
        conn: _Connection | None = None
        sent = False
        idle = self._idle[index]
        try:
            async with asyncio.timeout(min(remaining, self.attempt_timeout)):
                while idle:
                    candidate = idle.pop()
                    if not candidate.closed:
                        conn = candidate
                        break
                fresh = conn is None
                if conn is None:
                    conn = await self._connect(index)
                try:
                    sent = True
                    status, answer = await conn.request(request)
                except ConnectionError:
                    if fresh:
                        raise
                    # A kept connection the member had already closed: try once on a new one.
                    conn.close()
                    conn = await self._connect(index)
                    status, answer = await conn.request(request)
        except TimeoutError:
            if conn is not None:
                conn.close()
            raise _Failed("timed out", sent) from None
        except OSError as exc:  # ConnectionError and the socket errors of connect()
            if conn is not None:
                conn.close()
            raise _Failed(str(exc) or type(exc).__name__, sent) from None
        except BaseException:
            # Cancelled mid-request: the connection is in an unknown state.
            if conn is not None:
                conn.close()
            raise
        if conn.reusable and not conn.closed and not self._closed and len(idle) < _IDLE_PER_MEMBER:
            idle.append(conn)
        else:
            conn.close()
        return status, answer, sent

    async def _connect(self, index: int) -> _Connection:
        host, port = self.endpoints[index]
        _, conn = await asyncio.get_running_loop().create_connection(_Connection, host, port)
        return conn

    async def close(self) -> None:
        """Close every kept connection; later calls raise ``StorageUnavailable``."""
        self._closed = True
        for idle in self._idle:
            while idle:
                idle.pop().close()
