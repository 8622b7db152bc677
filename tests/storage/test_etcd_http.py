"""The HTTP/1.1 response parser of the etcd client (``storage.etcd_http``), fed bytes without a server."""

from __future__ import annotations

import pytest

from strongroom.storage.etcd_http import HttpConnection

_CHUNKED = (
    b"HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nTrailer: Grpc-Trailer-Content-Type\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n"
    b'a\r\n{"code":11\r\n3;ext=1\r\n,"x\r\n5\r\n":1}\n\r\n0\r\nGrpc-Trailer-Content-Type: application/grpc\r\n\r\n'
)


class _FakeTransport:
    def __init__(self) -> None:
        self.written = b""
        self.closed = False

    def write(self, data: bytes) -> None:
        self.written += data

    def close(self) -> None:
        self.closed = True


@pytest.mark.parametrize(
    ("response", "status", "body", "reusable"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Content-Length: 99\r\n\r\n{}", 200, b"{}", True),
        (_CHUNKED, 400, b'{"code":11,"x":1}\n', True),
        (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\nx", 200, b"x", True),
        (b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx", 200, b"x", False),
        (b"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx", 200, b"x", False),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nxEXTRA", 200, b"x", False),
    ],
)
@pytest.mark.parametrize("piece", [1, 7, 10_000])
async def test_http_response_parsing(
    response: bytes, status: int, body: bytes, reusable: bool, piece: int
) -> None:
    conn = HttpConnection()
    transport = _FakeTransport()
    conn.connection_made(transport)  # type: ignore[arg-type]
    waiter = conn.request(b"POST / HTTP/1.1\r\n\r\n")
    for i in range(0, len(response), piece):  # however the bytes arrive
        conn.data_received(response[i : i + piece])
    assert await waiter == (status, body)
    assert conn.reusable is reusable


async def test_http_body_until_close_and_malformed_answers() -> None:
    conn = HttpConnection()
    conn.connection_made(_FakeTransport())  # type: ignore[arg-type]
    waiter = conn.request(b"x")
    conn.data_received(b"HTTP/1.1 200 OK\r\n\r\nall of it")
    conn.connection_lost(None)
    assert await waiter == (200, b"all of it")
    for bad in [b"SPDY/9 200 OK\r\n\r\n", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"]:
        conn = HttpConnection()
        conn.connection_made(_FakeTransport())  # type: ignore[arg-type]
        waiter = conn.request(b"x")
        conn.data_received(bad)
        with pytest.raises(ConnectionError):
            await waiter
        assert conn.closed
