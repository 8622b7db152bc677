"""Client of etcd's JSON gateway (``/v3/...``) with fail-over between members, TLS and authentication.

Requests travel over :class:`~strongroom.storage.etcd_http.HttpConnection` (keep-alive HTTP/1.1, one
request per connection at a time, a pool per member).

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
* TLS (``ssl_context``): every member is verified against the context's CAs and its host name; a client
  certificate in the context is presented (etcd's ``--client-cert-auth``).
* Authentication (``credentials``): the client logs in (``/v3/auth/authenticate``) before its first
  request and sends the token in ``Authorization``; an expired token is replaced once per request. A
  refused login raises ``StorageUnavailable``; the password appears in no message.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import ssl
from typing import Any

import orjson

from strongroom.errors import RecordTooLarge, StorageError, StorageUnavailable, TransactionConflict
from strongroom.storage.etcd_http import HttpConnection

__all__ = ["EtcdClient", "EtcdError", "Leases", "storage_error"]

_IDLE_PER_MEMBER = 32
# gRPC status codes that mean "this member cannot answer now; another one may".
_UNAVAILABLE = 14
_DEADLINE_EXCEEDED = 4
_RESOURCE_EXHAUSTED = 8
_INVALID_ARGUMENT = 3
_OUT_OF_RANGE = 11
_UNAUTHENTICATED = 16
_LOGIN = "/v3/auth/authenticate"
_SWEEP = 0.05  # seconds between checks for requests past their deadline


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
        ssl_context: ssl.SSLContext | None = None,
        credentials: tuple[str, str] | None = None,
    ) -> None:
        if not endpoints:
            raise ValueError("at least one endpoint is needed")
        self.endpoints = list(endpoints)
        self.timeout = timeout
        self.attempt_timeout = attempt_timeout
        self._max_connections = max_connections
        self._slots: asyncio.Semaphore | None = None
        self._current = 0
        self._idle: list[list[HttpConnection]] = [[] for _ in endpoints]
        self._closed = False
        self._heads: dict[tuple[int, str, bool], bytes] = {}  # request heads up to Content-Length
        self._ssl = ssl_context
        self._credentials = credentials
        self._token = b""
        self._login: asyncio.Future[bytes] | None = None
        self._inflight: dict[HttpConnection, float] = {}  # connection -> deadline of its request
        self._sweeper: asyncio.TimerHandle | None = None

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
        renewed = False
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise StorageUnavailable(f"etcd: no member answered within {self.timeout:g}s ({last})")
            index = self._current
            host, port = self.endpoints[index]
            head = self._heads.get((index, path, require_leader))
            if head is None:
                authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"  # IPv6 in brackets
                head = (
                    f"POST {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\n"
                ).encode()
                if require_leader:
                    head += b"Grpc-Metadata-Hasleader: true\r\n"
                self._heads[(index, path, require_leader)] = head
            auth = b""
            if self._credentials is not None and path != _LOGIN:
                auth = b"Authorization: %s\r\n" % (self._token or await self._authenticate(deadline))
            request = b"%s%sContent-Length: %d\r\n\r\n%s" % (head, auth, len(body), body)
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
                if auth and not renewed and (code == _UNAUTHENTICATED or "auth store is old" in message):
                    # The token expired (or the auth store changed): log in again, same member.
                    renewed, self._token = True, b""
                    continue
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
        conn: HttpConnection | None = None
        sent = False
        idle = self._idle[index]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + min(remaining, self.attempt_timeout)
        try:
            while idle:
                candidate = idle.pop()
                if not candidate.closed:
                    conn = candidate
                    break
            fresh = conn is None
            if conn is None:
                conn = await self._connect(index, deadline)
            try:
                sent = True
                status, answer = await self._exchange(conn, request, deadline)
            except ConnectionError:
                if fresh:
                    raise
                # A kept connection the member had already closed: try once on a new one.
                conn.close()
                conn = await self._connect(index, deadline)
                status, answer = await self._exchange(conn, request, deadline)
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

    async def _exchange(self, conn: HttpConnection, request: bytes, deadline: float) -> tuple[int, bytes]:
        """Send ``request`` on ``conn`` and wait for the answer, failing with ``TimeoutError`` by
        ``deadline`` (give or take :data:`_SWEEP` seconds).

        Why not ``asyncio.timeout``: each arms and disarms a timer, which measured here cost 20-30 us of
        CPU per request under uvloop, a third of the request. One sweep timer serves all requests instead.
        """
        waiter = conn.request(request)
        self._inflight[conn] = deadline
        if self._sweeper is None:
            self._sweeper = asyncio.get_running_loop().call_later(_SWEEP, self._sweep)
        try:
            return await waiter
        finally:
            self._inflight.pop(conn, None)

    def _sweep(self) -> None:
        """Fail the requests whose deadline passed; run again while requests are in flight."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        for conn, deadline in list(self._inflight.items()):
            if deadline <= now:
                del self._inflight[conn]
                conn.abort(TimeoutError())
        self._sweeper = loop.call_later(_SWEEP, self._sweep) if self._inflight else None

    async def _connect(self, index: int, deadline: float) -> HttpConnection:
        host, port = self.endpoints[index]
        loop = asyncio.get_running_loop()
        async with asyncio.timeout_at(deadline):  # rare: connections are kept
            _, conn = await loop.create_connection(
                HttpConnection, host, port, ssl=self._ssl, server_hostname=host if self._ssl else None
            )
        return conn

    async def _authenticate(self, deadline: float) -> bytes:
        """Log in (one login at a time; concurrent requests share it) and return the token."""
        if self._login is None:
            self._login = asyncio.ensure_future(self._log_in(deadline))
        # Shielded: one waiter being cancelled must not cancel the login the others wait for.
        return await asyncio.shield(self._login)

    async def _log_in(self, deadline: float) -> bytes:
        assert self._credentials is not None
        name, password = self._credentials
        try:
            body = orjson.dumps({"name": name, "password": password})
            answer, _ = await self._call(_LOGIN, body, True, deadline)
            token = str(answer["token"]).encode()
            if not token or b"\r" in token or b"\n" in token:
                raise StorageUnavailable("etcd answered the login with a malformed token")
            self._token = token
            return token
        except EtcdError as exc:
            raise StorageUnavailable(f"etcd refused the login of user {name!r} ({exc.message})") from None
        except (KeyError, TypeError):
            raise StorageUnavailable("etcd answered the login with a malformed document") from None
        finally:
            self._login = None

    async def close(self) -> None:
        """Close every kept connection; later calls raise ``StorageUnavailable``."""
        self._closed = True
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for idle in self._idle:
            while idle:
                idle.pop().close()


