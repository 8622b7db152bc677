"""``strongroom server``: run a node (optionally in dev mode) behind granian.

Without ``--dev`` the node starts sealed and, on a new store, uninitialised. ``--dev`` initialises with
one key share, unseals, mounts KV v2 at ``secret/`` and prints the unseal key and root token like
``vault server -dev``. On a persistent store (the default SQLite file under ``.strongroom/``) dev mode
keeps its data across restarts by writing the unseal key and root token to a file beside the store,
mode 0600, with a loud warning: the only case where strongroom puts a key on disk.

``--workers N`` (N > 1) runs a supervisor that binds the socket and forks N worker processes sharing it;
unseal and seal through any worker apply to all of them (docs/operations/workers.md). One worker (the
default) is one process with no supervisor, exactly as without the flag.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from strongroom.cli.config import ServerConfig, load_config, merge_flags
from strongroom.errors import StrongroomError

if TYPE_CHECKING:
    from strongroom.core.node import Node, NodeSettings
    from strongroom.core.worker_process import WorkerStart

# The server stack (node, engines, API, granian) is imported inside the functions that run a server:
# every client command of the same console script would otherwise pay ~0.2 s importing it.

DEFAULT_LISTEN = "127.0.0.1:8200"
DEFAULT_STORAGE = "sqlite:///.strongroom/strongroom.db"
DEV_KEY_FILE = "dev-unseal.json"

log = logging.getLogger("strongroom.server")


def register(sub: Any) -> None:
    """Add the ``server`` subcommand to the top-level parser's subparsers."""
    p = sub.add_parser("server", help="run a strongroom server", description=__doc__)
    p.add_argument("--config", help="HCL or JSON configuration file (Vault's format)")
    p.add_argument("--listen", help=f"HOST:PORT to listen on (default {DEFAULT_LISTEN})")
    p.add_argument("--storage", help=f"storage URL (default {DEFAULT_STORAGE}); passwords never go in it")
    p.add_argument("--tls-cert", help="PEM certificate file; serves HTTPS with --tls-key")
    p.add_argument("--tls-key", help="PEM private key file")
    p.add_argument("--tls-disable", action="store_true", default=None,
                   help="serve plain HTTP on a non-loopback address (as the listener's tls_disable = true)")
    p.add_argument("--log-level", help="trace, debug, info, warn or error")
    p.add_argument("--max-request-size", type=int, help="largest request body in bytes (default 32 MiB)")
    p.add_argument(
        "--dev", action="store_true", help="development mode: initialised, unsealed, KV v2 at secret/"
    )
    p.add_argument("--dev-root-token-id", help="fixed root token for dev mode")
    p.add_argument("--workers", type=int, help="worker processes sharing the listener (default 1)")
    p.add_argument("--unseal-expiry", metavar="DURATION",
                   help="forget an unfinished unseal/rekey/generate-root ceremony after this long (e.g. 10m)")
    # Tests and benchmarks: name the serving process in an X-Strongroom-Worker header; with --workers,
    # one listening socket shared by all workers instead of one per worker (docs/operations/workers.md).
    p.add_argument("--debug-worker-header", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--shared-listener", action="store_true", help=argparse.SUPPRESS)
    p.set_defaults(func=run)


def resolve(args: argparse.Namespace) -> ServerConfig:
    """Merge the config file (if any) and the flags; flags win."""
    config = load_config(args.config) if args.config else ServerConfig()
    return merge_flags(
        config,
        listen_address=args.listen,
        storage_url=args.storage,
        tls_cert_file=args.tls_cert,
        tls_key_file=args.tls_key,
        tls_disable=args.tls_disable,
        log_level=args.log_level,
        max_request_size=args.max_request_size,
        workers=args.workers,
        unseal_expiry=args.unseal_expiry,
    )


def run(args: argparse.Namespace) -> int:
    """Entry point of ``strongroom server``; returns the exit code."""
    try:
        config = resolve(args)
    except StrongroomError as exc:
        print(f"Error: {exc.message}", file=sys.stderr)
        return 1
    level = (config.log_level or "info").upper().replace("WARN", "WARNING").replace("TRACE", "DEBUG")
    logging.basicConfig(level=level, format="%(asctime)s [%(levelname)s] %(name)s: %(message)s")
    for warning in config.warnings:
        log.warning("%s", warning)
    if (config.workers or 1) > 1:
        from strongroom.cli.server_workers import run_supervisor

        return run_supervisor(config, args)
    try:
        _run_loop(serve(config, dev=args.dev, dev_root_token_id=args.dev_root_token_id,
                        worker_header=args.debug_worker_header))
    except StrongroomError as exc:
        print(f"Error: {exc.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    return 0


def _run_loop(main: Any) -> None:
    """Run ``main`` on uvloop when it is installed (faster), else on asyncio's default loop."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
        return
    uvloop.run(main)


def node_settings(config: ServerConfig, dev: bool) -> NodeSettings:
    """The node's settings from the configuration (the supervisor of ``--workers`` reads them too)."""
    from strongroom.core.node import NodeSettings

    return NodeSettings(
        max_request_bytes=config.max_request_size or 32 * 1024 * 1024,
        dev=dev,
        unauthenticated_rekey=not config.disable_unauthed_rekey_endpoints,
        unseal_expiry_seconds=float(config.unseal_expiry) if config.unseal_expiry else None,
    )


class Listen:
    """Where and how the server listens, checked against the plain-HTTP rule."""

    def __init__(self, config: ServerConfig, dev: bool) -> None:
        """Raises StrongroomError: plain HTTP on a non-loopback address without ``tls_disable``."""
        self.display = config.listen_address or DEFAULT_LISTEN
        host, _, port = self.display.rpartition(":")
        self.host = host.strip("[]") or "127.0.0.1"
        self.port = int(port)
        self.tls = bool(config.tls_cert_file) and not config.tls_disable
        self.scheme = "https" if self.tls else "http"
        self.cert = Path(config.tls_cert_file) if self.tls and config.tls_cert_file else None
        self.key = Path(config.tls_key_file) if self.tls and config.tls_key_file else None
        if not self.tls and not dev and not config.tls_disable and not _is_loopback(self.host):
            # As Vault: plain HTTP beyond this machine only when asked for explicitly.
            raise StrongroomError(
                f"refusing to serve plain HTTP on {self.display}: give --tls-cert/--tls-key, or set "
                "tls_disable = true in the listener block (--tls-disable) if TLS is terminated in front of "
                "strongroom"
            )


async def serve(
    config: ServerConfig,
    *,
    dev: bool,
    dev_root_token_id: str | None,
    worker: WorkerStart | None = None,
    worker_header: bool = False,
) -> None:
    """Open the store, prepare dev mode if asked, and serve until SIGINT or SIGTERM.

    The HTTP server is granian, embedded in this event loop (its Rust runtime parses HTTP on its own
    thread). uvicorn's httptools parser rejects Vault's ``LIST`` verb; see docs/dependencies.md.
    With ``worker`` (a process forked by the supervisor of ``--workers N``) it serves on the inherited
    socket and runs the node's unseal and seal through the supervisor link.
    """
    from granian.constants import Interfaces
    from granian.server.embed import Server

    from strongroom.api.app import VaultApp
    from strongroom.auth import token_cleanup
    from strongroom.core import namespace_purge, rewrap
    from strongroom.core.background import BackgroundRunner
    from strongroom.core.job_settings import apply_testing_overrides
    from strongroom.core.node import Node
    from strongroom.engines.transit import autorotate
    from strongroom.storage.url import open_store

    url = config.storage_url or DEFAULT_STORAGE
    listen = Listen(config, dev)
    if worker is None:
        ensure_port_free(listen.host, listen.port)
    store = open_store(url)
    node = Node(store, settings=node_settings(config, dev))
    link = None
    if worker is not None:
        from strongroom.cli.server_workers import join_supervisor

        link = await join_supervisor(node, worker)
    if dev and (worker is None or worker.dev_init):
        await start_dev(node, url, f"{listen.scheme}://{listen.display}", dev_root_token_id)
    elif dev and link is not None:
        # Another worker initialises and unseals; serving sealed meanwhile would fail dev-mode clients.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(link.unsealed.wait(), 60)
    options: dict[str, Any] = {
        "address": listen.host,
        "port": listen.port,
        "interface": Interfaces.ASGI,
        "ssl_cert": listen.cert,
        "ssl_key": listen.key,
        "log_enabled": False,
        "backlog": 1024,
    }
    app: Any = VaultApp(node)
    if worker_header:
        app = _with_worker_header(app)
    if worker is None:
        server = Server(app, **options)
    else:
        from strongroom.cli.server_workers import inherited_socket_server

        server = inherited_socket_server(app, worker.listen, options)
    loop = asyncio.get_running_loop()
    # A worker ignores SIGINT (Ctrl-C reaches the supervisor, which stops the workers with SIGTERM).
    for sig in (signal.SIGTERM,) if worker else (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, server.stop)
    if link is not None:
        link.on_lost = server.stop  # the supervisor is gone: a worker never outlives it
    if worker is None:
        log.info(
            "strongroom %s listening on %s://%s (storage: %s)",
            node.version, listen.scheme, listen.display, store.kind,
        )  # fmt: skip
    # Background jobs run under leases in the store, so every node may run a runner; it idles while sealed.
    runner = BackgroundRunner(node)
    runner.register(autorotate.JOB)
    runner.register(namespace_purge.JOB)  # finishes the storage purge of deleted namespaces
    runner.register(token_cleanup.JOB)  # removes dead token records in bounded batches
    rewrap.install(runner)  # re-wraps records after sys/rotate, then drops older terms (core/rewrap.py)
    apply_testing_overrides(runner)  # hidden STRONGROOM_TEST_JOB_* knobs (core/job_settings.py); unset: no-op
    runner.start()
    try:
        await server.serve()
    finally:
        await runner.stop()
        if link is not None:
            await link.close()
        await node.close()


def _with_worker_header(app: Any) -> Any:
    """Wrap ``app`` so each response names the process that served it (``--debug-worker-header``)."""
    header = (b"x-strongroom-worker", str(os.getpid()).encode())

    async def wrapped(scope: Any, receive: Any, send: Any) -> None:
        async def send_with_header(msg: Any) -> None:
            if msg["type"] == "http.response.start":
                msg = {**msg, "headers": [*msg.get("headers", []), header]}
            await send(msg)

        await app(scope, receive, send_with_header)

    return wrapped


def _is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def ensure_port_free(host: str, port: int) -> None:
    """Fail if something already listens on ``host:port``.

    granian binds with ``SO_REUSEPORT``, which would let a second strongroom share the port with the first
    and split clients between two independent servers; a plain bind first makes that an error, as in Vault.

    Raises:
        StrongroomError: the address is in use or cannot be bound.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise StrongroomError(f"cannot listen on {host}:{port}: {exc.strerror}") from None


def _dev_key_path(url: str) -> Path | None:
    """Where dev mode keeps its unseal key for a persistent store (``None`` for memory)."""
    if not url.startswith("sqlite:///"):
        return None
    # sqlite:///rel/path is relative, sqlite:////abs/path absolute: both are the text after three slashes.
    return Path(url[len("sqlite:///") :]).parent / DEV_KEY_FILE


async def start_dev(node: Node, url: str, address: str, root_token_id: str | None) -> None:
    """Initialise (or reopen) and unseal a dev-mode vault, then print how to reach it."""
    from strongroom.core.vault import InitRequest
    from strongroom.engines.bootstrap import setup_hook

    key_path = _dev_key_path(url)
    config = await node.root.seal_config()
    if config is None:
        result = await node.root.initialize(
            InitRequest(1, 1), setup_hook(node.clock, dev_kv=True, root_token_id=root_token_id)
        )
        unseal_key, root_token = result.keys_base64[0], result.root_token
        if key_path is not None:
            key_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(orjson.dumps({"unseal_key": unseal_key, "root_token": root_token}))
    else:
        if key_path is None or not key_path.exists():
            raise StrongroomError(
                "dev mode found an initialised store but no dev unseal key beside it; "
                "use a new --storage or start without --dev and unseal it"
            )
        saved = orjson.loads(key_path.read_bytes())
        unseal_key, root_token = saved["unseal_key"], saved["root_token"]
    await node.root.submit_unseal(unseal_key)
    _print_dev_banner(address, unseal_key, root_token, key_path)


def _print_dev_banner(address: str, unseal_key: str, root_token: str, key_path: Path | None) -> None:
    lines = [
        "WARNING! dev mode is enabled! In this mode, strongroom runs unsealed with a single unseal key",
        "and serves plain HTTP on loopback. Never use it for real secrets.",
        "",
    ]
    if key_path is not None:
        lines += [
            f"WARNING! The dev unseal key and root token are stored in clear in {key_path} (mode 0600)",
            "so the dev server keeps its data across restarts. This is the only case in which strongroom",
            "writes a key to disk.",
            "",
        ]
    lines += [
        "You may need to set the following environment variables:",
        "",
        f"    $ export VAULT_ADDR='{address}'",
        "",
        "The unseal key and root token are displayed below in case you want to",
        "seal/unseal the server or re-authenticate.",
        "",
        f"Unseal Key: {unseal_key}",
        f"Root Token: {root_token}",
        "",
    ]
    sys.stdout.write("\n".join(lines) + "\n")
    sys.stdout.flush()
