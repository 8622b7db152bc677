"""The ASGI application: Vault's HTTP API in front of the router.

A thin raw-ASGI layer (chosen by measurement, see docs/dependencies.md): it reads the body under a size
limit, decodes JSON or form data, maps the method to a logical operation (``GET ?list=true`` and the
``LIST`` verb are both listing), finds token and namespace in the headers, and renders Vault's response
envelope. Every exception is turned into a Vault error body here and nowhere else; an unexpected one is
logged by class name only (never its message, which could hold data) and answered with a generic 500.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl

import orjson

from strongroom.api.errors import UnsupportedMediaType, error_body, status_of
from strongroom.core.node import Node
from strongroom.engines.framework import Operation, Response
from strongroom.engines.router import Incoming, Router
from strongroom.errors import (
    InvalidRequest,
    NotFound,
    RequestTooLarge,
    StrongroomError,
    UnsupportedOperation,
)

log = logging.getLogger("strongroom.api")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_METHODS = {
    "GET": Operation.READ,
    "HEAD": Operation.READ,  # only sys/health answers HEAD, as in Vault (see _handle)
    "POST": Operation.UPDATE,
    "PUT": Operation.UPDATE,
    "DELETE": Operation.DELETE,
    "LIST": Operation.LIST,
    "PATCH": Operation.PATCH,
}
MAX_FIELDS = 1000
"""Most query or form fields one request may carry (no Vault endpoint takes anywhere near as many)."""
_JSON_HEADERS = [(b"content-type", b"application/json"), (b"cache-control", b"no-store")]
_STREAM_HEADERS = [(b"content-type", b"application/octet-stream"), (b"cache-control", b"no-store")]
_RAW_BODY_PATHS = frozenset({"/v1/sys/storage/raft/snapshot", "/v1/sys/storage/raft/snapshot-force"})
"""POST/PUT bodies handed to the handler unread, as an async iterator of bytes in the ``snapshot`` field
(a snapshot file, not JSON): Vault's HTTP layer special-cases the same two paths. The handler reads it
only after the request was authorised, so no size limit applies and nothing is buffered before then."""
_MERGE_PATCH = "application/merge-patch+json"
# Go's strconv.ParseBool, which Vault uses for ``?list=``: anything else is a 400.
_GO_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_GO_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})


def envelope(response: Response, request_id: str) -> dict[str, Any]:
    """Return Vault's response envelope for ``response`` (all nine keys always present)."""
    body: dict[str, Any] = {}
    if response.sys_inject and response.data:
        body.update(response.data)
    body.update(
        {
            "request_id": request_id,
            "lease_id": "",
            "renewable": response.renewable,
            "lease_duration": response.lease_duration,
            "data": response.data,
            "wrap_info": None,
            "warnings": response.warnings or None,
            "auth": response.auth,
        }
    )
    return body