class Leases:
    """The lease a store attaches its short-lived keys to: a new one is granted every ``renew`` seconds
    (no keep-alive stream), so each lives ``ttl`` seconds after its grant at least, and then expires."""

    def __init__(self, client: EtcdClient, ttl: int, renew: float) -> None:
        self._client = client
        self._ttl = ttl
        self._renew = renew
        self._lease: tuple[int, float] | None = None  # (id, event-loop time when it was asked for)
        self._grant: asyncio.Future[int] | None = None

    @property
    def lease(self) -> int | None:
        """The current lease id, if any."""
        return self._lease[0] if self._lease is not None else None

    async def current(self) -> int:
        """A lease granted less than ``renew`` seconds ago.

        Raises:
            StorageUnavailable: no member granted one in time.
        """
        if self._lease is not None and asyncio.get_running_loop().time() - self._lease[1] < self._renew:
            return self._lease[0]
        if self._grant is None:
            self._grant = asyncio.ensure_future(self._request())
        # Shielded: one waiter being cancelled must not cancel the grant the others wait for.
        return await asyncio.shield(self._grant)

    def forget(self) -> None:
        """Drop the current lease (etcd said it no longer exists)."""
        self._lease = None

    async def revoke(self) -> None:
        """Revoke the current lease, best effort (it expires by itself anyway)."""
        lease, self._lease = self._lease, None
        if lease is not None:
            with contextlib.suppress(StorageError, EtcdError):
                await self._client.call("/v3/lease/revoke", {"ID": lease[0]})

    async def _request(self) -> int:
        try:
            asked = asyncio.get_running_loop().time()
            answer, _ = await self._client.call("/v3/lease/grant", {"TTL": self._ttl})
            lease = int(answer["ID"])
            self._lease = (lease, asked)
            return lease
        except EtcdError as exc:
            raise storage_error(exc) from None
        except (KeyError, TypeError, ValueError):
            raise StorageUnavailable("etcd answered a lease grant with a malformed document") from None
        finally:
            self._grant = None
