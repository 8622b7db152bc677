"""HTTP-stack benchmark: the same tiny transit-like endpoint on several ASGI stacks.

Endpoints (identical behaviour on every stack):

- ``POST /v1/transit/encrypt/bench`` with ``{"plaintext": b64(1 KiB)}`` and an ``X-Vault-Token``
  header (constant-time compared) -> ``{"request_id": uuid, "data": {"ciphertext": b64}}`` where
  the ciphertext is AES-256-GCM (``cryptography``) of the decoded plaintext, nonce prepended.
- ``GET /v1/sys/noop``: the same auth check, then a constant JSON body. This is "our no-op"
  baseline that later benchmarks (bench/kv.py, bench/transit.py) compare against.

Stacks: raw ASGI with a thin dict router (+ orjson), Starlette (Route + ``Request.body`` +
orjson), Starlette the idiomatic way (``request.json()`` + ``JSONResponse``, i.e. stdlib json),
and FastAPI if it happens to be installed (it is not a dependency). Servers: uvicorn
(httptools + uvloop) and granian (ASGI, uvloop) if installed.

Run: ``.venv/bin/python -m bench.http_stack [--quick] [--duration S] [--rounds N] [--json OUT]``.
Every server config is started fresh each round and the configs are interleaved (A, B, C, A,
B, C, ...) so background load on a shared machine spreads over all of them; medians are
reported with every round's value.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hmac
import importlib.metadata
import importlib.util
import json
import os
import platform
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

TOKEN = "s.benchmark-token-0123456789abcdef"
ENCRYPT_PATH = "/v1/transit/encrypt/bench"
NOOP_PATH = "/v1/sys/noop"
_TOKEN_B = TOKEN.encode()
# One random key per server process: the benchmark measures cost, not key management.
_AEAD = AESGCM(AESGCM.generate_key(bit_length=256))
NOOP_DOC: dict[str, Any] = {"request_id": "00000000-0000-0000-0000-000000000000", "data": {"ok": True}}
_NOOP_BYTES = orjson.dumps(NOOP_DOC)
_FORBIDDEN_BYTES = orjson.dumps({"errors": ["permission denied"]})
_JSON_HEADERS = [(b"content-type", b"application/json")]


def _token_ok(value: bytes | None) -> bool:
    """Constant-time token check (hmac.compare_digest), so timing does not leak the prefix."""
    return value is not None and hmac.compare_digest(value, _TOKEN_B)


def encrypt_b64(plaintext_b64: str) -> str:
    """AES-256-GCM encrypt base64 plaintext; returns base64(nonce || ciphertext || tag)."""
    plaintext = base64.b64decode(plaintext_b64, validate=True)
    nonce = os.urandom(12)
    return base64.b64encode(nonce + _AEAD.encrypt(nonce, plaintext, None)).decode()


def encrypt_doc(plaintext_b64: str) -> dict[str, Any]:
    """The Vault-shaped response document for an encrypt request."""
    return {"request_id": str(uuid.uuid4()), "data": {"ciphertext": encrypt_b64(plaintext_b64)}}


def request_body() -> bytes:
    """The benchmark request body: 1 KiB of random plaintext, base64, as JSON."""
    return orjson.dumps({"plaintext": base64.b64encode(os.urandom(1024)).decode()})


# --------------------------------------------------------------------------- raw ASGI


async def _lifespan(receive: Receive, send: Send) -> None:
    """Minimal lifespan support so servers do not log a "lifespan unsupported" traceback."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _read_body(receive: Receive) -> bytes:
    """Collect the request body; the single-chunk case (the usual one) avoids a join."""
    message = await receive()
    body: bytes = message.get("body", b"")
    if not message.get("more_body", False):
        return body
    chunks = [body]
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _send_json(send: Send, status: int, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*_JSON_HEADERS, (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _raw_encrypt(scope: Scope, receive: Receive, send: Send) -> None:
    doc = orjson.loads(await _read_body(receive))
    await _send_json(send, 200, orjson.dumps(encrypt_doc(doc["plaintext"])))


async def _raw_noop(scope: Scope, receive: Receive, send: Send) -> None:
    await _send_json(send, 200, _NOOP_BYTES)


RawHandler = Callable[[Scope, Receive, Send], Awaitable[None]]


def make_raw_app(extra_routes: int = 0) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    """Raw ASGI app with a thin router: one dict lookup on (method, path), whatever the size.

    ``extra_routes`` adds dummy routes (used by the in-process micro-benchmark to show that
    a dict router does not slow down as the route table grows to Vault size).
    """
    routes: dict[tuple[str, str], RawHandler] = {
        ("POST", ENCRYPT_PATH): _raw_encrypt,
        ("PUT", ENCRYPT_PATH): _raw_encrypt,
        ("GET", NOOP_PATH): _raw_noop,
    }
    for i in range(extra_routes):
        routes[("GET", f"/v1/sys/dummy{i}")] = _raw_noop

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan":
                await _lifespan(receive, send)
            return
        handler = routes.get((scope["method"], scope["path"]))
        if handler is None:
            await _send_json(send, 404, b'{"errors":[]}')
            return
        token = None
        for name, value in scope["headers"]:
            if name == b"x-vault-token":
                token = value
                break
        if not _token_ok(token):
            await _send_json(send, 403, _FORBIDDEN_BYTES)
            return
        await handler(scope, receive, send)

    return app


raw_app = make_raw_app()

# --------------------------------------------------------------------------- Starlette


def make_starlette_app(json_lib: str = "orjson", extra_routes: int = 0, middleware: bool = True) -> Any:
    """Starlette app; ``json_lib`` "orjson" (Request.body + orjson) or "stdlib" (request.json()).

    ``extra_routes`` dummy routes are placed *before* the benchmark routes, because Starlette
    matches routes linearly and a Vault-sized API has on the order of 100 of them.
    ``middleware=False`` returns a bare ``Router`` (no ServerErrorMiddleware/ExceptionMiddleware).
    """
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route, Router

    forbidden = Response(_FORBIDDEN_BYTES, status_code=403, media_type="application/json")

    def authed(request: Request) -> bool:
        value = request.headers.get("x-vault-token")
        return _token_ok(value.encode() if value is not None else None)

    async def encrypt_orjson(request: Request) -> Response:
        if not authed(request):
            return forbidden
        doc = orjson.loads(await request.body())
        return Response(orjson.dumps(encrypt_doc(doc["plaintext"])), media_type="application/json")

    async def noop_orjson(request: Request) -> Response:
        if not authed(request):
            return forbidden
        return Response(_NOOP_BYTES, media_type="application/json")

    async def encrypt_stdlib(request: Request) -> Response:
        if not authed(request):
            return JSONResponse({"errors": ["permission denied"]}, status_code=403)
        doc = await request.json()
        return JSONResponse(encrypt_doc(doc["plaintext"]))

    async def noop_stdlib(request: Request) -> Response:
        if not authed(request):
            return JSONResponse({"errors": ["permission denied"]}, status_code=403)
        return JSONResponse(NOOP_DOC)

    if json_lib == "orjson":
        encrypt, noop = encrypt_orjson, noop_orjson
    elif json_lib == "stdlib":
        encrypt, noop = encrypt_stdlib, noop_stdlib
    else:
        raise ValueError(json_lib)
    routes = [Route(f"/v1/sys/dummy{i}/{{name}}", noop, methods=["GET"]) for i in range(extra_routes)]
    routes += [Route(ENCRYPT_PATH, encrypt, methods=["POST", "PUT"]), Route(NOOP_PATH, noop, methods=["GET"])]
    if not middleware:
        return Router(routes=routes)
    return Starlette(routes=routes)


starlette_orjson_app = make_starlette_app("orjson")
starlette_stdlib_app = make_starlette_app("stdlib")

# --------------------------------------------------------------------------- FastAPI (optional)


def make_fastapi_app() -> Any:
    """FastAPI with a pydantic body model, the idiomatic way; only if FastAPI is installed."""
    # FastAPI is optional and usually absent, so mypy may not see it.
    from fastapi import FastAPI, Header, HTTPException  # type: ignore[import-not-found, unused-ignore]
    from fastapi.responses import ORJSONResponse  # type: ignore[import-not-found, unused-ignore]
    from pydantic import BaseModel  # type: ignore[import-not-found, unused-ignore]

    class EncryptIn(BaseModel):  # type: ignore[misc, unused-ignore]
        plaintext: str

    app = FastAPI(default_response_class=ORJSONResponse)

    @app.post(ENCRYPT_PATH)  # type: ignore[untyped-decorator, unused-ignore]
    async def encrypt(body: EncryptIn, x_vault_token: str | None = Header(default=None)) -> dict[str, Any]:
        if not _token_ok(x_vault_token.encode() if x_vault_token else None):
            raise HTTPException(403, "permission denied")
        return encrypt_doc(body.plaintext)

    @app.get(NOOP_PATH)  # type: ignore[untyped-decorator, unused-ignore]
    async def noop(x_vault_token: str | None = Header(default=None)) -> dict[str, Any]:
        if not _token_ok(x_vault_token.encode() if x_vault_token else None):
            raise HTTPException(403, "permission denied")
        return NOOP_DOC

    return app


def __getattr__(name: str) -> Any:
    # Built lazily so importing this module never requires FastAPI.
    if name == "fastapi_app":
        return make_fastapi_app()
    raise AttributeError(name)


# --------------------------------------------------------------------------- in-process micro-benchmark


def _micro_call_cost(app: Any, method: str, path: str, body: bytes, n: int) -> float:
    """Mean µs per ASGI call of ``app`` driven in-process (no sockets, no HTTP parsing).

    This isolates framework + handler cost from server cost, and is far less noisy than HTTP
    load on a shared 2-core box.
    """
    headers = [(b"host", b"bench"), (b"x-vault-token", _TOKEN_B), (b"content-type", b"application/json")]
    if body:
        headers.append((b"content-length", str(len(body)).encode()))
    base_scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": headers,
        "server": ("127.0.0.1", 8200),
        "client": ("127.0.0.1", 50000),
    }
    message = {"type": "http.request", "body": body, "more_body": False}
    statuses: list[int] = []

    async def receive() -> Message:
        return message

    async def send(msg: Message) -> None:
        if msg["type"] == "http.response.start":
            statuses.append(msg["status"])

    async def loop() -> float:
        for _ in range(200):  # warm-up
            await app(dict(base_scope), receive, send)
        t0 = time.perf_counter()
        for _ in range(n):
            await app(dict(base_scope), receive, send)
        return (time.perf_counter() - t0) / n * 1e6

    runner: Callable[[Coroutine[Any, Any, float]], float] = asyncio.run
    try:
        import uvloop

        runner = uvloop.run  # the loop uvicorn uses, so the figures match the served case
    except ImportError:  # pragma: no cover - uvloop is part of uvicorn[standard]
        pass
    cost = runner(loop())
    if set(statuses) != {200}:
        raise RuntimeError(f"micro-benchmark got statuses {sorted(set(statuses))} for {path}")
    return float(cost)


def run_micro(rounds: int, n: int) -> list[dict[str, Any]]:
    """In-process ASGI dispatch cost (µs/request) for each framework shape, interleaved."""
    from bench.harness import interleave, median

    body = request_body()
    apps: dict[str, Any] = {
        "raw ASGI + dict router (3 routes)": make_raw_app(),
        "raw ASGI + dict router (+100 routes)": make_raw_app(extra_routes=100),
        "Starlette app, orjson (2 routes)": make_starlette_app("orjson"),
        "Starlette app, orjson (+100 routes first)": make_starlette_app("orjson", extra_routes=100),
        "Starlette Router only, orjson (2 routes)": make_starlette_app("orjson", middleware=False),
        "Starlette app, stdlib json (2 routes)": make_starlette_app("stdlib"),
    }
    if importlib.util.find_spec("fastapi") is not None:
        apps["FastAPI + pydantic"] = make_fastapi_app()

    def variant(app: Any) -> Callable[[int], tuple[float, float]]:
        return lambda _rnd: (
            _micro_call_cost(app, "GET", NOOP_PATH, b"", n),
            _micro_call_cost(app, "POST", ENCRYPT_PATH, body, n),
        )

    results = interleave({name: variant(app) for name, app in apps.items()}, rounds)
    return [
        {
            "app": name,
            "noop_us": median([v[0] for v in vals]),
            "encrypt_us": median([v[1] for v in vals]),
            "all_noop_us": [round(v[0], 2) for v in vals],
            "all_encrypt_us": [round(v[1], 2) for v in vals],
        }
        for name, vals in results.items()
    ]


# --------------------------------------------------------------------------- HTTP benchmark


@dataclass(frozen=True)
class StackConfig:
    """One server + app combination."""

    name: str
    app: str
    server: str


def stack_configs() -> list[StackConfig]:
    """Configs to run; optional ones only when their package is importable.

    Starlette + stdlib json runs on uvicorn only: the JSON library choice is independent of
    the server, and the 6-minute budget does not fit every combination.
    """
    configs = [
        StackConfig("uvicorn raw-ASGI", "bench.http_stack:raw_app", "uvicorn"),
        StackConfig("uvicorn starlette+orjson", "bench.http_stack:starlette_orjson_app", "uvicorn"),
        StackConfig("uvicorn starlette+stdlib-json", "bench.http_stack:starlette_stdlib_app", "uvicorn"),
    ]
    if importlib.util.find_spec("fastapi") is not None:
        configs.append(StackConfig("uvicorn fastapi", "bench.http_stack:fastapi_app", "uvicorn"))
    if importlib.util.find_spec("granian") is not None:
        configs += [
            StackConfig("granian raw-ASGI", "bench.http_stack:raw_app", "granian"),
            StackConfig("granian starlette+orjson", "bench.http_stack:starlette_orjson_app", "granian"),
        ]
    return configs


ENDPOINTS = ("encrypt", "noop")


def _specs(base: str) -> dict[str, Any]:
    from bench.harness import RequestSpec

    auth = {"X-Vault-Token": TOKEN}
    return {
        "encrypt": RequestSpec(
            base, ENCRYPT_PATH, "POST", {**auth, "Content-Type": "application/json"}, request_body()
        ),
        "noop": RequestSpec(base, NOOP_PATH, "GET", auth),
    }


def run_http(
    configs: list[StackConfig], rounds: int, duration_s: float, concurrencies: tuple[int, ...], log_dir: Path
) -> dict[tuple[str, str, int], list[Any]]:
    """Interleave configs over rounds; per config start: warm up, then every endpoint x concurrency."""
    from bench.harness import interleave, run_load, start_asgi_server

    def variant(cfg: StackConfig) -> Callable[[int], dict[tuple[str, int], Any]]:
        def run(rnd: int) -> dict[tuple[str, int], Any]:
            log = log_dir / f"{cfg.name.replace(' ', '_')}.log"
            srv, base = start_asgi_server(cfg.app, cfg.server, ready_path=NOOP_PATH, log_path=log)
            try:
                specs = _specs(base)
                # One unmeasured second at full concurrency warms the interpreter's caches and
                # the allocator; the first round would otherwise be penalised.
                run_load(specs["encrypt"], max(concurrencies), 1)
                out: dict[tuple[str, int], Any] = {}
                for endpoint in ENDPOINTS:
                    for conc in concurrencies:
                        res = run_load(specs[endpoint], conc, duration_s, server_pid=srv.pid)
                        out[(endpoint, conc)] = res
                        print(
                            f"  round {rnd + 1} {cfg.name:32s} {endpoint:7s} c={conc:<3d} "
                            f"{res.rps:9,.0f} req/s  p50 {res.p50_ms:6.2f} ms  p99 {res.p99_ms:6.2f} ms  "
                            f"cpu {res.cpu_ms_per_op or 0:.3f} ms/op  err {res.error_count}",
                            flush=True,
                        )
                return out
            finally:
                srv.stop()

        return run

    raw = interleave({cfg.name: variant(cfg) for cfg in configs}, rounds)
    merged: dict[tuple[str, str, int], list[Any]] = {}
    for name, per_round in raw.items():
        for result_map in per_round:
            for (endpoint, conc), res in result_map.items():
                merged.setdefault((name, endpoint, conc), []).append(res)
    return merged


def main(argv: list[str] | None = None) -> int:
    """CLI entry point."""
    from bench.harness import client_label, format_table, ratio_table, summarize

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 round of 1 s each (smoke test)")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per measured run (wrk: whole s)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
    parser.add_argument("--only", default="", help="comma-separated substrings of config names to run")
    parser.add_argument(
        "--no-micro", action="store_true", help="skip the in-process framework micro-benchmark"
    )
    parser.add_argument("--json", type=Path, help="write all results as JSON here")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.duration = 1, 1.0
    concurrencies = (1, 32)

    configs = stack_configs()
    if args.only:
        wanted = [w.strip() for w in args.only.split(",") if w.strip()]
        configs = [c for c in configs if any(w in c.name for w in wanted)]
    versions = {}
    for pkg in (
        "uvicorn",
        "starlette",
        "orjson",
        "granian",
        "fastapi",
        "uvloop",
        "httptools",
        "cryptography",
    ):
        try:
            versions[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            versions[pkg] = "not installed"
    print(f"client: {client_label()}; python {platform.python_version()}; cpus {os.cpu_count()}")
    print("versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    print(f"{len(configs)} configs x {args.rounds} rounds x {len(ENDPOINTS) * len(concurrencies)} runs of "
          f"{args.duration:g}s", flush=True)  # fmt: skip

    started = time.monotonic()
    micro: list[dict[str, Any]] = []
    if not args.no_micro:
        micro = run_micro(rounds=3 if not args.quick else 1, n=10000 if not args.quick else 2000)
        print("\n## In-process ASGI dispatch cost (µs/request, median of rounds)\n")
        micro_rows = [
            [
                m["app"],
                f"{m['noop_us']:.1f}",
                f"{m['encrypt_us']:.1f}",
                " / ".join(map(str, m["all_noop_us"])),
                " / ".join(map(str, m["all_encrypt_us"])),
            ]
            for m in micro
        ]
        print(
            format_table(["app", "noop µs", "encrypt µs", "noop per round", "encrypt per round"], micro_rows)
        )
        print(flush=True)

    log_dir = Path(os.environ.get("BENCH_LOG_DIR", "/tmp/bench-http-stack"))
    log_dir.mkdir(parents=True, exist_ok=True)
    merged = run_http(configs, args.rounds, args.duration, concurrencies, log_dir)
    summaries = {key: summarize(f"{key[0]}", vals) for key, vals in merged.items()}
    for endpoint in ENDPOINTS:
        for conc in concurrencies:
            rows = [
                summaries[(c.name, endpoint, conc)] for c in configs if (c.name, endpoint, conc) in summaries
            ]
            print(f"\n## {endpoint} c={conc} (medians of {args.rounds} rounds x {args.duration:g}s)\n")
            print(ratio_table(rows, baseline="uvicorn raw-ASGI"))
    elapsed = time.monotonic() - started
    print(f"\ntotal {elapsed:.0f}s")
    if args.json:
        http_rows = [
            {
                "config": k[0],
                "endpoint": k[1],
                "concurrency": k[2],
                **s.as_dict(),
                "runs": [r.as_dict() for r in merged[k]],
            }
            for k, s in summaries.items()
        ]
        args.json.write_text(
            json.dumps(
                {
                    "client": client_label(),
                    "versions": versions,
                    "rounds": args.rounds,
                    "duration_s": args.duration,
                    "micro": micro,
                    "http": http_rows,
                    "elapsed_s": round(elapsed, 1),
                },
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
