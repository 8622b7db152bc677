"""The supervisor link: framing and strict decoding, limits, EOF, the worker side over a real socketpair,
and the supervisor's node seal state machine."""

from __future__ import annotations

import asyncio
import contextlib
import pickle
import socket
import struct

import pytest

from strongroom.barrier.keyring import Keyring
from strongroom.clock import FakeClock
from strongroom.core.namespace import NamespaceKeys
from strongroom.core.node_unseal import NodeUnseal
from strongroom.core.supervisor_link import (
    MAX_MESSAGE,
    SCHEMA,
    AckOutcome,
    FrameDecoder,
    Kind,
    LinkClosed,
    LinkError,
    MalformedMessage,
    Message,
    MessageTooLarge,
    decode_body,
    encode,
    error_message,
    message,
    raise_error,
)
from strongroom.core.vault import InitRequest, Vault
from strongroom.core.worker_link import WorkerLink
from strongroom.crypto.secret import SecretBytes
from strongroom.crypto.shamir import split_key
from strongroom.errors import InvalidRequest, InvalidShare, NotFound, StrongroomError
from strongroom.storage.base import Transaction
from strongroom.storage.memory import MemoryStore

ROOT_KEY = bytes(range(32))


def _frame(body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + body


def _sample(kind: Kind) -> Message:
    values: dict[str, bytes | int | str] = {}
    for name in SCHEMA[kind]:
        values[name] = {"epoch": 7, "threshold": 2, "shares": 3, "progress": 1, "outcome": 0}.get(
            name, b"\x00x"
        )
    return message(kind, 5, **values)


# --- framing -----------------------------------------------------------------------------------------------


def test_every_kind_round_trips_even_byte_by_byte() -> None:
    stream = b"".join(encode(_sample(kind)) for kind in Kind)
    decoder = FrameDecoder()
    out: list[Message] = []
    for i in range(len(stream)):
        out += decoder.feed(stream[i : i + 1])
    assert [m.kind for m in out] == list(Kind)
    assert all(m.request == 5 for m in out)
    assert out[Kind.SHARE - 1].integer("threshold") == 2
    assert out[Kind.INSTALL - 1].secret("root_key") == b"\x00x"


def test_messages_hide_key_material_and_refuse_pickling() -> None:
    msg = message(Kind.INSTALL, epoch=1, root_key=ROOT_KEY)
    assert ROOT_KEY.hex() not in repr(msg) and repr(ROOT_KEY) not in repr(msg)
    assert "root_key:32B" in repr(msg)
    with pytest.raises(TypeError):
        pickle.dumps(msg)
    with pytest.raises(KeyError):
        msg.secret("epoch")  # secret() is only for fields that hold key material


def test_building_a_message_checks_its_fields() -> None:
    with pytest.raises(ValueError, match="takes fields"):
        message(Kind.INSTALL, epoch=1)
    with pytest.raises(ValueError, match="takes fields"):
        message(Kind.HELLO, extra=b"")


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"\x63" + b"\x00\x00\x00\x01", "unknown message kind 99"),
        (bytes([Kind.INSTALL]) + b"\x00\x00\x00\x00", "missing its field 'epoch'"),
        (bytes([Kind.NEW_KEY]) + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x20" + b"k" * 10, "truncated"),
        (bytes([Kind.HELLO]) + b"\x00\x00\x00\x00" + b"junk", "4 trailing bytes"),
        (b"\x01\x00", "shorter than its header"),
    ],
)
def test_malformed_bodies_are_refused(body: bytes, error: str) -> None:
    with pytest.raises(MalformedMessage, match=error):
        decode_body(body)
    if len(body) >= 5:
        with pytest.raises(MalformedMessage):
            FrameDecoder().feed(_frame(body))


def test_fields_of_the_wrong_shape_are_refused() -> None:
    msg = decode_body(encode(message(Kind.PROGRESS, 1, progress=b"\x01", nonce=b"\xff\xfe"))[4:])
    with pytest.raises(MalformedMessage, match="not an integer"):
        msg.integer("progress")
    with pytest.raises(MalformedMessage, match="not UTF-8"):
        msg.text("nonce")


