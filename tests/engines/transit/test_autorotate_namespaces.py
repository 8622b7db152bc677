"""Transit auto-rotation in tenants and plain namespaces: the job sweeps every unsealed namespace and skips
sealed tenants (it never unseals one); time moves by the vault's FakeClock."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from strongroom.core.background import BackgroundRunner, Outcome
from strongroom.engines.transit import autorotate
from tests.support.namespaces import Namespaces, Tenant
from tests.support.vault import start_vault

HOUR = 3600


@pytest.fixture
async def ns() -> AsyncIterator[Namespaces]:
    vault = await start_vault()
    try:
        yield Namespaces(vault)
    finally:
        await vault.client.aclose()
        await vault.node.close()


async def _auto_rotating_key(ns: Namespaces, path: str, token: str) -> None:
    await ns.ok("POST", "sys/mounts/transit", ns=path, token=token, json={"type": "transit"})
    await ns.ok("POST", "transit/keys/k", ns=path, token=token, json={"auto_rotate_period": "1h"})


async def _latest(ns: Namespaces, path: str, token: str) -> int:
    body = await ns.ok("GET", "transit/keys/k", ns=path, token=token)
    version: int = body["data"]["latest_version"]
    return version


def _runner(ns: Namespaces) -> BackgroundRunner:
    runner = BackgroundRunner(ns.vault.node, interval=60, holder="a")
    runner.register(autorotate.JOB)
    return runner


async def test_keys_rotate_in_unsealed_tenants_and_their_plain_namespaces_not_in_sealed_ones(
    ns: Namespaces,
) -> None:
    live: Tenant = await ns.tenant("live")
    asleep: Tenant = await ns.tenant("asleep")
    await ns.plain("team", ns=live.path, token=live.root_token)
    await ns.plain("apps")  # a plain namespace of the platform
    places = [(live.path, live.root_token), ("live/team/", live.root_token), (asleep.path, asleep.root_token),
              ("apps/", ns.vault.root_token), ("", ns.vault.root_token)]  # fmt: skip
    for path, token in places:
        await _auto_rotating_key(ns, path, token)
    await ns.ok("PUT", "sys/namespaces/asleep/seal")
    runner = _runner(ns)

    ns.vault.clock.advance(HOUR / 2)
    assert await runner.run_once() == {autorotate.JOB_NAME: Outcome.RAN}
    ns.vault.clock.advance(HOUR / 2 + 1)
    assert await runner.run_once() == {autorotate.JOB_NAME: Outcome.RAN}
    for path, token in places:
        if path != asleep.path:
            assert await _latest(ns, path, token) == 2, path
    # The sealed tenant's key did not rotate (nothing of it could be read); unsealed, it is due at once.
    await ns.unseal(asleep)
    assert await _latest(ns, asleep.path, asleep.root_token) == 1
    await runner.run_once()
    assert await _latest(ns, asleep.path, asleep.root_token) == 2
    # Exactly once per period everywhere: the next ticks of this period rotate nothing more.
    for _ in range(3):
        ns.vault.clock.advance(60)
        await runner.run_once()
    assert [await _latest(ns, path, token) for path, token in places] == [2, 2, 2, 2, 2]
    await runner.stop()


async def test_a_rotated_tenant_key_encrypts_with_the_new_version(ns: Namespaces) -> None:
    t = await ns.tenant("acme")
    await _auto_rotating_key(ns, t.path, t.root_token)
    plaintext = {"plaintext": "aGVsbG8="}
    old = (await ns.ok("POST", "transit/encrypt/k", ns=t.path, token=t.root_token, json=plaintext))["data"]
    ns.vault.clock.advance(HOUR + 1)
    await _runner(ns).run_once()
    new = (await ns.ok("POST", "transit/encrypt/k", ns=t.path, token=t.root_token, json=plaintext))["data"]
    assert old["ciphertext"].startswith("vault:v1:") and new["ciphertext"].startswith("vault:v2:")
    decrypted = await ns.ok("POST", "transit/decrypt/k", ns=t.path, token=t.root_token, json=old)
    assert decrypted["data"]["plaintext"] == plaintext["plaintext"]
