"""The seal lifecycle of a namespace vault, below HTTP."""

from __future__ import annotations

import pytest

from strongroom.clock import FakeClock
from strongroom.core.namespace import NamespaceKeys
from strongroom.core.vault import InitRequest, Vault
from strongroom.errors import AlreadyInitialized, InvalidRequest, InvalidShare, NotInitialized
from strongroom.storage.base import Transaction
from strongroom.storage.memory import MemoryStore


async def _setup(tx: Transaction, keys: NamespaceKeys) -> str:
    keys.records(tx, "sys").put_json(("marker",), {"ok": True})
    return "root-token"


async def test_init_unseal_seal() -> None:
    vault = Vault(MemoryStore(), FakeClock())
    with pytest.raises(NotInitialized):
        await vault.submit_unseal("00")
    result = await vault.initialize(InitRequest(3, 2), _setup)
    assert result.root_token == "root-token"
    assert len(result.keys) == 3 and all(len(k) == 66 for k in result.keys)
    assert vault.sealed
    status = await vault.status()
    assert status["initialized"] and status["t"] == 2 and status["n"] == 3
    await vault.submit_unseal(result.keys[0])
    assert (await vault.status())["progress"] == 1
    await vault.submit_unseal(result.keys_base64[1])
    assert not vault.sealed
    vault.seal()
    assert vault.sealed


async def test_init_twice_refused_and_bad_config() -> None:
    vault = Vault(MemoryStore(), FakeClock())
    with pytest.raises(InvalidRequest, match="invalid seal configuration: threshold cannot be larger"):
        await vault.initialize(InitRequest(2, 3), _setup)
    await vault.initialize(InitRequest(1, 1), _setup)
    with pytest.raises(AlreadyInitialized):
        await vault.initialize(InitRequest(1, 1), _setup)


async def test_failed_setup_leaves_store_uninitialised() -> None:
    store = MemoryStore()
    vault = Vault(store, FakeClock())

    async def broken(tx: Transaction, keys: NamespaceKeys) -> str:
        keys.records(tx, "sys").put_json(("half",), {})
        raise InvalidRequest("setup failed")

    with pytest.raises(InvalidRequest):
        await vault.initialize(InitRequest(1, 1), broken)
    assert await Vault(store, FakeClock()).seal_config() is None


async def test_shares_of_another_key_do_not_unseal() -> None:
    store = MemoryStore()
    vault = Vault(store, FakeClock())
    await vault.initialize(InitRequest(3, 2), _setup)
    other = await Vault(MemoryStore(), FakeClock()).initialize(InitRequest(3, 2), _setup)
    await vault.submit_unseal(other.keys[0])
    with pytest.raises(InvalidShare):
        await vault.submit_unseal(other.keys[1])
    assert vault.sealed
    assert (await vault.status())["progress"] == 0


async def test_reset_and_unseal_validation() -> None:
    vault = Vault(MemoryStore(), FakeClock())
    result = await vault.initialize(InitRequest(3, 2), _setup)
    await vault.submit_unseal(result.keys[0])
    await vault.submit_unseal(None, reset=True)
    assert (await vault.status())["progress"] == 0
    with pytest.raises(InvalidRequest, match="'key' must be specified"):
        await vault.submit_unseal(None)
    await vault.submit_unseal(result.keys[0])
    await vault.submit_unseal(result.keys[1])
    with pytest.raises(InvalidRequest, match="vault is unsealed"):
        await vault.submit_unseal(None, reset=True)
    await vault.submit_unseal(result.keys[2])  # a key sent to an unsealed vault is accepted and ignored
    assert not vault.sealed


async def test_a_second_node_unseals_from_the_same_store() -> None:
    store = MemoryStore()
    first = Vault(store, FakeClock())
    result = await first.initialize(InitRequest(3, 2), _setup)
    second = Vault(store, FakeClock())
    for k in result.keys[1:]:
        await second.submit_unseal(k)
    assert not second.sealed and first.sealed
