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
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl

import orjson

from strongroom.api.errors import error_body, status_of
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
    "HEAD": Operation.READ,
    "POST": Operation.UPDATE,
    "PUT": Operation.UPDATE,
    "DELETE": Operation.DELETE,
    "LIST": Operation.LIST,
    "PATCH": Operation.PATCH,
}
_JSON_HEADERS = [(b"content-type", b"application/json"), (b"cache-control", b"no-store")]


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
        try:
            status, body = await self._handle(scope, receive, request_id)
        except StrongroomError as exc:
            status, body = status_of(exc), error_body(exc)
        except Exception as exc:  # the one catch-all: never leak a traceback or its message
            log.error("internal error handling request %s: %s", request_id, type(exc).__name__)
            status, body = 500, {"errors": ["internal error"]}
        if body is None or status == 204:
            await send({"type": "http.response.start", "status": status, "headers": [(b"cache-control", b"no-store")]})
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
        if operation is None:
            raise UnsupportedOperation()
        token = ""
        namespace = ""
        content_type = b""
        for name, value in scope["headers"]:
            if name == b"x-vault-token":
                token = value.decode("latin-1")
            elif name == b"authorization" and not token and value[:7].lower() == b"bearer ":
                token = value[7:].decode("latin-1").strip()
            elif name == b"x-vault-namespace":
                namespace = value.decode("latin-1")
            elif name == b"content-type":
                content_type = value
        body = await self._read_body(scope, receive)
        data = _decode_body(body, content_type)
        query = scope.get("query_string", b"")
        if query:
            params = dict(parse_qsl(query.decode("latin-1"), keep_blank_values=True))
            if params.get("list", "").lower() in ("true", "1") and operation is Operation.READ:
                operation = Operation.LIST
            if method in ("GET", "HEAD", "LIST", "DELETE"):
                params.pop("list", None)
                data = {**params, **data}
        incoming = Incoming(operation, path[4:], data, namespace, token, request_id)
        response = await self.router.handle(incoming)
        if response is None:
            return 204, None
        if response.raw_status is not None:
            return response.raw_status, response.raw_body
        return 200, envelope(response, request_id)


def _decode_body(body: bytes, content_type: bytes) -> dict[str, Any]:
    """Decode a request body into a dict (JSON object, or form fields).

    Raises:
        InvalidRequest: the body is not a JSON object (or valid form data).
    """
    if not body.strip():
        return {}
    if content_type.startswith(b"application/x-www-form-urlencoded"):
        try:
            return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=True))
        except (UnicodeDecodeError, ValueError):
            raise InvalidRequest("failed to parse form data") from None
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise InvalidRequest("failed to parse JSON input: invalid character in request body") from None
    if not isinstance(data, dict):
        raise InvalidRequest("failed to parse JSON input: expected a JSON object")
    return data