def test_a_frame_shorter_than_a_header_is_refused() -> None:
    with pytest.raises(MalformedMessage):
        FrameDecoder().feed(b"\x00\x00\x00\x02ab")


def test_oversize_frames_fail_before_their_body_is_buffered() -> None:
    decoder = FrameDecoder(limit=1024)
    with pytest.raises(MessageTooLarge, match="1025 bytes exceeds"):
        decoder.feed(struct.pack(">I", 1025))  # the header alone is enough
    with pytest.raises(MessageTooLarge):
        FrameDecoder().feed(struct.pack(">I", 0xFFFFFFFF))
    big = message(
        Kind.SHARE, 1, share=b"s", threshold=1, shares=1, keyring_key=b"k", keyring=b"x" * MAX_MESSAGE
    )
    with pytest.raises(MessageTooLarge):
        encode(big)


def test_eof_says_whether_a_message_was_cut() -> None:
    decoder = FrameDecoder()
    assert decoder.feed(encode(message(Kind.HELLO, 1)))
    with pytest.raises(LinkClosed) as clean:
        decoder.eof()
    assert not clean.value.truncated
    decoder.feed(encode(message(Kind.HELLO, 2))[:6])
    with pytest.raises(LinkClosed) as cut:
        decoder.eof()
    assert cut.value.truncated
    header_only = FrameDecoder()
    header_only.feed(b"\x00\x00")
    with pytest.raises(LinkClosed) as partial:
        header_only.eof()
    assert partial.value.truncated


def test_errors_cross_the_link_by_class() -> None:
    for exc in (InvalidShare("bad share"), InvalidRequest("bad"), StrongroomError("x")):
        with pytest.raises(type(exc), match=exc.message) as raised:
            raise_error(decode_body(encode(error_message(9, exc))[4:]))
        assert type(raised.value) is type(exc)
    # A class the link does not carry arrives as the base class, message intact.
    reply = error_message(9, NotFound("nothing"))
    assert reply.text("error") == "StrongroomError"
    with pytest.raises(StrongroomError, match="nothing"):
        raise_error(reply)


# --- the worker side over a real socketpair ----------------------------------------------------------------


async def _setup(tx: Transaction, keys: NamespaceKeys) -> str:
    return "root-token"


async def _fake_supervisor(sock: socket.socket) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    sock.setblocking(False)
    return await asyncio.open_connection(sock=sock)


async def _close(writer: asyncio.StreamWriter) -> None:
    """Close the fake supervisor's end (an unclosed transport would warn when collected)."""
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()


async def _read(reader: asyncio.StreamReader) -> Message:
    header = await reader.readexactly(4)
    return decode_body(await reader.readexactly(struct.unpack(">I", header)[0]))


Linked = tuple[Vault, WorkerLink, asyncio.StreamReader, asyncio.StreamWriter, list[str], SecretBytes]


async def _linked_vault() -> Linked:
    """An initialised, sealed vault whose coordinator is a link to a fake supervisor (this test)."""
    vault = Vault(MemoryStore(), FakeClock())
    result = await vault.initialize(InitRequest(1, 1), _setup)
    ours, theirs = socket.socketpair()
    lost: list[str] = []
    link = WorkerLink(theirs, vault, on_lost=lambda: lost.append("lost"))
    vault.coordinator = link
    reader, writer = await _fake_supervisor(ours)
    starting = asyncio.create_task(link.start())
    hello = await _read(reader)
    assert hello.kind is Kind.HELLO and hello.request
    writer.write(encode(message(Kind.STATE, hello.request, epoch=0, root_key=b"")))
    await starting
    return vault, link, reader, writer, lost, SecretBytes(bytes.fromhex(result.keys[0]))


