"""Concurrent transit writes on SQLite (optimistic transactions with conflict detection): nothing is lost.

Each request is one transaction that reads the key's policy and writes it back; two requests that raced
on the same policy must not both commit, so the loser runs again on the winner's result. Lost updates
would show as a rotation that vanished, a configuration change undone, or, worst, two upserts that each
created the key: ciphertexts of the overwritten one would never decrypt again.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from strongroom.engines import router
from strongroom.storage.base import Store, Transaction, transactional
from strongroom.storage.sqlite import SqliteStore
from tests.engines.transit.conftest import b64, unb64
from tests.support.vault import InProcessVault, start_vault

N = 8
T = TypeVar("T")


@dataclass
class Runs:
    """How many times request transactions ran (a conflict makes one run again)."""

    count: int = 0


@pytest.fixture
def runs(monkeypatch: pytest.MonkeyPatch) -> Runs:
    counter = Runs()

    async def counting(store: Store, fn: Callable[[Transaction], Awaitable[T]], **kw: Any) -> T:
        async def counted(tx: Transaction) -> T:
            counter.count += 1
            return await fn(tx)

        return await transactional(store, counted, **kw)

    monkeypatch.setattr(router, "transactional", counting)
    return counter


@pytest.fixture
async def sqlite_transit(tmp_path: Path) -> AsyncIterator[InProcessVault]:
    vault = await start_vault(SqliteStore(tmp_path / "transit.db"))
    try:
        await vault.ok("POST", "sys/mounts/transit", json={"type": "transit"})
        yield vault
    finally:
        await vault.client.aclose()
        await vault.node.close()


async def _all_ok(v: InProcessVault, calls: list[tuple[str, str, dict[str, Any] | None]]) -> list[Any]:
    return list(await asyncio.gather(*(v.ok(m, "transit/" + p, json=body) for m, p, body in calls)))


async def test_concurrent_rotations_each_add_a_version(sqlite_transit: InProcessVault, runs: Runs) -> None:
    v = sqlite_transit
    await v.ok("POST", "transit/keys/k")
    runs.count = 0
    await _all_ok(v, [("POST", "keys/k/rotate", None)] * N)
    assert runs.count > N  # the rotations really overlapped: some conflicted and ran again
    key = (await v.ok("GET", "transit/keys/k"))["data"]
    assert key["latest_version"] == N + 1
    assert sorted(key["keys"], key=int) == [str(i) for i in range(1, N + 2)]
    # Every version has its own material: each encrypts something only it decrypts.
    for version in range(1, N + 2):
        body = await v.ok("POST", "transit/encrypt/k", json={"plaintext": b64(f"v{version}"), "key_version": version})
        ct = body["data"]["ciphertext"]
        assert ct.startswith(f"vault:v{version}:")
        assert unb64((await v.ok("POST", "transit/decrypt/k", json={"ciphertext": ct}))["data"]["plaintext"]) == \
            f"v{version}".encode()


async def test_concurrent_config_writes_and_a_rotation_all_stay(sqlite_transit: InProcessVault) -> None:
    v = sqlite_transit
    await v.ok("POST", "transit/keys/k")
    await v.ok("POST", "transit/keys/k/rotate")
    await _all_ok(v, [
        ("POST", "keys/k/config", {"deletion_allowed": True}),
        ("POST", "keys/k/config", {"exportable": True}),
        ("POST", "keys/k/config", {"allow_plaintext_backup": True}),
        ("POST", "keys/k/config", {"auto_rotate_period": "2h"}),
        ("POST", "keys/k/config", {"min_decryption_version": 2}),
        ("POST", "keys/k/rotate", None),
    ])
    key = (await v.ok("GET", "transit/keys/k"))["data"]
    assert key["deletion_allowed"] and key["exportable"] and key["allow_plaintext_backup"]
    assert key["auto_rotate_period"] == 7200
    assert key["min_decryption_version"] == 2
    assert key["latest_version"] == 3


async def test_concurrent_upserts_create_one_key(sqlite_transit: InProcessVault, runs: Runs) -> None:
    v = sqlite_transit
    runs.count = 0
    bodies = await _all_ok(v, [("POST", "encrypt/new", {"plaintext": b64(f"p{i}")}) for i in range(N)])
    assert runs.count > N
    key = (await v.ok("GET", "transit/keys/new"))["data"]
    assert key["latest_version"] == 1
    for i, body in enumerate(bodies):
        plain = await v.ok("POST", "transit/decrypt/new", json={"ciphertext": body["data"]["ciphertext"]})
        assert unb64(plain["data"]["plaintext"]) == f"p{i}".encode()


async def test_encryptions_racing_rotations_all_decrypt(sqlite_transit: InProcessVault) -> None:
    v = sqlite_transit
    await v.ok("POST", "transit/keys/k")
    calls: list[tuple[str, str, dict[str, Any] | None]] = []
    for i in range(N):
        calls.append(("POST", "keys/k/rotate", None))
        calls.append(("POST", "encrypt/k", {"plaintext": b64(f"p{i}")}))
    results = await _all_ok(v, calls)
    assert (await v.ok("GET", "transit/keys/k"))["data"]["latest_version"] == N + 1
    for i in range(N):
        ct = results[2 * i + 1]["data"]["ciphertext"]
        plain = await v.ok("POST", "transit/decrypt/k", json={"ciphertext": ct})
        assert unb64(plain["data"]["plaintext"]) == f"p{i}".encode()


async def test_trims_racing_rotations_and_config_keep_the_rules(sqlite_transit: InProcessVault) -> None:
    v = sqlite_transit
    await v.ok("POST", "transit/keys/k")
    for _ in range(4):
        await v.ok("POST", "transit/keys/k/rotate")
    await v.ok("POST", "transit/keys/k/config", json={"min_decryption_version": 3, "min_encryption_version": 3})
    outcomes = await asyncio.gather(
        v.call("POST", "transit/keys/k/trim", json={"min_available_version": 3}),
        v.call("POST", "transit/keys/k/config", json={"min_decryption_version": 1}),
        v.call("POST", "transit/keys/k/rotate"),
        v.call("POST", "transit/keys/k/trim", json={"min_available_version": 2}),
    )
    assert all(r.status_code in (200, 400) for r in outcomes)
    key = (await v.ok("GET", "transit/keys/k"))["data"]
    # Whatever the order, the invariants hold: nothing still decryptable was trimmed.
    assert key["min_available_version"] <= key["min_decryption_version"] <= key["min_encryption_version"]
    assert key["latest_version"] == 6
    for version in range(key["min_decryption_version"], 7):
        body = await v.ok("POST", "transit/encrypt/k", json={"plaintext": b64("x"), "key_version": version}) \
            if version >= key["min_encryption_version"] else None
        if body is not None:
            await v.ok("POST", "transit/decrypt/k", json={"ciphertext": body["data"]["ciphertext"]})
