"""Barrier encryptions are reserved in blocks per term, and the keyring rotates at the safe bound."""

from __future__ import annotations

from strongroom.core.encryption_budget import BLOCK
from tests.support.vault import InProcessVault


async def _write(vault: InProcessVault, name: str) -> None:
    await vault.ok("PUT", f"sys/policies/acl/{name}", json={"policy": 'path "x" { capabilities = ["read"] }'})


async def test_blocks_are_reserved_and_counted(vault: InProcessVault) -> None:
    await _write(vault, "a")
    status = await vault.ok("GET", "sys/key-status")
    assert 0 < status["data"]["encryptions"] < BLOCK
    keys = vault.node.root.keys
    assert keys is not None
    # Pretend this node used most of its block: the next request reserves another one.
    keys.barrier.encryptions = BLOCK - 10
    await _write(vault, "b")
    total = vault.node.root.budget.encryptions(keys)
    assert total >= BLOCK - 10


async def test_keyring_rotates_when_the_term_reaches_the_threshold(vault: InProcessVault) -> None:
    budget = vault.node.root.budget
    budget.threshold = 3 * BLOCK
    before = (await vault.ok("GET", "sys/key-status"))["data"]["term"]
    for i in range(4):
        keys = vault.node.root.keys
        assert keys is not None
        keys.barrier.encryptions = budget._current(keys).allowed  # used everything reserved so far
        await _write(vault, f"p{i}")
    after = (await vault.ok("GET", "sys/key-status"))["data"]["term"]
    assert after == before + 1
    # Everything written before and after the rotation is still readable.
    for i in range(4):
        await vault.ok("GET", f"sys/policies/acl/p{i}")