async def test_worker_requests_get_replies_and_errors() -> None:
    vault, link, reader, writer, _, _ = await _linked_vault()
    progress = asyncio.create_task(link.progress())
    request = await _read(reader)
    assert request.kind is Kind.STATUS
    writer.write(encode(message(Kind.PROGRESS, request.request, progress=1, nonce="n-1")))
    assert await progress == (1, "n-1")
    status = asyncio.create_task(vault.status())  # a sealed worker asks the supervisor
    request = await _read(reader)
    writer.write(encode(message(Kind.PROGRESS, request.request, progress=2, nonce="n-2")))
    assert (await status)["progress"] == 2
    submit = asyncio.create_task(vault.submit_unseal(bytes(32).hex()))
    request = await _read(reader)
    assert request.kind is Kind.SHARE and request.secret("share") == bytes(32)
    assert request.fields["keyring"] and request.integer("threshold") == 1
    writer.write(encode(error_message(request.request, InvalidShare("did not combine"))))
    with pytest.raises(InvalidShare, match="did not combine"):
        await submit
    await link.close()
    await _close(writer)


async def test_install_and_seal_from_the_supervisor() -> None:
    vault = Vault(MemoryStore(), FakeClock())
    result = await vault.initialize(InitRequest(1, 1), _setup)
    root_key = bytes.fromhex(result.keys[0])
    ours, theirs = socket.socketpair()
    link = WorkerLink(theirs, vault)
    vault.coordinator = link
    reader, writer = await _fake_supervisor(ours)
    starting = asyncio.create_task(link.start())
    hello = await _read(reader)
    # A restarted worker gets the key in its HELLO reply and is unsealed before it serves.
    writer.write(encode(message(Kind.STATE, hello.request, epoch=3, root_key=root_key)))
    await starting
    assert not vault.sealed and link.unsealed.is_set()
    writer.write(encode(message(Kind.SEAL_ALL, epoch=4)))
    ack = await _read(reader)
    assert ack.kind is Kind.ACK and ack.integer("epoch") == 4 and ack.integer("outcome") == AckOutcome.OK
    assert vault.sealed
    writer.write(encode(message(Kind.INSTALL, epoch=5, root_key=root_key)))
    ack = await _read(reader)
    assert ack.integer("epoch") == 5 and ack.integer("outcome") == AckOutcome.OK
    assert not vault.sealed
    # A key that does not open the keyring: the supervisor is told to forget it; the vault stays sealed.
    writer.write(encode(message(Kind.SEAL_ALL, epoch=6)))
    await _read(reader)
    writer.write(encode(message(Kind.INSTALL, epoch=7, root_key=bytes(32))))
    ack = await _read(reader)
    assert ack.integer("outcome") == AckOutcome.OBSOLETE and vault.sealed
    await link.close()
    await _close(writer)


async def test_a_seal_overtakes_an_install_still_in_flight() -> None:
    vault = Vault(MemoryStore(), FakeClock())
    result = await vault.initialize(InitRequest(1, 1), _setup)
    entered, gate = asyncio.Event(), asyncio.Event()
    load_keys = vault.load_keys

    async def slow_load_keys(root_key: SecretBytes) -> NamespaceKeys:
        entered.set()
        await gate.wait()
        return await load_keys(root_key)

    vault.load_keys = slow_load_keys  # type: ignore[method-assign]
    ours, theirs = socket.socketpair()
    link = WorkerLink(theirs, vault)
    vault.coordinator = link
    reader, writer = await _fake_supervisor(ours)
    starting = asyncio.create_task(link.start())
    hello = await _read(reader)
    writer.write(encode(message(Kind.STATE, hello.request, epoch=0, root_key=b"")))
    await starting
    writer.write(encode(message(Kind.INSTALL, epoch=1, root_key=bytes.fromhex(result.keys[0]))))
    await entered.wait()  # the install is reading the keyring when the seal arrives
    writer.write(encode(message(Kind.SEAL_ALL, epoch=2)))
    seal_ack = await _read(reader)
    assert seal_ack.integer("epoch") == 2
    gate.set()
    install_ack = await _read(reader)
    assert install_ack.integer("epoch") == 1
    assert vault.sealed  # the install finished after the seal and was dropped
    await link.close()
    await _close(writer)


