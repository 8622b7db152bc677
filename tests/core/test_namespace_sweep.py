"""Sweeping background-job work over every unsealed namespace: pages, the stored cursor, sealed tenants.

Each namespace holds a policy ``who`` whose text names it, written through the API; the work function reads
it with the keys the sweep opened, which proves it got that namespace's own keys (a tenant's from its stored
key copy, a plain namespace's re-scoped from its owner's).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator

import pytest

from strongroom.auth.policy_store import PolicyStore
from strongroom.core.jobs import LeaseLost
from strongroom.core.namespace import ROOT_NAMESPACE_ID
from strongroom.core.namespace_sweep import CURSORS, NAMESPACES_PER_TICK, Visited, sweep
from strongroom.core.node import Node
from strongroom.core.vault import Vault
from strongroom.errors import InvalidRequest, Sealed
from strongroom.storage.base import Transaction, transactional
from tests.support.namespaces import Namespaces
from tests.support.vault import start_vault

JOB = "test-sweep"


@pytest.fixture
async def ns() -> AsyncIterator[Namespaces]:
    vault = await start_vault()
    try:
        yield Namespaces(vault)
    finally:
        await vault.client.aclose()
        await vault.node.close()


async def _who(ns: Namespaces, path: str, token: str | None = None) -> None:
    rule = f'# {path or "root"}\npath "x/*" {{ capabilities = ["read"] }}'
    await ns.ok("PUT", "sys/policies/acl/who", ns=path, token=token, json={"policy": rule})


async def _tree(ns: Namespaces) -> dict[str, str]:
    """root; plain ``pa``; tenants ``t1`` (with plain ``t1/inner`` and tenant ``t1/deep``), ``t2``; sealed
    tenant ``t3``. Returns ``{label: expected who-text prefix}`` of the unsealed ones."""
    await _who(ns, "")
    await ns.plain("pa")
    await _who(ns, "pa/")
    t1 = await ns.tenant("t1")
    await _who(ns, "t1/", t1.root_token)
    await ns.plain("inner", ns="t1/", token=t1.root_token)
    await _who(ns, "t1/inner/", t1.root_token)
    deep = await ns.tenant("deep", ns="t1/", token=t1.root_token)
    await _who(ns, "t1/deep/", deep.root_token)
    t2 = await ns.tenant("t2")
    await _who(ns, "t2/", t2.root_token)
    t3 = await ns.tenant("t3")
    await _who(ns, "t3/", t3.root_token)
    await ns.ok("PUT", "sys/namespaces/t3/seal")
    return {"root": "# root", "pa/": "# pa/", "t1/": "# t1/", "t1/inner/": "# t1/inner/", "t1/deep/": "# t1/deep/",
            "t2/": "# t2/"}  # fmt: skip


class Recorder:
    """A work function that reads ``who`` in the namespace it is given."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    async def __call__(self, vault: Vault) -> None:
        async def read(tx: Transaction) -> str:
            policy = await PolicyStore(tx, await vault.current_keys(tx)).get("who")
            assert policy is not None
            return policy.raw.splitlines()[0]

        self.seen.append(await transactional(vault.store, read))


async def test_pages_visit_every_unsealed_namespace_once_per_round(ns: Namespaces) -> None:
    expected = await _tree(ns)
    node = ns.vault.node
    work = Recorder()
    rounds: list[Visited] = []
    # 6 namespaces besides the root (one sealed), 2 per tick: three pages, then possibly an empty one.
    while True:
        rounds.append(await sweep(node, JOB, work, per_tick=2))
        if rounds[-1].wrapped:
            break
        assert len(rounds) < 10
    assert len(rounds) in (3, 4)  # 3 full pages, and possibly an empty last one
    counts = Counter(work.seen)
    # The root every tick; every other unsealed namespace exactly once in the round; never the sealed t3.
    assert counts.pop("# root") == len(rounds)
    assert sorted(counts) == sorted(v for k, v in expected.items() if k != "root")
    assert set(counts.values()) == {1}
    assert sum(len(r.sealed) for r in rounds) == 1 and not any(r.failed for r in rounds)
    assert all(r.worked[0] == ROOT_NAMESPACE_ID for r in rounds)
    # The next round starts again at the beginning.
    again = Recorder()
    first = await sweep(node, JOB, again, per_tick=64)
    assert first.wrapped and len(again.seen) == 1 + 5 and len(first.sealed) == 1


