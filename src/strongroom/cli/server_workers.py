"""Wiring of ``strongroom server --workers N`` (N > 1): the supervisor's sockets and the workers' entry.

The supervisor process binds the listening sockets itself, before anything else, and forks the workers
(:class:`strongroom.core.workers.Supervisor`); it imports neither granian nor the storage layer, so no
event loop, thread or connection exists at any fork. Each worker then runs :func:`strongroom.cli.server.serve`
on an inherited socket: granian's embedded server is handed that file descriptor (a dup of it) in place of
the listener it would otherwise create.

Which sockets (docs/operations/workers.md, "Listening sockets", has the measurements):

* default: one socket per worker slot, all bound by the supervisor to the same address with
  ``SO_REUSEPORT``, so the kernel spreads connections evenly over the workers by hashing them. A plain
  bind first proves the port free, so neither a second strongroom nor any other server joins the group.
* ``--shared-listener``: one socket without ``SO_REUSEPORT`` that every worker accepts on. Measured here it
  balances worse: whichever worker wakes first may accept a whole burst of new connections, and
  keep-alive connections stay where they landed.
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
from typing import TYPE_CHECKING, Any

from strongroom.cli.config import ServerConfig
from strongroom.errors import StrongroomError

if TYPE_CHECKING:
    from strongroom.core.node import Node
    from strongroom.core.worker_link import WorkerLink
    from strongroom.core.worker_process import WorkerStart

log = logging.getLogger("strongroom.server")

BACKLOG = 1024


def run_supervisor(config: ServerConfig, args: argparse.Namespace) -> int:
    """Bind the socket, fork ``config.workers`` workers and supervise them; return the exit code."""
    from strongroom.cli.server import DEFAULT_STORAGE, Listen, node_settings
    from strongroom.clock import SystemClock
    from strongroom.core.node_unseal import NodeUnseal
    from strongroom.core.workers import Supervisor

    url = config.storage_url or DEFAULT_STORAGE
    try:
        if url.startswith(("memory:", "inmem:")):
            raise StrongroomError(
                "--workers needs a storage the worker processes share; memory storage is per process"
            )
        listen = Listen(config, args.dev)
        count = config.workers or 1
        if args.shared_listener:
            sockets = [bind_listener(listen.host, listen.port)]
        else:
            sockets = bind_listeners(listen.host, listen.port, count)
    except StrongroomError as exc:
        print(f"Error: {exc.message}", file=sys.stderr)
        return 1
    settings = node_settings(config, args.dev)
    unseal = NodeUnseal(SystemClock(), settings.unseal_expiry_seconds)

    def worker_main(start: WorkerStart) -> int:
        return _worker_main(config, args, start)

    supervisor = Supervisor(count, sockets, worker_main, unseal, dev=args.dev)
    log.info(
        "strongroom supervisor (pid %d) listening on %s://%s with %d workers",
        os.getpid(), listen.scheme, listen.display, count,
    )  # fmt: skip
    try:
        return supervisor.run()
    finally:
        for sock in sockets:
            sock.close()


def bind_listener(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    """Bind and listen on ``host:port`` (with ``SO_REUSEPORT`` only if asked).

    Raises:
        StrongroomError: the address is in use or cannot be bound.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        # Accepted connections inherit it, as with granian's own listener.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host, port))
        sock.listen(BACKLOG)
    except OSError as exc:
        sock.close()
        raise StrongroomError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    return sock


def bind_listeners(host: str, port: int, count: int) -> list[socket.socket]:
    """Bind ``count`` sockets to ``host:port`` in one ``SO_REUSEPORT`` group, after proving the port free.

    Raises:
        StrongroomError: the address is in use or cannot be bound.
    """
    from strongroom.cli.server import ensure_port_free

    # Without this, a second server setting SO_REUSEPORT (another strongroom, granian...) could join the
    # group and take part of the traffic; a plain bind fails if anything is bound there.
    ensure_port_free(host, port)
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sockets.append(bind_listener(host, port, reuse_port=True))
    except StrongroomError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def _worker_main(config: ServerConfig, args: argparse.Namespace, start: WorkerStart) -> int:
    """The forked worker: serve until told to stop; return its exit code."""
    from strongroom.cli.server import _run_loop, serve

    try:
        _run_loop(
            serve(
                config,
                dev=args.dev,
                dev_root_token_id=args.dev_root_token_id,
                worker=start,
                worker_header=args.debug_worker_header,
            )
        )
    except StrongroomError as exc:
        log.error("worker %d: %s", start.index + 1, exc.message)
        return 1
    return 0


async def join_supervisor(node: Node, start: WorkerStart) -> WorkerLink:
    """Make the supervisor link ``node``'s unseal coordinator and take the node's keys if it has them.

    Raises:
        LinkError: the supervisor did not answer.
    """
    from strongroom.core.worker_link import WorkerLink

    link = WorkerLink(start.link, node.root)
    node.root.coordinator = link
    await link.start()
    log.info("worker %d (pid %d) serving, %s", start.index + 1, os.getpid(),
             "sealed" if node.root.sealed else "unsealed")  # fmt: skip
    return link


def inherited_socket_server(app: Any, listen: socket.socket, options: dict[str, Any]) -> Any:
    """Return granian's embedded server serving ``app`` on the already-listening socket ``listen``.

    granian (2.8) builds its listener in ``_init_shared_socket``; on Linux it would bind a new
    ``SO_REUSEPORT`` socket per process. This override hands it a ``SocketHolder`` wrapping a dup of our
    descriptor instead: granian's listener owns (and at shutdown closes) the dup, ``listen`` stays ours.
    tests/cli/test_workers.py fails if a granian upgrade changes this hook.
    """
    from granian._granian import SocketHolder
    from granian.server.embed import Server

    class InheritedSocketServer(Server):
        def _init_shared_socket(self) -> None:
            fd = os.dup(listen.fileno())
            # granian's stub lacks the Linux signature (fd, is_uds, backlog) and types these as None.
            holder: Any = SocketHolder
            server: Any = self
            server._ssp = None
            server._shd = holder(fd, False, BACKLOG)
            server._sfd = fd

    return InheritedSocketServer(app, **options)