async def test_eof_and_garbage_from_the_supervisor_break_the_link() -> None:
    for ending in (b"", b"\x00\x00\x00\x05\x63\x00\x00\x00\x00", b"\x00\x00\x00\x09\x04"):
        _, link, reader, writer, lost, _ = await _linked_vault()
        pending = asyncio.create_task(link.reset())
        await _read(reader)
        if ending:
            writer.write(ending)
        writer.close()
        with pytest.raises(LinkError):
            await pending
        assert lost == ["lost"]
        with pytest.raises(LinkError):
            await link.progress()  # later calls fail at once
        await link.close()
        await _close(writer)


async def test_seal_without_a_supervisor_still_seals_this_worker() -> None:
    vault, link, _, writer, _, root_key = await _linked_vault()
    vault.install(await vault.load_keys(root_key))
    assert not vault.sealed
    writer.close()
    with pytest.raises(LinkError):
        await vault.seal_node()
    assert vault.sealed
    await link.close()
    await _close(writer)


# --- the supervisor's seal state ---------------------------------------------------------------------------


def _keyring(root: SecretBytes) -> tuple[bytes, bytes]:
    physical = b"ns/keyring"
    return physical, Keyring.generate(1.0).seal(root, physical)


def test_node_unseal_collects_verifies_and_seals() -> None:
    clock = FakeClock()
    state = NodeUnseal(clock, expiry_seconds=60)
    root = SecretBytes(ROOT_KEY)
    physical, blob = _keyring(root)
    shares = split_key(root, 3, 2)
    assert state.submit(shares[0], 2, 3, physical, blob) is None
    progress, nonce = state.progress()
    assert progress == 1 and nonce
    key = state.submit(shares[2], 2, 3, physical, blob)
    assert key == root and state.root_key == root and state.epoch == 1 and state.ever_unsealed
    assert state.progress() == (0, "")
    assert ROOT_KEY.hex() not in repr(state) and "sealed=False" in repr(state)
    with pytest.raises(TypeError):
        pickle.dumps(state)
    assert state.seal() == 2 and state.sealed


def test_node_unseal_refuses_shares_that_do_not_open_the_keyring() -> None:
    state = NodeUnseal(FakeClock())
    physical, blob = _keyring(SecretBytes(ROOT_KEY))
    other = split_key(SecretBytes(bytes(32)), 3, 2)
    state.submit(other[0], 2, 3, physical, blob)
    with pytest.raises(InvalidShare, match="did not reconstruct"):
        state.submit(other[1], 2, 3, physical, blob)
    assert state.sealed and state.progress() == (0, "") and state.epoch == 0
    with pytest.raises(InvalidShare, match="shorter than minimum"):
        state.submit(b"short", 2, 3, physical, blob)


def test_node_unseal_progress_expires() -> None:
    clock = FakeClock()
    state = NodeUnseal(clock, expiry_seconds=60)
    root = SecretBytes(ROOT_KEY)
    physical, blob = _keyring(root)
    shares = split_key(root, 3, 2)
    state.submit(shares[0], 2, 3, physical, blob)
    clock.current += 61
    assert state.progress() == (0, "")
    assert state.submit(shares[1], 2, 3, physical, blob) is None  # a new ceremony: one share is not enough


def test_node_unseal_rekey_and_obsolete_keys() -> None:
    state = NodeUnseal(FakeClock())
    root = SecretBytes(ROOT_KEY)
    assert not state.replace(root)  # sealed: a rekey finishing in a worker does not unseal the node
    physical, blob = _keyring(root)
    state.submit(ROOT_KEY, 1, 1, physical, blob)
    assert not state.replace(root)  # same key
    assert state.replace(SecretBytes(bytes(32))) and state.epoch == 2
    assert not state.obsolete(1)  # about an older key: ignored
    assert state.obsolete(2) and state.sealed
    with pytest.raises(InvalidRequest):
        state.submit(ROOT_KEY, 0, 1, physical, blob)
