"""Token expiry cleanup in tenants and plain namespaces: the job sweeps every unsealed namespace's token
store and leaves sealed tenants alone (it never unseals one)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from strongroom.auth import token_cleanup
from strongroom.core.background import BackgroundRunner, Outcome
from strongroom.storage.base import Transaction, transactional
from strongroom.storage.subspace import namespace
from tests.support.namespaces import Namespaces
from tests.support.vault import start_vault


@pytest.fixture
async def ns() -> AsyncIterator[Namespaces]:
    vault = await start_vault()
    try:
        yield Namespaces(vault)
    finally:
        await vault.client.aclose()
        await vault.node.close()


async def _ns_id(ns: Namespaces, path: str) -> bytes:
    async def run(tx: Transaction) -> bytes:
        level = await ns.vault.node.namespaces.level(tx, path)
        assert level.entry is not None
        return level.entry.ns_id

    return await transactional(ns.vault.node.store, run)


async def _stored_tokens(ns: Namespaces, ns_id: bytes) -> int:
    """Token records stored in a namespace, counted in storage (readable whether or not it is sealed)."""
    begin, end = namespace(ns_id).sub("tok", "id").range()
    async with ns.vault.node.store.transaction() as tx:
        return len(await tx.range(begin, end))


async def _tokens(ns: Namespaces, path: str, token: str, count: int, ttl: str) -> list[str]:
    return [await ns.token_in(path, token, ["default"], ttl=ttl) for _ in range(count)]


async def test_expired_tokens_in_tenants_and_plain_namespaces_are_cleaned_not_in_sealed_ones(
    ns: Namespaces,
) -> None:
    acme = await ns.tenant("acme")
    asleep = await ns.tenant("asleep")
    await ns.plain("team", ns=acme.path, token=acme.root_token)
    ids = {path: await _ns_id(ns, path) for path in ("acme/", "acme/team/")}
    ids["asleep/"] = await _ns_id(ns, "asleep/")
    await _tokens(ns, "acme/", acme.root_token, 3, "1m")
    keep = await _tokens(ns, "acme/", acme.root_token, 1, "1h")
    await _tokens(ns, "acme/team/", acme.root_token, 2, "1m")  # orphans in the plain namespace's own store
    await _tokens(ns, "asleep/", asleep.root_token, 2, "1m")
    before = {path: await _stored_tokens(ns, ns_id) for path, ns_id in ids.items()}
    assert before == {"acme/": 1 + 3 + 1, "acme/team/": 2, "asleep/": 1 + 2}  # + each tenant's root token
    await ns.ok("PUT", "sys/namespaces/asleep/seal")

    runner = BackgroundRunner(ns.vault.node, interval=60, holder="a")
    runner.register(token_cleanup.JOB)
    ns.vault.clock.advance(61)
    assert await runner.run_once() == {token_cleanup.JOB_NAME: Outcome.RAN}
    after = {path: await _stored_tokens(ns, ns_id) for path, ns_id in ids.items()}
    assert after == {"acme/": 2, "acme/team/": 0, "asleep/": 3}
    for token in (acme.root_token, *keep):
        assert (await ns.call("GET", "auth/token/lookup-self", ns="acme/", token=token)).status_code == 200

    # Unsealed again, the tenant is cleaned at the next tick; its root token stays.
    await ns.unseal(asleep)
    await runner.run_once()
    assert await _stored_tokens(ns, ids["asleep/"]) == 1
    assert (
        await ns.call("GET", "auth/token/lookup-self", ns="asleep/", token=asleep.root_token)
    ).status_code == 200
    await runner.stop()
