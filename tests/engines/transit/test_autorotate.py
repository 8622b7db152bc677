"""Transit auto-rotation as a background job: due keys rotate exactly once per period, on one node."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from strongroom.core.background import BackgroundRunner, Outcome
from strongroom.core.jobs import LeaseLost
from strongroom.core.node import Node
from strongroom.crypto.transit.keytypes import KeyType
from strongroom.engines.transit import autorotate
from strongroom.engines.transit.autorotate import is_due, rotate_due_keys, rotate_if_due
from strongroom.engines.transit.policy import KeyPolicy, VersionInfo
from strongroom.errors import TransactionConflict
from strongroom.storage.base import Transaction, transactional
from tests.engines.transit.conftest import b64
from tests.support.vault import InProcessVault, start_vault

HOUR = 3600


@dataclass
class Pair:
    """A vault with transit mounted (node A, served over the API) and a second node B on its store."""

    vault: InProcessVault
    b: Node

    @property
    def a(self) -> Node:
        return self.vault.node

    def runner(self, node: Node, holder: str) -> BackgroundRunner:
        runner = BackgroundRunner(node, interval=60, holder=holder)
        runner.register(autorotate.JOB)
        return runner

    async def latest(self, name: str, mount: str = "transit") -> int:
        body = await self.vault.ok("GET", f"{mount}/keys/{name}")
        version: int = body["data"]["latest_version"]
        return version

    async def mount_uuid(self, mount: str = "transit") -> str:
        uuid: str = (await self.vault.ok("GET", "sys/mounts"))["data"][f"{mount}/"]["uuid"]
        return uuid


@pytest.fixture
async def pair() -> AsyncIterator[Pair]:
    vault = await start_vault()
    await vault.ok("POST", "sys/mounts/transit", json={"type": "transit"})
    other = Node(vault.node.store, clock=vault.clock)
    for key in vault.keys[:2]:
        await other.root.submit_unseal(key)
    try:
        yield Pair(vault, other)
    finally:
        other.root.seal()
        await vault.client.aclose()
        await vault.node.close()


async def _key(p: Pair, name: str, period: str | int = "1h", mount: str = "transit", **kw: object) -> None:
    await p.vault.ok("POST", f"{mount}/keys/{name}", json={"auto_rotate_period": period, **kw})


async def test_not_due_then_due_exactly_once_per_period(pair: Pair) -> None:
    await _key(pair, "k")
    runner = pair.runner(pair.a, "a")
    pair.vault.clock.advance(HOUR / 2)
    assert await runner.run_once() == {autorotate.JOB_NAME: Outcome.RAN}
    assert await pair.latest("k") == 1
    pair.vault.clock.advance(HOUR / 2 + 1)
    await runner.run_once()
    assert await pair.latest("k") == 2
    # Every further tick within the new period finds nothing to do.
    for _ in range(3):
        pair.vault.clock.advance(60)
        await runner.run_once()
    assert await pair.latest("k") == 2
    # The next period counts from the new version's creation (strictly after it, as Vault).
    pair.vault.clock.advance(HOUR - 3 * 60)  # exactly one period after version 2: not yet
    await runner.run_once()
    assert await pair.latest("k") == 2
    pair.vault.clock.advance(1)
    await runner.run_once()
    assert await pair.latest("k") == 3


async def test_two_runners_racing_rotate_once(pair: Pair) -> None:
    await _key(pair, "k")
    pair.vault.clock.advance(HOUR + 1)
    outcomes = await asyncio.gather(pair.runner(pair.a, "a").run_once(), pair.runner(pair.b, "b").run_once())
    assert sorted(o[autorotate.JOB_NAME] for o in outcomes) == [Outcome.BUSY, Outcome.RAN]
    assert await pair.latest("k") == 2


async def test_two_scans_without_leases_still_rotate_once(pair: Pair) -> None:
    await _key(pair, "k")
    await _key(pair, "k2", period="2h")
    pair.vault.clock.advance(2 * HOUR + 1)
    done = await asyncio.gather(rotate_due_keys(pair.a), rotate_due_keys(pair.b))
    assert sorted(name for result in done for _, name, _ in result) == ["k", "k2"]
    assert await pair.latest("k") == 2 and await pair.latest("k2") == 2


async def test_interleaved_transactions_cannot_double_rotate(pair: Pair) -> None:
    await _key(pair, "k")
    uuid = await pair.mount_uuid()
    pair.vault.clock.advance(HOUR + 1)
    store = pair.a.store

    async def interleaved() -> None:
        async with store.transaction() as t1:
            first = await rotate_if_due(t1, pair.a, pair.a.root, uuid, "k")
            async with store.transaction() as t2:
                second = await rotate_if_due(t2, pair.b, pair.b.root, uuid, "k")
            # t2 committed version 2; t1 (which also wrote version 2) commits when this block ends
            assert first is not None and second is not None and first[0] == second[0] == 2

    # Both transactions see version 1 due and add version 2; the later commit must conflict.
    with pytest.raises(TransactionConflict):
        await interleaved()
    assert await pair.latest("k") == 2

    async def retry(tx: Transaction) -> object:
        return await rotate_if_due(tx, pair.a, pair.a.root, uuid, "k")

    # The loser's retry re-reads the policy: version 2 is new, nothing is due.
    assert await transactional(store, retry) is None
    assert await pair.latest("k") == 2


async def test_sealed_node_rotates_nothing(pair: Pair) -> None:
    await _key(pair, "k")
    pair.vault.clock.advance(HOUR + 1)
    pair.b.root.seal()
    assert await pair.runner(pair.b, "b").run_once() == {autorotate.JOB_NAME: Outcome.SEALED}
    assert await rotate_due_keys(pair.b) == []
    assert await pair.latest("k") == 1


async def test_only_transit_keys_with_a_period_rotate_on_every_transit_mount(pair: Pair) -> None:
    await pair.vault.ok("POST", "sys/mounts/other-transit", json={"type": "transit"})
    await pair.vault.ok("POST", "sys/mounts/kv", json={"type": "kv", "options": {"version": "2"}})
    await pair.vault.ok("POST", "kv/data/k", json={"data": {"auto_rotate_period": 1}})
    await _key(pair, "due")
    await _key(pair, "never", period=0)
    await _key(pair, "later", period="3h")
    await _key(pair, "there", mount="other-transit")
    pair.vault.clock.advance(HOUR + 1)
    done = await rotate_due_keys(pair.a)
    assert sorted((mount, name, version) for mount, name, version in done) == [
        ("other-transit/", "there", 2),
        ("transit/", "due", 2),
    ]
    assert [await pair.latest(n) for n in ("due", "never", "later")] == [2, 1, 1]


async def test_rotated_key_encrypts_with_the_new_version_and_still_decrypts_old(pair: Pair) -> None:
    await _key(pair, "k")
    old = (await pair.vault.ok("POST", "transit/encrypt/k", json={"plaintext": b64("x")}))["data"]["ciphertext"]
    pair.vault.clock.advance(HOUR + 1)
    await pair.runner(pair.a, "a").run_once()
    new = (await pair.vault.ok("POST", "transit/encrypt/k", json={"plaintext": b64("y")}))["data"]["ciphertext"]
    assert old.startswith("vault:v1:") and new.startswith("vault:v2:")
    await pair.vault.ok("POST", "transit/decrypt/k", json={"ciphertext": old})


async def test_a_fenced_off_runner_writes_nothing(pair: Pair) -> None:
    await _key(pair, "k")
    pair.vault.clock.advance(HOUR + 1)

    async def lost(tx: Transaction) -> None:
        raise LeaseLost(autorotate.JOB_NAME)

    with pytest.raises(LeaseLost):
        await rotate_due_keys(pair.a, fence=lost)
    assert await pair.latest("k") == 1


async def test_a_deleted_mount_or_key_is_nothing_to_do(pair: Pair) -> None:
    await _key(pair, "k")
    uuid = await pair.mount_uuid()
    pair.vault.clock.advance(HOUR + 1)

    async def run(tx: Transaction, mount: str, name: str) -> object:
        return await rotate_if_due(tx, pair.a, pair.a.root, mount, name)

    assert await transactional(pair.a.store, lambda tx: run(tx, uuid, "missing")) is None
    assert await transactional(pair.a.store, lambda tx: run(tx, "no-such-mount", "k")) is None
    await pair.vault.ok("DELETE", "sys/mounts/transit")
    assert await transactional(pair.a.store, lambda tx: run(tx, uuid, "k")) is None


def _policy(period: int, created: int, **kw: object) -> KeyPolicy:
    info = VersionInfo(created="", created_unix=created)
    return KeyPolicy(name="k", type=KeyType.AES256_GCM96, latest_version=1, versions={1: info},
                     auto_rotate_period=period, **kw)  # type: ignore[arg-type]


def test_due_rules() -> None:
    assert not is_due(_policy(0, 0), 10**9)
    assert not is_due(_policy(HOUR, 1000), 1000 + HOUR)
    assert is_due(_policy(HOUR, 1000), 1000 + HOUR + 0.5)
    # Imported keys rotate only if they allow it (Vault skips the others silently).
    assert not is_due(_policy(HOUR, 0, imported=True), 10 * HOUR)
    assert is_due(_policy(HOUR, 0, imported=True, allow_imported_key_rotation=True), 10 * HOUR)
    # A policy whose latest version is missing is never rotated blindly.
    assert not is_due(_policy(HOUR, 0).replace(versions={}), 10 * HOUR)