class VaultApp:
    """The ASGI callable serving ``/v1/...`` for one node."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.router = Router(node)
        self.max_body = node.settings.max_request_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        request_id = str(uuid.uuid4())
        head = scope["method"] == "HEAD"
        stream: AsyncIterator[bytes] | None = None
        first: bytes | None = None
        try:
            status, body = await self._handle(scope, receive, request_id)
            if not 200 <= status <= 599:
                # A status from a handler outside what HTTP servers accept would abort the server process
                # (granian panics on it): refuse it here, whatever produced it.
                log.error("handler status %d out of range for request %s", status, request_id)
                status, body = 500, {"errors": ["internal error"]}
            elif isinstance(body, AsyncIterator):
                # A streamed raw body: its producer runs up to its first chunk before the status line is
                # sent, so failures until then are ordinary error responses.
                first = await _first_chunk(body, status)
                stream = body
        except StrongroomError as exc:
            status, body = status_of(exc), error_body(exc)
        except Exception as exc:  # the one catch-all: never leak a traceback or its message
            log.error("internal error handling request %s: %s", request_id, type(exc).__name__)
            status, body = 500, {"errors": ["internal error"]}
        if stream is not None:
            await _send_stream(send, status, first, stream, request_id)
            return
        if body is None or status == 204:
            await send(
                {
                    "type": "http.response.start",
                    "status": status,
                    "headers": [(b"cache-control", b"no-store")],
                }
            )
            await send({"type": "http.response.body", "body": b""})
            return
        payload = orjson.dumps(body)
        headers = [*_JSON_HEADERS, (b"content-length", str(len(payload)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if head else payload})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes:
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > self.max_body:
                raise RequestTooLarge()
        chunks = []
        size = 0
        while True:
            message = await receive()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                raise RequestTooLarge()
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def _handle(self, scope: Scope, receive: Receive, request_id: str) -> tuple[int, Any]:
        path: str = scope["path"]
        if not path.startswith("/v1/"):
            raise NotFound()
        method = scope["method"]
        operation = _METHODS.get(method)
        # Vault serves HEAD only on sys/health; elsewhere it is an operation no backend implements.
        if operation is None or (method == "HEAD" and path != "/v1/sys/health"):
            raise UnsupportedOperation("")
        token = ""
        bearer = ""
        namespace = ""
        content_type = b""
        for name, value in scope["headers"]:
            if name == b"x-vault-token":
                token = value.decode("latin-1")
            elif name == b"authorization" and not bearer and value.startswith(b"Bearer "):
                # Go's check is case-sensitive; other schemes belong to plugins and are ignored.
                bearer = value[7:].decode("latin-1").strip()
            elif name == b"x-vault-namespace":
                namespace = value.decode("latin-1")
            elif name == b"content-type":
                content_type = value
        token = token or bearer
        params = _parse_query(scope.get("query_string", b""))
        if method == "GET" and "list" in params:
            listing = params.pop("list")
            flag = listing if isinstance(listing, str) else listing[0]
            if flag in _GO_TRUE:
                operation = Operation.LIST
            elif flag not in _GO_FALSE and flag != "":
                raise InvalidRequest("")
        if method in ("POST", "PUT") and path in _RAW_BODY_PATHS:
            data: dict[str, Any] = {"snapshot": _body_chunks(receive)}
        elif method in ("POST", "PUT"):
            data = _decode_body(await self._read_body(scope, receive), content_type)
        elif method == "PATCH":
            body = await self._read_body(scope, receive)
            media = content_type.split(b";", 1)[0].strip().decode("latin-1").lower()
            if media != _MERGE_PATCH:
                raise UnsupportedMediaType(f"PATCH requires Content-Type of {_MERGE_PATCH}, provided {media}")
            data = _decode_json(body)
        else:
            await self._read_body(scope, receive)  # under the size limit, and ignored, as before
            # Vault takes GET, DELETE and LIST parameters from the query string only.
            data = params
        logical = path[4:]
        if operation is Operation.LIST and not logical.endswith("/"):
            # Vault lists directories: ``LIST a/b`` is the path ``a/b/``, which is what ACL globs such as
            # ``a/b/*`` see; routes that list declare the trailing slash.
            logical += "/"
        incoming = Incoming(operation, logical, data, namespace, token, request_id)
        response = await self.router.handle(incoming)
        if response is None:
            return 204, None
        if response.raw_status is not None:
            return response.raw_status, response.raw_body
        return response.status, envelope(response, request_id)


async def _body_chunks(receive: Receive) -> AsyncIterator[bytes]:
    """The request body as it arrives (for :data:`_RAW_BODY_PATHS`).

    Raises:
        InvalidRequest: the client disconnected before the end of the body.
    """
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise InvalidRequest("client disconnected before the end of the request body")
        chunk = message.get("body", b"")
        if chunk:
            yield chunk
        if not message.get("more_body", False):
            return


async def _first_chunk(stream: AsyncIterator[bytes], status: int) -> bytes | None:
    """Run ``stream`` to its first chunk (``None`` if it has none); for a 204, run it to its end."""
    if status == 204:
        async for _ in stream:
            pass  # a 204 has no body: its producer's work is done before the status is sent
        return None
    return await anext(stream, None)


async def _send_stream(
    send: Send, status: int, first: bytes | None, stream: AsyncIterator[bytes], request_id: str
) -> None:
    """Send a streamed raw body (``application/octet-stream``, chunked) after its first chunk.

    Once the status line is out an error cannot be reported: the response is left unfinished, so the
    client sees a broken transfer (and a snapshot file without its trailer), never a clean short body.
    """
    try:
        await send({"type": "http.response.start", "status": status, "headers": _STREAM_HEADERS})
        if first is not None:
            await send({"type": "http.response.body", "body": first, "more_body": True})
            async for chunk in stream:
                if chunk:
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
    except Exception as exc:  # the client went away, or the producer failed: only the class is logged
        log.warning("streamed response %s ended early: %s", request_id, type(exc).__name__)
    finally:
        close = getattr(stream, "aclose", None)
        if close is not None:
            await close()


def _parse_query(query: bytes) -> dict[str, Any]:
    """Decode a query string as Vault does: repeated keys become lists; ``help`` is reserved."""
    if not query:
        return {}
    try:
        pairs = parse_qsl(query.decode("latin-1"), keep_blank_values=True, max_num_fields=MAX_FIELDS)
    except ValueError:
        raise InvalidRequest(f"too many query parameters (at most {MAX_FIELDS})") from None
    grouped: dict[str, list[str]] = {}
    for key, value in pairs:
        if key != "help":
            grouped.setdefault(key, []).append(value)
    return {k: v[0] if len(v) == 1 else v for k, v in grouped.items()}


def _is_form(body: bytes, content_type: bytes) -> bool:
    """Vault's rule: form only when the media type says so AND the body does not look like JSON."""
    media = content_type.split(b";", 1)[0].strip().lower()
    if media != b"application/x-www-form-urlencoded":
        return False
    head = body.lstrip(b" \t\r\n")
    return not head.startswith((b"{", b"["))


def _decode_body(body: bytes, content_type: bytes) -> dict[str, Any]:
    """Decode a PUT/POST body into a dict (JSON object, or form fields).

    Repeated form fields are joined with commas, as Vault does (every list field accepts that form).

    Raises:
        InvalidRequest: the body is neither a JSON object nor valid form data.
    """
    if not body.strip():
        return {}
    if _is_form(body, content_type):
        try:
            pairs = parse_qsl(
                body.decode("utf-8"), keep_blank_values=True, strict_parsing=True, max_num_fields=MAX_FIELDS
            )
        except (UnicodeDecodeError, ValueError):
            raise InvalidRequest("error parsing form data") from None
        # Collected in lists and joined once: joining as we go is quadratic in repeated fields, and this
        # runs before authentication.
        grouped: dict[str, list[str]] = {}
        for key, value in pairs:
            grouped.setdefault(key, []).append(value)
        return {k: ",".join(v) for k, v in grouped.items()}
    return _decode_json(body)


def _decode_json(body: bytes) -> dict[str, Any]:
    """Decode a JSON body that must be an object (``null`` and an empty body mean no parameters).

    Raises:
        InvalidRequest: malformed JSON or a JSON value that is not an object.
    """
    if not body.strip():
        return {}
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"failed to decode JSON input: {exc.msg}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        kind = "array" if isinstance(data, list) else type(data).__name__.replace("str", "string")
        raise InvalidRequest(f"failed to decode JSON input: cannot unmarshal {kind} into an object")
    return data
