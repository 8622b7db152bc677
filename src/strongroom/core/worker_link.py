"""A worker process's end of the supervisor link: the node's unseal ceremony and seal, seen from a worker.

:class:`WorkerLink` is the :class:`~strongroom.core.vault.UnsealCoordinator` of the worker's root vault:
``sys/unseal``, ``sys/seal`` and ``sys/seal-status`` go to the supervisor, which holds the node's progress
and root key (:mod:`strongroom.core.node_unseal`); ``sys/seal`` does so also when this worker holds no
keys (:meth:`WorkerLink.seal_unless_unsealed`), since the node may hold them all the same. It also applies
what the supervisor pushes: ``INSTALL`` (unseal with this root key) and ``SEAL_ALL``, each acknowledged so
the request that caused them returns only once every worker applied them.

Ordering: a ``SEAL_ALL`` is applied at once (synchronously); an ``INSTALL`` needs a storage read (the
keyring) and is applied only if no later message (higher epoch) arrived meanwhile, so a seal is never
undone by an install that was still in flight.

When the link breaks (the supervisor died or sent garbage) every pending call fails with
:class:`~strongroom.core.supervisor_link.LinkError` and ``on_lost`` runs: the worker stops serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import socket
from collections.abc import Callable, Coroutine
from typing import Any

from strongroom.core.namespace import NamespaceKeys
from strongroom.core.seal import SealConfig
from strongroom.core.supervisor_link import (
    AckOutcome,
    Kind,
    LinkClosed,
    LinkError,
    Message,
    body_length,
    decode_body,
    encode,
    message,
    raise_error,
)
from strongroom.core.vault import Vault
from strongroom.crypto.secret import SecretBytes
from strongroom.errors import InvalidShare, Sealed, StrongroomError

log = logging.getLogger("strongroom.worker")

REQUEST_TIMEOUT = 120.0
"""Longest wait for a reply; the supervisor answers at once or after its acknowledgement timeout."""
INSTALL_RETRY_MAX = 10.0
"""Longest pause between attempts to apply an ``INSTALL`` while storage is unavailable."""
SEAL_ROUNDS = 3
"""How often :meth:`WorkerLink.seal_unless_unsealed` looks again when the node changed while it looked."""


class WorkerLink:
    """The worker side of one supervisor link (see the module docstring). Use on one event loop."""

    def __init__(self, sock: socket.socket, vault: Vault, on_lost: Callable[[], None] | None = None) -> None:
        self._sock = sock
        self.vault = vault
        self.on_lost = on_lost
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Message]] = {}
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._epoch = 0
        self._applying = False
        self._lost: LinkError | None = None
        self.unsealed = asyncio.Event()
        """Set whenever the supervisor's key was installed here (dev-mode workers wait for it)."""

    def __repr__(self) -> str:
        return f"WorkerLink(epoch={self._epoch}, lost={self._lost is not None})"

    async def start(self) -> None:
        """Connect, ask the supervisor for the node's state and install its root key if it holds one.

        Raises:
            LinkError: the supervisor did not answer.
        """
        self._sock.setblocking(False)
        reader, self._writer = await asyncio.open_connection(sock=self._sock)
        self._reader_task = asyncio.get_running_loop().create_task(self._read(reader))
        state = await self._request(message(Kind.HELLO))
        key = state.secret("root_key")
        epoch = state.integer("epoch")
        self._epoch = max(self._epoch, epoch)
        if key:
            # Applied before the worker serves: a restarted worker answers unsealed from its first request.
            await self._install(epoch, SecretBytes(key, kind="root key"), acknowledge=False)

    async def close(self) -> None:
        """Close the link (the supervisor sees EOF) and stop the tasks it started."""
        self.on_lost = None
        if self._reader_task is not None:
            self._reader_task.cancel()
        for task in list(self._tasks):
            task.cancel()
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(Exception):
                await self._writer.wait_closed()
        self._fail(LinkClosed())

    # --- UnsealCoordinator ------------------------------------------------------------------------------

    async def submit(self, share: bytes, config: SealConfig, keyring_key: bytes, keyring: bytes) -> None:
        """Send a share to the supervisor; see :meth:`strongroom.core.vault.UnsealCoordinator.submit`.

        Raises:
            InvalidShare, InvalidRequest: as the supervisor's ceremony decided.
            LinkError: the supervisor is gone.
        """
        await self._request(
            message(
                Kind.SHARE,
                share=share,
                threshold=config.secret_threshold,
                shares=config.secret_shares,
                keyring_key=keyring_key,
                keyring=keyring,
            )
        )

    async def reset(self) -> None:
        """Reset the node's unseal progress. Raises :class:`LinkError` if the supervisor is gone."""
        await self._request(message(Kind.RESET))

    async def progress(self) -> tuple[int, str]:
        """Return the node's ``(progress, nonce)``. Raises :class:`LinkError` if the supervisor is gone."""
        reply = await self._request(message(Kind.STATUS))
        return reply.integer("progress"), reply.text("nonce")

    async def seal(self) -> None:
        """Seal every worker; returns once all confirmed (the supervisor kills a worker that does not).

        If the supervisor is gone this worker seals itself and is about to exit anyway.

        Raises:
            LinkError: the supervisor is gone (this worker is sealed all the same).
        """
        try:
            await self._request(message(Kind.SEAL))
        finally:
            self._apply_seal()

    async def seal_unless_unsealed(self) -> bool:
        """``sys/seal`` through this worker while it holds no keys: return whether the node is sealed now.

        The node may be unsealed all the same: this worker saw another worker's rekey commit a moment before
        the supervisor handed it the new key (and sealed itself), or its ``INSTALL`` still waits for storage.
        So it takes the node's root key from the supervisor: if that key opens the stored keyring, the worker
        installs it and returns ``False``, and the caller checks the token and seals as on any unsealed node.
        Otherwise (no key, or one made obsolete by a rekey on another node) nothing serves with the node's key:
        it seals every worker, one still holding keys of its own included, without a token as Vault seals a
        sealed node, and returns ``True``. The supervisor seals only if the node is still at the epoch the
        worker looked at (``SEAL_IF``), so an unseal completing meanwhile is never undone by a caller whose
        token nobody checked; the worker then looks again.

        Raises:
            Sealed: the node changed :data:`SEAL_ROUNDS` times while this call looked (the caller may retry).
            LinkError: the supervisor is gone, or answered ``SEAL_IF`` with neither ``DONE`` nor ``STATE``.
            StrongroomError: the keyring could not be read (storage unavailable).
        """
        # The test of this race (tests/cli/test_workers_seal_race.py) waits for this line.
        log.debug("sys/seal through a worker without keys: asking the supervisor for the node's state")
        state = await self._request(message(Kind.HELLO))
        for _ in range(SEAL_ROUNDS):
            epoch, key = state.integer("epoch"), state.secret("root_key")
            self._epoch = max(self._epoch, epoch)
            if key and await self._take(epoch, SecretBytes(key, kind="root key")):
                return False
            state = await self._request(message(Kind.SEAL_IF, epoch=epoch))
            if state.kind is Kind.DONE:
                self._apply_seal()  # done by the SEAL_ALL already (this worker confirmed it): no harm twice
                return True
            if state.kind is not Kind.STATE:
                raise LinkError(f"the supervisor answered SEAL_IF with {state.kind.name}")
        raise Sealed()

    async def _take(self, epoch: int, root_key: SecretBytes) -> bool:
        """Install the node's ``root_key`` of ``epoch`` if it opens the stored keyring and this worker is still
        sealed; return whether this worker holds keys now.

        Raises:
            StrongroomError: the keyring could not be read.
        """
        try:
            keys = await self.vault.load_keys(root_key)
        except InvalidShare:
            # Obsolete: rekeyed on another node. (Or, for the instant between a rekey's commit in another
            # worker and its NEW_KEY reaching the supervisor, the old key: the caller then seals the node
            # without a token, failing closed; the window is that one hand-over.)
            return False
        if self.vault.sealed:
            self._apply_install(epoch, keys)
        return not self.vault.sealed

    def root_key_changed(self, root_key: SecretBytes) -> None:
        """Hand the node a root key a rekey committed in this worker (ignored while applying ``INSTALL``)."""
        if self._applying or self._lost is not None:
            return
        self._spawn(self._send_new_key(root_key))

    async def _send_new_key(self, root_key: SecretBytes) -> None:
        try:
            await self._request(message(Kind.NEW_KEY, root_key=root_key.reveal()))
        except LinkError:
            log.error("could not hand the new root key to the supervisor: the link is gone")

    # --- transport ----------------------------------------------------------------------------------------

    async def _request(self, msg: Message) -> Message:
        if self._lost is not None:
            raise self._lost
        assert self._writer is not None, "start() first"
        request = next(self._ids)
        future: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._pending[request] = future
        try:
            self._writer.write(encode(Message(msg.kind, request, msg.fields)))
            try:
                reply = await asyncio.wait_for(future, REQUEST_TIMEOUT)
            except TimeoutError:
                raise LinkError(f"the supervisor did not answer {msg.kind.name}") from None
        finally:
            self._pending.pop(request, None)
        if reply.kind is Kind.ERROR:
            raise_error(reply)
        return reply

    async def _read(self, reader: asyncio.StreamReader) -> None:
        error: LinkError
        try:
            while True:
                try:
                    header = await reader.readexactly(4)
                except asyncio.IncompleteReadError as exc:
                    raise LinkClosed(truncated=bool(exc.partial)) from None
                try:
                    body = await reader.readexactly(body_length(header))
                except asyncio.IncompleteReadError:
                    raise LinkClosed(truncated=True) from None
                self._dispatch(decode_body(body))
        except LinkError as exc:
            error = exc
        except (OSError, StrongroomError) as exc:
            error = LinkError(f"the supervisor link failed: {type(exc).__name__}")
        if not isinstance(error, LinkClosed) or error.truncated:
            log.error("supervisor link broken: %s", error.message)
        self._fail(error)

    def _fail(self, error: LinkError) -> None:
        if self._lost is None:
            self._lost = error
            callback, self.on_lost = self.on_lost, None
            if callback is not None:
                callback()
        for future in self._pending.values():
            if not future.done():
                future.set_exception(error)
        self._pending.clear()

    def _dispatch(self, msg: Message) -> None:
        if msg.request:
            future = self._pending.get(msg.request)
            if future is not None and not future.done():
                future.set_result(msg)
            return
        if msg.kind is Kind.SEAL_ALL:
            epoch = msg.integer("epoch")
            self._epoch = max(self._epoch, epoch)
            self._apply_seal()
            self._send(message(Kind.ACK, epoch=epoch, outcome=AckOutcome.OK))
        elif msg.kind is Kind.INSTALL:
            epoch = msg.integer("epoch")
            self._epoch = max(self._epoch, epoch)
            self._spawn(self._install(epoch, SecretBytes(msg.secret("root_key"), kind="root key")))
        else:
            raise LinkError(f"unexpected {msg.kind.name} message from the supervisor")

    def _send(self, msg: Message) -> None:
        if self._writer is not None and self._lost is None:
            self._writer.write(encode(msg))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _apply_seal(self) -> None:
        self._applying = True
        try:
            self.vault.seal()
        finally:
            self._applying = False
        self.unsealed.clear()

    async def _install(self, epoch: int, root_key: SecretBytes, *, acknowledge: bool = True) -> None:
        """Open the keyring with ``root_key`` and install the keys unless a later message overtook it."""
        delay, acknowledged = 0.5, not acknowledge
        while epoch == self._epoch:
            try:
                keys = await self.vault.load_keys(root_key)
            except InvalidShare:
                log.warning(
                    "the node's root key no longer opens the keyring (rekeyed elsewhere); staying sealed"
                )
                # Sent even for the key a HELLO brought: the supervisor must stop handing it out.
                self._send(message(Kind.ACK, epoch=epoch, outcome=AckOutcome.OBSOLETE))
                return
            except StrongroomError as exc:
                log.warning("cannot install the node's keys yet (%s); retrying", type(exc).__name__)
                if not acknowledged:
                    self._send(message(Kind.ACK, epoch=epoch, outcome=AckOutcome.FAILED))
                    acknowledged = True
                await asyncio.sleep(delay)
                delay = min(delay * 2, INSTALL_RETRY_MAX)
                continue
            self._apply_install(epoch, keys)
            break
        if not acknowledged:
            self._send(message(Kind.ACK, epoch=epoch, outcome=AckOutcome.OK))

    def _apply_install(self, epoch: int, keys: NamespaceKeys) -> None:
        """Install the node's ``keys`` of ``epoch`` unless a later message (higher epoch) overtook them."""
        if epoch != self._epoch:
            return
        self._applying = True
        try:
            self.vault.install(keys)
            # A new root key may come with a new share configuration (a rekey in another worker).
            self.vault.forget_config()
        finally:
            self._applying = False
        self.unsealed.set()