async def test_a_sealed_tenant_is_skipped_until_unsealed_and_never_unsealed_by_the_sweep(
    ns: Namespaces,
) -> None:
    await _who(ns, "")
    t = await ns.tenant("acme")
    await _who(ns, "acme/", t.root_token)
    await ns.ok("PUT", "sys/namespaces/acme/seal")
    work = Recorder()
    visited = await sweep(ns.vault.node, JOB, work)
    assert work.seen == ["# root"] and len(visited.sealed) == 1
    status = await ns.ok("GET", "sys/seal-status", ns="acme/", token=t.admin_token)
    assert status["sealed"] is True  # the sweep read no key copy into existence
    await ns.unseal(t)
    await sweep(ns.vault.node, JOB, work)
    assert work.seen == ["# root", "# root", "# acme/"]


async def test_the_cursor_moves_only_under_the_lease(ns: Namespaces) -> None:
    await _tree(ns)
    node = ns.vault.node

    async def lost(tx: Transaction) -> None:
        raise LeaseLost(JOB)

    work = Recorder()
    with pytest.raises(LeaseLost):
        await sweep(node, JOB, work, fence=lost, per_tick=2)

    async def cursor(tx: Transaction) -> object:
        return await (await node.root.current_keys(tx)).records(tx, "sys", CURSORS).get_json(JOB)

    assert await transactional(node.store, cursor) is None  # the fenced-off runner moved nothing
    first = Recorder()
    await sweep(node, JOB, first, per_tick=2)
    assert first.seen[1:] == work.seen[1:]  # the same page again
    stored = await transactional(node.store, cursor)
    assert isinstance(stored, dict) and len(bytes.fromhex(stored["after"])) == 16  # an id, no name


async def test_failures_skip_one_namespace_and_a_sealed_platform_stops_the_sweep(ns: Namespaces) -> None:
    await _tree(ns)
    node = ns.vault.node
    work = Recorder()

    async def failing(vault: Vault) -> None:
        if vault.ns_id != ROOT_NAMESPACE_ID and not work.seen[1:]:
            work.seen.append("failed")
            raise InvalidRequest("this namespace's work fails")
        await work(vault)

    visited = await sweep(node, JOB, failing)
    assert len(visited.failed) == 1 and len(visited.worked) == 1 + 4
    node.root.seal()
    assert await sweep(node, JOB, failing) == Visited([], [], [], False)

    async def seals_the_platform(vault: Vault) -> None:
        node.root.seal()
        raise Sealed()

    for key in ns.vault.keys[:2]:
        await node.root.submit_unseal(key)
    with pytest.raises(Sealed):
        await sweep(node, JOB, seals_the_platform)


async def test_a_tick_is_bounded_and_another_node_goes_on_from_the_stored_cursor(ns: Namespaces) -> None:
    for i in range(150):
        await ns.plain(f"n{i:03}")
    a = ns.vault.node
    b = Node(a.store, clock=ns.vault.clock)
    for key in ns.vault.keys[:2]:
        await b.root.submit_unseal(key)
    seen: list[bytes] = []

    async def count(vault: Vault) -> None:
        seen.append(vault.ns_id)

    first = await sweep(a, JOB, count)  # default page: the root and 64 others, whatever the total
    assert len(first.worked) == 1 + NAMESPACES_PER_TICK and not first.wrapped
    second = await sweep(b, JOB, count)  # another node (the lease moved) goes on from the stored cursor
    assert len(second.worked) == 1 + NAMESPACES_PER_TICK and not second.wrapped
    third = await sweep(a, JOB, count)
    assert len(third.worked) == 1 + 150 - 2 * NAMESPACES_PER_TICK and third.wrapped
    others = [ns_id for ns_id in seen if ns_id != ROOT_NAMESPACE_ID]
    assert len(others) == len(set(others)) == 150
    b.root.seal()
