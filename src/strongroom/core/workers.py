"""The supervisor of ``strongroom server --workers N``: forks the workers, holds the node's seal state.

The supervisor is a plain single-threaded process: it never starts an event loop, a thread, or a storage
connection, so every ``fork`` (at start and for each restart) copies a process with none of them. The
caller binds the listening socket(s) in the supervisor before anything else and passes them in: one socket
every worker accepts on, or one per worker slot (a restarted worker inherits its slot's socket, and the
connections queued on it). The workers never bind anything.

Each worker gets one end of its own ``AF_UNIX`` socketpair (:mod:`strongroom.core.supervisor_link`). The
supervisor answers workers' requests from :class:`~strongroom.core.node_unseal.NodeUnseal`:

* a share that completes the ceremony makes it broadcast ``INSTALL`` (the root key) to every worker and
  reply to the submitter once all acknowledged (or :data:`ACK_TIMEOUT` passed);
* ``SEAL`` makes it forget the key and broadcast ``SEAL_ALL``; a worker that has not acknowledged within
  :data:`ACK_TIMEOUT` is killed (``SIGKILL``), so when ``sys/seal`` returns no worker still serves keys
  (``SEAL_IF``, from a worker without keys, does the same unless the node changed since it looked);
* a worker that dies is restarted (after a growing pause if it keeps dying young) and gets the root key
  in its ``HELLO`` reply: no new ceremony. The supervisor therefore keeps the root key in memory while the
  node is unsealed; it never writes it anywhere and never logs it.

A worker never outlives its supervisor: it asks the kernel for ``SIGTERM`` when its parent dies
(``PR_SET_PDEATHSIG`` on Linux) and also stops when its link reaches EOF. ``SIGTERM``/``SIGINT`` to the
supervisor stop every worker gracefully (``SIGKILL`` after :data:`STOP_TIMEOUT`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import selectors
import signal
import socket
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from strongroom.core.node_unseal import NodeUnseal
from strongroom.core.supervisor_link import (
    AckOutcome,
    FrameDecoder,
    Kind,
    LinkError,
    MalformedMessage,
    Message,
    encode,
    error_message,
    message,
)
from strongroom.core.worker_process import WorkerMain, WorkerStart, describe_exit, detach_from_supervisor
from strongroom.crypto.secret import SecretBytes
from strongroom.errors import StrongroomError

log = logging.getLogger("strongroom.supervisor")

ACK_TIMEOUT = 10.0
"""Seconds the supervisor waits for every worker to confirm an ``INSTALL`` or ``SEAL_ALL``."""
STOP_TIMEOUT = 15.0
"""Seconds a worker has to finish its requests after ``SIGTERM`` before it is killed."""
SEND_TIMEOUT = 5.0
"""A worker whose link stays full this long is considered hung and is killed."""
_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD)


@dataclass
class _Slot:
    index: int
    pid: int = 0
    conn: socket.socket | None = None
    decoder: FrameDecoder = field(default_factory=FrameDecoder)
    started: float = 0.0
    quick_deaths: int = 0
    restart_at: float | None = 0.0
    ready: bool = False
    """It sent ``HELLO``: from then on it may hold keys, so broadcasts wait for its confirmation."""


@dataclass
class _Broadcast:
    epoch: int
    waiting: set[int]
    deadline: float
    origin: tuple[int, int, Message] | None
    """(pid, request id, reply) to send once every worker confirmed."""
    kill_laggards: bool


class Supervisor:
    """Runs ``count`` workers of ``main`` on ``listeners`` (one shared, or one per worker slot)."""

    def __init__(
        self,
        count: int,
        listeners: Sequence[socket.socket],
        main: WorkerMain,
        unseal: NodeUnseal,
        *,
        dev: bool = False,
    ) -> None:
        if count < 1:
            raise ValueError("a supervisor needs at least one worker")
        if len(listeners) not in (1, count):
            raise ValueError("give one listening socket for all workers or one per worker")
        self.listeners = list(listeners)
        self.main = main
        self.unseal = unseal
        self.dev = dev
        self.slots = [_Slot(i) for i in range(count)]
        self._by_pid: dict[int, _Slot] = {}
        self._broadcasts: list[_Broadcast] = []
        self._selector = selectors.DefaultSelector()
        self._signals: list[int] = []
        self._stopping = False
        self._wakeup_r, self._wakeup_w = -1, -1

    def __repr__(self) -> str:
        return f"Supervisor(workers={len(self.slots)}, {self.unseal!r})"

    # --- main loop -------------------------------------------------------------------------------------

    def run(self) -> int:
        """Fork the workers and supervise them until ``SIGTERM``/``SIGINT``; return the exit code."""
        self._wakeup_r, self._wakeup_w = os.pipe()
        os.set_blocking(self._wakeup_r, False)
        os.set_blocking(self._wakeup_w, False)
        previous = {sig: signal.signal(sig, self._on_signal) for sig in _SIGNALS}
        signal.set_wakeup_fd(self._wakeup_w, warn_on_full_buffer=False)
        self._selector.register(self._wakeup_r, selectors.EVENT_READ, None)
        try:
            while not self._stopping:
                self._restart_due()
                for key, _ in self._selector.select(self._next_timeout()):
                    if key.data is None:
                        self._drain_wakeup()
                    else:
                        self._readable(key.data)
                self._handle_signals()
                self._expire_broadcasts()
            self._shutdown()
        finally:
            signal.set_wakeup_fd(-1)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self._selector.close()
            os.close(self._wakeup_r)
            os.close(self._wakeup_w)
        return 0

    def _on_signal(self, signum: int, frame: object) -> None:
        self._signals.append(signum)

    def _drain_wakeup(self) -> None:
        with contextlib.suppress(BlockingIOError):
            while os.read(self._wakeup_r, 512):
                pass

    def _handle_signals(self) -> None:
        signals, self._signals = self._signals, []
        if signal.SIGTERM in signals or signal.SIGINT in signals:
            log.info("stopping %d workers", len(self.slots))
            self._stopping = True
        self._reap()

    def _next_timeout(self) -> float | None:
        deadlines = [b.deadline for b in self._broadcasts]
        deadlines += [s.restart_at for s in self.slots if s.restart_at is not None]
        if not deadlines:
            return None
        return max(0.0, min(deadlines) - time.monotonic())

    # --- workers ---------------------------------------------------------------------------------------

    def _restart_due(self) -> None:
        now = time.monotonic()
        for slot in self.slots:
            if slot.restart_at is not None and slot.restart_at <= now and not self._stopping:
                self._spawn(slot)

    def _spawn(self, slot: _Slot) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        dev_init = self.dev and slot.index == 0 and not self.unseal.ever_unsealed
        listen = self.listeners[slot.index % len(self.listeners)]
        start = WorkerStart(slot.index, theirs, listen, dev_init)
        sys.stdout.flush()
        sys.stderr.flush()
        # Signals stay blocked across fork: the child must not run the supervisor's handlers.
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
        pid = os.fork()
        if pid == 0:  # the worker
            code = 70
            try:
                self._become_worker(ours)
                signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
                code = self.main(start)
            except BaseException:
                log.exception("worker %d failed", slot.index + 1)
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        theirs.close()
        ours.settimeout(SEND_TIMEOUT)
        slot.pid, slot.conn, slot.decoder = pid, ours, FrameDecoder()
        slot.started, slot.restart_at, slot.ready = time.monotonic(), None, False
        self._by_pid[pid] = slot
        self._selector.register(ours, selectors.EVENT_READ, slot)
        log.info("worker %d started (pid %d)", slot.index + 1, pid)

    def _become_worker(self, supervisor_end: socket.socket) -> None:
        """In the forked child: drop everything of the supervisor's and tie the child's life to it."""
        links = [slot.conn for slot in self.slots if slot.conn is not None]
        detach_from_supervisor(self._selector, [self._wakeup_r, self._wakeup_w, supervisor_end, *links])
        # The root key the supervisor holds was copied by fork; drop this copy's references to it.
        self.unseal = NodeUnseal(self.unseal.collector.clock)

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            slot = self._by_pid.pop(pid, None)
            if slot is None:
                continue
            self._detach(slot, alive=False)
            if self._stopping:
                continue
            lived = time.monotonic() - slot.started
            slot.quick_deaths = slot.quick_deaths + 1 if lived < 5 else 0
            delay = 0.0 if slot.quick_deaths == 0 else min(0.5 * 2 ** (slot.quick_deaths - 1), 30.0)
            slot.restart_at = time.monotonic() + delay
            log.warning(
                "worker %d (pid %d) %s; restarting in %.1f s",
                slot.index + 1, pid, describe_exit(status), delay,
            )  # fmt: skip

    def _detach(self, slot: _Slot, *, alive: bool) -> None:
        """Forget a worker's link and stop waiting for it (``alive``: not reaped yet)."""
        if slot.conn is not None:
            self._selector.unregister(slot.conn)
            slot.conn.close()
            slot.conn = None
        for broadcast in self._broadcasts:
            if alive and broadcast.kill_laggards and slot.pid in broadcast.waiting:
                # Gone from the link before confirming a seal: it must not go on serving with the keys.
                with contextlib.suppress(ProcessLookupError):
                    os.kill(slot.pid, signal.SIGKILL)
            broadcast.waiting.discard(slot.pid)
            if broadcast.origin is not None and broadcast.origin[0] == slot.pid:
                broadcast.origin = None
        self._finish_broadcasts()

    def _kill(self, slot: _Slot, why: str) -> None:
        """SIGKILL a broken or unresponsive worker (it is restarted once reaped)."""
        log.error("killing worker %d (pid %d): %s", slot.index + 1, slot.pid, why)
        with contextlib.suppress(ProcessLookupError):
            os.kill(slot.pid, signal.SIGKILL)
        self._detach(slot, alive=False)

    def _shutdown(self) -> None:
        live = [s for s in self.slots if s.pid in self._by_pid]
        for slot in live:
            with contextlib.suppress(ProcessLookupError):
                os.kill(slot.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        while self._by_pid and time.monotonic() < deadline:
            self._selector.select(min(0.2, max(0.0, deadline - time.monotonic())))
            self._drain_wakeup()
            self._reap()
        for pid in list(self._by_pid):
            log.warning("worker pid %d did not stop in %.0f s; killing it", pid, STOP_TIMEOUT)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
            self._detach(self._by_pid.pop(pid), alive=False)
        self.unseal.seal()

    # --- messages --------------------------------------------------------------------------------------

    def _readable(self, slot: _Slot) -> None:
        conn = slot.conn
        if conn is None:
            return
        try:
            data = conn.recv(65536)
        except OSError as exc:
            self._kill(slot, f"link error {type(exc).__name__}")
            return
        if not data:
            # The worker closed its link: it is exiting (and is reaped on SIGCHLD).
            self._detach(slot, alive=True)
            return
        try:
            for msg in slot.decoder.feed(data):
                self._handle(slot, msg)
        except LinkError as exc:
            self._kill(slot, exc.message)

    def _send(self, slot: _Slot, msg: Message) -> None:
        if slot.conn is None:
            return
        try:
            slot.conn.sendall(encode(msg))
        except OSError as exc:
            self._kill(slot, f"cannot write to its link ({type(exc).__name__})")

    def _handle(self, slot: _Slot, msg: Message) -> None:
        kind, request = msg.kind, msg.request
        if kind is Kind.ACK:
            try:
                outcome = AckOutcome(msg.integer("outcome"))
            except ValueError:
                raise MalformedMessage("unknown ACK outcome") from None
            self._ack(slot, msg.integer("epoch"), outcome)
        elif kind is Kind.HELLO:
            slot.ready = True
            self._send(slot, self._state(request))
        elif kind is Kind.SHARE:
            self._share(slot, msg)
        elif kind is Kind.RESET:
            self.unseal.reset()
            self._send(slot, self._progress(request))
        elif kind is Kind.STATUS:
            self._send(slot, self._progress(request))
        elif kind is Kind.SEAL or kind is Kind.SEAL_IF:
            if kind is Kind.SEAL_IF and msg.integer("epoch") != self.unseal.epoch:
                # Unsealed or rekeyed since the worker (keyless: no token checked) looked: it looks again.
                self._send(slot, self._state(request))
                return
            epoch = self.unseal.seal()
            log.info("node sealed (through worker %d)", slot.index + 1)
            done = message(Kind.DONE, request, epoch=epoch)
            self._broadcast(message(Kind.SEAL_ALL, epoch=epoch), epoch, (slot.pid, request, done), kill=True)
        elif kind is Kind.NEW_KEY:
            done = message(Kind.DONE, request, epoch=self.unseal.epoch)
            if self.unseal.replace(SecretBytes(msg.secret("root_key"), kind="root key")):
                log.info("the node's root key changed (rekey through worker %d)", slot.index + 1)
                install = self._install_message()
                done = message(Kind.DONE, request, epoch=self.unseal.epoch)
                self._broadcast(install, self.unseal.epoch, (slot.pid, request, done), skip=slot.pid)
            else:
                self._send(slot, done)
        else:
            raise LinkError(f"a worker sent {kind.name}, which only the supervisor sends")

    def _state(self, request: int) -> Message:
        key = self.unseal.root_key
        return message(Kind.STATE, request, epoch=self.unseal.epoch, root_key=key.reveal() if key else b"")

    def _progress(self, request: int) -> Message:
        progress, nonce = self.unseal.progress()
        return message(Kind.PROGRESS, request, progress=progress, nonce=nonce)

    def _install_message(self) -> Message:
        key = self.unseal.root_key
        assert key is not None
        return message(Kind.INSTALL, epoch=self.unseal.epoch, root_key=key.reveal())

    def _share(self, slot: _Slot, msg: Message) -> None:
        request = msg.request
        try:
            key = self.unseal.submit(
                msg.secret("share"),
                msg.integer("threshold"),
                msg.integer("shares"),
                msg.fields["keyring_key"],
                msg.fields["keyring"],
            )
        except StrongroomError as exc:
            self._send(slot, error_message(request, exc))
            return
        if key is None:
            self._send(slot, self._progress(request))
            return
        log.info("node unsealed (ceremony completed through worker %d)", slot.index + 1)
        self._broadcast(
            self._install_message(), self.unseal.epoch, (slot.pid, request, self._progress(request))
        )

    def _broadcast(
        self,
        msg: Message,
        epoch: int,
        origin: tuple[int, int, Message] | None,
        *,
        kill: bool = False,
        skip: int = 0,
    ) -> None:
        targets = [s for s in self.slots if s.conn is not None and s.pid != skip]
        # A worker that has not said HELLO holds no keys yet and learns the state from the STATE reply,
        # which its link delivers after this message: no need to wait for it (it may still be importing).
        waiting = {s.pid for s in targets if s.ready}
        broadcast = _Broadcast(epoch, waiting, time.monotonic() + ACK_TIMEOUT, origin, kill)
        self._broadcasts.append(broadcast)
        for slot in targets:
            self._send(slot, msg)
        self._finish_broadcasts()

    def _ack(self, slot: _Slot, epoch: int, outcome: AckOutcome) -> None:
        if outcome is AckOutcome.OBSOLETE and self.unseal.obsolete(epoch):
            log.warning(
                "worker %d found the node's root key obsolete (rekeyed elsewhere); forgot it", slot.index + 1
            )
        for broadcast in self._broadcasts:
            if broadcast.epoch == epoch:
                broadcast.waiting.discard(slot.pid)
        self._finish_broadcasts()

    def _finish_broadcasts(self) -> None:
        done = [b for b in self._broadcasts if not b.waiting]
        self._broadcasts = [b for b in self._broadcasts if b.waiting]
        for broadcast in done:
            self._reply(broadcast)

    def _reply(self, broadcast: _Broadcast) -> None:
        if broadcast.origin is None:
            return
        pid, _, reply = broadcast.origin
        slot = self._by_pid.get(pid)
        if slot is not None:
            self._send(slot, reply)

    def _expire_broadcasts(self) -> None:
        now = time.monotonic()
        for broadcast in [b for b in self._broadcasts if b.deadline <= now]:
            for pid in list(broadcast.waiting):
                slot = self._by_pid.get(pid)
                if slot is None:
                    continue
                if broadcast.kill_laggards:
                    # It may still hold the keys: a seal must not return while any worker could serve.
                    self._kill(slot, f"it did not confirm the seal within {ACK_TIMEOUT:.0f} s")
                else:
                    log.warning(
                        "worker %d did not confirm the unseal within %.0f s", slot.index + 1, ACK_TIMEOUT
                    )
            broadcast.waiting.clear()
        self._finish_broadcasts()
