"""``sys/seal`` through a worker that holds no keys (``--workers N``), one step at a time.

The worker side runs over a real socketpair against a fake supervisor (this test); the supervisor side is
the real :class:`~strongroom.core.workers.Supervisor` handling messages from a socketpair, no process forked.
tests/cli/test_workers_seal_race.py runs the whole race with real processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import Iterator

import pytest

from strongroom.barrier.keyring import Keyring
from strongroom.clock import FakeClock
from strongroom.core.namespace import NamespaceKeys
from strongroom.core.node_unseal import NodeUnseal
from strongroom.core.supervisor_link import Kind, LinkError, Message, decode_body, encode, message
from strongroom.core.vault import InitRequest, Vault
from strongroom.core.worker_link import SEAL_ROUNDS, WorkerLink
from strongroom.core.workers import Supervisor
from strongroom.crypto.secret import SecretBytes
from strongroom.errors import Sealed
from strongroom.storage.base import Transaction
from strongroom.storage.memory import MemoryStore

# --- the worker side ---------------------------------------------------------------------------------------


async def _setup(tx: Transaction, keys: NamespaceKeys) -> str:
    return "root-token"


class _Linked:
    """A sealed worker vault (1-of-1 key) linked to a fake supervisor whose end the test reads and writes."""

    vault: Vault
    link: WorkerLink
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    key: bytes

    @classmethod
    async def start(cls) -> _Linked:
        self = cls()
        self.vault = Vault(MemoryStore(), FakeClock())
        self.key = bytes.fromhex((await self.vault.initialize(InitRequest(1, 1), _setup)).keys[0])
        ours, theirs = socket.socketpair()
        self.link = WorkerLink(theirs, self.vault)
        self.vault.coordinator = self.link
        ours.setblocking(False)
        self.reader, self.writer = await asyncio.open_connection(sock=ours)
        starting = asyncio.create_task(self.link.start())
        hello = await self.read()
        self.reply(hello, Kind.STATE, epoch=1, root_key=b"")
        await starting
        assert self.vault.sealed
        return self

    async def read(self) -> Message:
        header = await self.reader.readexactly(4)
        return decode_body(await self.reader.readexactly(struct.unpack(">I", header)[0]))

    def reply(self, to: Message, kind: Kind, **fields: bytes | int | str) -> None:
        self.writer.write(encode(message(kind, to.request, **fields)))

    def push(self, kind: Kind, **fields: bytes | int | str) -> None:
        self.writer.write(encode(message(kind, 0, **fields)))

    async def close(self) -> None:
        await self.link.close()
        self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()


async def test_the_node_holds_a_key_that_opens_the_keyring_so_the_worker_takes_it() -> None:
    w = await _Linked.start()
    call = asyncio.create_task(w.vault.seal_unless_node_unsealed())
    hello = await w.read()
    assert hello.kind is Kind.HELLO
    w.reply(hello, Kind.STATE, epoch=2, root_key=w.key)
    assert await call is False  # the node is unsealed: the caller checks the token, then seals
    assert not w.vault.sealed and w.link.unsealed.is_set()
    await w.close()


async def test_a_node_without_keys_is_sealed_again_everywhere() -> None:
    w = await _Linked.start()
    call = asyncio.create_task(w.vault.seal_unless_node_unsealed())
    w.reply(await w.read(), Kind.STATE, epoch=4, root_key=b"")
    seal_if = await w.read()
    assert seal_if.kind is Kind.SEAL_IF and seal_if.integer("epoch") == 4
    w.reply(seal_if, Kind.DONE, epoch=5)
    assert await call is True and w.vault.sealed
    await w.close()


async def test_an_obsolete_key_is_not_installed_and_the_node_is_sealed() -> None:
    w = await _Linked.start()
    call = asyncio.create_task(w.vault.seal_unless_node_unsealed())
    # The supervisor's key does not open the stored keyring (the node was rekeyed elsewhere).
    w.reply(await w.read(), Kind.STATE, epoch=3, root_key=bytes(32))
    seal_if = await w.read()
    assert seal_if.kind is Kind.SEAL_IF and seal_if.integer("epoch") == 3
    assert w.vault.sealed
    w.reply(seal_if, Kind.DONE, epoch=4)
    assert await call is True
    await w.close()


async def test_an_unseal_completed_meanwhile_is_not_undone() -> None:
    w = await _Linked.start()
    call = asyncio.create_task(w.vault.seal_unless_node_unsealed())
    w.reply(await w.read(), Kind.STATE, epoch=6, root_key=b"")
    seal_if = await w.read()
    # Custodians completed the unseal through another worker before SEAL_IF arrived: the supervisor refuses
    # and sends the node's new state; the worker takes the key (the caller must then show a token).
    w.push(Kind.INSTALL, epoch=7, root_key=w.key)
    w.reply(seal_if, Kind.STATE, epoch=7, root_key=w.key)
    assert await call is False
    assert not w.vault.sealed
    await w.close()


async def test_a_node_that_keeps_changing_gives_up_after_a_few_rounds() -> None:
    w = await _Linked.start()
    call = asyncio.create_task(w.vault.seal_unless_node_unsealed())
    request = await w.read()
    for epoch in range(10, 10 + SEAL_ROUNDS):
        w.reply(request, Kind.STATE, epoch=epoch, root_key=b"")
        request = await w.read()
        assert request.kind is Kind.SEAL_IF and request.integer("epoch") == epoch
    w.reply(request, Kind.STATE, epoch=99, root_key=b"")
    with pytest.raises(Sealed):
        await call
    assert w.vault.sealed
    await w.close()


async def test_an_unexpected_answer_to_seal_if_breaks_nothing_open() -> None:
    w = await _Linked.start()
    call = asyncio.create_task(w.vault.seal_unless_node_unsealed())
    w.reply(await w.read(), Kind.STATE, epoch=1, root_key=b"")
    w.reply(await w.read(), Kind.PROGRESS, progress=0, nonce="")
    with pytest.raises(LinkError, match="answered SEAL_IF with PROGRESS"):
        await call
    assert w.vault.sealed
    await w.close()


async def test_one_process_without_keys_is_the_sealed_node() -> None:
    vault = Vault(MemoryStore(), FakeClock())
    await vault.initialize(InitRequest(1, 1), _setup)
    assert await vault.seal_unless_node_unsealed() is True


# --- the supervisor side -----------------------------------------------------------------------------------

WORKER_PID = 2**22 + 12345
"""A pid no process has (above Linux's default pid_max): the supervisor never signals it in these tests."""


@pytest.fixture
def supervisor() -> Iterator[tuple[Supervisor, socket.socket]]:
    """A supervisor (never run, nothing forked) with one worker slot linked to the returned socket; the
    worker has not said HELLO, so broadcasts do not wait for its confirmation."""
    listener = socket.socket()
    ours, theirs = socket.socketpair()
    supervisor = Supervisor(1, [listener], lambda start: 0, NodeUnseal(FakeClock()))
    slot = supervisor.slots[0]
    slot.pid, slot.conn, slot.restart_at = WORKER_PID, ours, None
    supervisor._by_pid[WORKER_PID] = slot
    try:
        yield supervisor, theirs
    finally:
        for sock in (listener, ours, theirs):
            sock.close()


def _replies(sock: socket.socket) -> list[Message]:
    """Every message the supervisor wrote to the worker so far."""
    sock.setblocking(False)
    data = b""
    with contextlib.suppress(BlockingIOError):
        while chunk := sock.recv(65536):
            data += chunk
    out = []
    while data:
        (length,) = struct.unpack(">I", data[:4])
        out.append(decode_body(data[4 : 4 + length]))
        data = data[4 + length :]
    return out


def _unsealed(supervisor: Supervisor, root: bytes) -> int:
    physical = b"ns/keyring"
    blob = Keyring.generate(1.0).seal(SecretBytes(root), physical)
    assert supervisor.unseal.submit(root, 1, 1, physical, blob) is not None
    return supervisor.unseal.epoch


def test_supervisor_seals_at_the_epoch_the_worker_saw(supervisor: tuple[Supervisor, socket.socket]) -> None:
    sup, worker = supervisor
    epoch = _unsealed(sup, bytes(range(32)))
    sup._handle(sup.slots[0], message(Kind.SEAL_IF, 7, epoch=epoch))
    seal_all, done = _replies(worker)
    assert seal_all.kind is Kind.SEAL_ALL and seal_all.integer("epoch") == epoch + 1
    assert done.kind is Kind.DONE and done.request == 7
    assert sup.unseal.sealed


def test_supervisor_refuses_a_seal_if_the_node_changed(supervisor: tuple[Supervisor, socket.socket]) -> None:
    sup, worker = supervisor
    seen = sup.unseal.epoch  # the worker looked while the node was sealed ...
    epoch = _unsealed(sup, bytes(range(32)))  # ... and custodians unsealed it since
    sup._handle(sup.slots[0], message(Kind.SEAL_IF, 8, epoch=seen))
    (state,) = _replies(worker)
    assert state.kind is Kind.STATE and state.request == 8
    assert state.integer("epoch") == epoch and state.secret("root_key") == bytes(range(32))
    assert not sup.unseal.sealed  # not undone by a caller whose token nobody checked
