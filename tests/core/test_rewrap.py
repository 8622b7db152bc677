"""core/rewrap.py: after ``sys/rotate`` every record of the rotated keyring is brought to the new term, then
the older terms leave the keyring; resumable, fenced by the job lease, safe against concurrent writers.

The world: a platform with a KV mount, a plain namespace ``team`` (shares the platform keyring) and a tenant
``acme`` (its own keyring; its key copy is a platform record), all with data, on a memory store (one
event loop) or SQLite (commits through its writer thread, so tasks really interleave).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from strongroom.barrier.barrier import Barrier
from strongroom.barrier.keyring import Keyring
from strongroom.core import rewrap
from strongroom.core.background import BackgroundRunner, Outcome
from strongroom.core.namespaces import registry
from strongroom.core.node import Node
from strongroom.core.rewrap import rewrap_pending
from strongroom.core.tenant_seal import KEY_COPIES, TenantVault
from strongroom.engines.bootstrap import create_root_token
from strongroom.errors import CorruptRecord, RecordTooLarge
from strongroom.storage.base import Store, StoreLimits, Transaction, transactional
from strongroom.storage.memory import MemoryStore
from strongroom.storage.subspace import ROOT_NAMESPACE_ID, namespace
from strongroom.storage.tuple import range_of, unpack
from strongroom.storage.url import open_store
from tests.support.namespaces import Namespaces, Tenant
from tests.support.vault import start_vault

KV2 = {"type": "kv", "options": {"version": "2"}}


@dataclass
class World:
    ns: Namespaces
    tenant: Tenant
    team_id: bytes
    acme_id: bytes

    @property
    def node(self) -> Node:
        return self.ns.vault.node

    @property
    def store(self) -> Store:
        return self.node.store

    async def put(self, path: str, value: str, *, ns: str = "", token: str | None = None) -> None:
        await self.ns.ok("POST", f"kv/data/{path}", ns=ns, token=token, json={"data": {"v": value}})

    async def get(self, path: str, *, ns: str = "", token: str | None = None, version: int = 0) -> str:
        query = f"?version={version}" if version else ""
        body = await self.ns.ok("GET", f"kv/data/{path}{query}", ns=ns, token=token)
        value: str = body["data"]["data"]["v"]
        return value

    async def unseal_tenant(self, *, root_token: bool = False) -> str:
        """Unseal ``acme`` with its share through core (who may call the HTTP ceremony is the IAM's
        business, tested elsewhere); with ``root_token``, also make a root token in its own store."""
        vault = TenantVault(self.node.root, self.acme_id, self.tenant.path)
        await vault.submit_unseal(self.tenant.keys[0])
        if not root_token:
            return ""

        async def issue(tx: Transaction) -> str:
            return await create_root_token(tx, await vault.current_keys(tx), self.node.clock)

        return await transactional(self.store, issue)

    async def status(self, *, ns: str = "", token: str | None = None) -> dict[str, Any]:
        body = await self.ns.ok("GET", "sys/rotate/status", ns=ns, token=token)
        data: dict[str, Any] = body["data"]
        return data


async def build(store: Store | None = None, *, secrets: int = 20) -> World:
    vault = await start_vault(store or MemoryStore())
    ns = Namespaces(vault)
    await ns.ok("POST", "sys/mounts/kv", json=KV2)
    await ns.plain("team")
    await ns.ok("POST", "sys/mounts/kv", ns="team", json=KV2)
    seal = 'seal "shamir" { shares = 1 threshold = 1 }'
    created = (await ns.ok("POST", "sys/namespaces/acme", json={"seal": seal}))["data"]
    tenant = Tenant(created["path"], created["key_shares"], "", 1)
    world = World(ns, tenant, b"", b"")
    world.acme_id = await _tenant_id(world.node)
    tenant.root_token = await world.unseal_tenant(root_token=True)
    await ns.ok("POST", "sys/mounts/kv", ns="acme", token=tenant.root_token, json=KV2)
    for i in range(secrets):
        await world.put(f"app/{i}", f"root-{i}")
    for i in range(5):
        await world.put(f"svc/{i}", f"team-{i}", ns="team")
        await world.put(f"db/{i}", f"acme-{i}", ns="acme", token=tenant.root_token)
    world.team_id = world.node.vault("team").ns_id
    return world


async def _tenant_id(node: Node) -> bytes:
    async with node.store.transaction() as tx:
        tree = await registry(tx, await node.root.current_keys(tx))
    return next(ns_id for ns_id, (_, sealable) in tree.items() if sealable)


@pytest.fixture
async def world() -> AsyncIterator[World]:
    w = await build()
    try:
        yield w
    finally:
        await w.ns.vault.client.aclose()
        await w.node.close()


async def record_terms(store: Store) -> dict[bytes, Counter[int]]:
    """Barrier-header terms of every stored record, per namespace id (seal config and keyring left out)."""
    out: dict[bytes, Counter[int]] = {}
    async with store.transaction() as tx:
        rows = await tx.range(*range_of(("ns",)))
    for key, value in rows:
        items = unpack(key)
        if items[0] != "ns" or items[2] in ("seal", "keyring"):
            continue
        out.setdefault(items[1], Counter())[Barrier.term_of(value)] += 1
    return out


async def stored_keyring(world: World, ns_id: bytes) -> Keyring:
    """The keyring of ``ns_id`` as storage holds it, opened with the root key this node holds."""
    vault = world.node.root if ns_id == ROOT_NAMESPACE_ID else world.node.vault("acme")
    assert vault.keys is not None
    async with world.store.transaction() as tx:
        blob = await tx.get(namespace(ns_id).key("keyring"))
    assert blob is not None
    return Keyring.open(vault.keys.root_key, namespace(ns_id).key("keyring"), blob)


async def test_platform_rotation_rewraps_every_platform_record_then_drops_the_old_term(world: World) -> None:
    before = await record_terms(world.store)
    assert set(before[ROOT_NAMESPACE_ID]) == {1} and set(before[world.team_id]) == {1}
    await world.ns.ok("PUT", "sys/rotate")
    running = await world.status()
    assert running["state"] == "running" and running["phase"] == "counting" and running["term"] == 2
    assert running["readable_terms"] == [1, 2]

    steps = await rewrap_pending(world.node, batch=7)
    assert steps > 3  # bounded pages: many transactions, not one
    after = await record_terms(world.store)
    # The platform's own records and the plain namespace's (same keyring) are all under term 2 ...
    assert set(after[ROOT_NAMESPACE_ID]) == {2} and set(after[world.team_id]) == {2}
    # ... the tenant's records are under the tenant's keyring, untouched by the platform's rotation.
    assert after[world.acme_id] == before[world.acme_id]
    ring = await stored_keyring(world, ROOT_NAMESPACE_ID)
    assert [t.number for t in ring.terms] == [2] and ring.generation == 3
    done = await world.status()
    assert done["state"] == "done" and done["phase"] == "complete" and done["failed"] == 0
    assert done["dropped_terms"] == [1] and done["readable_terms"] == [2]
    assert done["rewrapped"] == before[ROOT_NAMESPACE_ID][1] + before[world.team_id][1]
    assert done["done"] == done["total"] > 0 and done["passes"] == 3
    key_status = (await world.ns.ok("GET", "sys/key-status"))["data"]
    assert key_status["term"] == 2 and key_status["rewrap"] == done
    # Everything reads back, through the platform, the plain namespace and the tenant.
    assert await world.get("app/3") == "root-3"
    assert await world.get("svc/4", ns="team") == "team-4"
    assert await world.get("db/0", ns="acme", token=world.tenant.root_token) == "acme-0"
    # A second run finds nothing to do: no pending marker is left.
    async with world.store.transaction() as tx:
        keys = await world.node.root.current_keys(tx)
        assert await keys.records(tx, "sys", "rewrap-pending").range() == []
    assert await rewrap_pending(world.node) == 0


async def test_the_old_keyring_no_longer_opens_the_rewrapped_tenant_key_copy(world: World) -> None:
    old_ring = await stored_keyring(world, ROOT_NAMESPACE_ID)
    copy_key = namespace(ROOT_NAMESPACE_ID).key("sys", KEY_COPIES, world.acme_id)
    async with world.store.transaction() as tx:
        old_copy = await tx.get(copy_key)
    assert old_copy is not None
    assert Barrier(old_ring).decrypt(copy_key, old_copy)  # what an attacker with the old keyring reads today
    await world.ns.ok("PUT", "sys/rotate")
    await rewrap_pending(world.node)
    async with world.store.transaction() as tx:
        new_copy = await tx.get(copy_key)
    assert new_copy is not None and Barrier.term_of(new_copy) == 2
    with pytest.raises(CorruptRecord, match="unknown keyring term"):
        Barrier(old_ring).decrypt(copy_key, new_copy)
    # The tenant is still served from the re-wrapped copy.
    assert await world.get("db/1", ns="acme", token=world.tenant.root_token) == "acme-1"


async def test_tenant_rotation_rewraps_the_tenant_records_only(world: World) -> None:
    token = world.tenant.root_token
    before = await record_terms(world.store)
    await world.ns.ok("PUT", "sys/rotate", ns="acme", token=token)
    assert (await world.status(ns="acme", token=token))["term"] == 2
    assert (await world.status())["state"] == "idle"  # the platform's keyring did not rotate
    await rewrap_pending(world.node, batch=2)
    after = await record_terms(world.store)
    assert set(after[world.acme_id]) == {2}
    assert after[world.team_id] == before[world.team_id]
    assert [t.number for t in (await stored_keyring(world, world.acme_id)).terms] == [2]
    status = await world.status(ns="acme", token=token)
    assert status["state"] == "done" and status["dropped_terms"] == [1]
    assert await world.get("db/4", ns="acme", token=token) == "acme-4"
    # A plain namespace has no keyring of its own: OpenBao's answer, as sys/key-status.
    assert await world.ns.fails(400, "GET", "sys/rotate/status", ns="team") == ["namespace is not sealable"]


async def test_a_sealed_tenant_waits_and_a_deleted_one_is_forgotten(world: World) -> None:
    token = world.tenant.root_token
    old_records = (await record_terms(world.store))[world.acme_id][1]
    await world.ns.ok("PUT", "sys/rotate", ns="acme", token=token)
    await world.ns.ok("PUT", "sys/namespaces/acme/seal")
    await rewrap_pending(world.node)
    assert (await record_terms(world.store))[world.acme_id][1] == old_records  # its keys are nowhere
    await world.unseal_tenant()
    assert (await world.status(ns="acme", token=token))["state"] == "running"
    await rewrap_pending(world.node)
    assert set((await record_terms(world.store))[world.acme_id]) == {2}
    # Rotate again, seal, delete: the pending re-wrap is dropped with the tenant.
    await world.ns.ok("PUT", "sys/rotate", ns="acme", token=token)
    await world.ns.ok("PUT", "sys/namespaces/acme/seal")
    await world.ns.ok("DELETE", "sys/namespaces/acme/delete-sealed")
    await rewrap_pending(world.node)
    async with world.store.transaction() as tx:
        keys = await world.node.root.current_keys(tx)
        assert await keys.records(tx, "sys", "rewrap").get(world.acme_id) is None


async def test_a_second_rotation_during_the_walk_restarts_it_toward_the_new_term(world: World) -> None:
    await world.ns.ok("PUT", "sys/rotate")
    while (status := await world.status())["phase"] != "rewrapping" or status["done"] < 10:
        await rewrap_pending(world.node, batch=5, max_steps=1)
    await world.ns.ok("PUT", "sys/rotate")
    assert (await world.status())["term"] == 3
    await rewrap_pending(world.node, batch=5)
    terms = await record_terms(world.store)
    assert set(terms[ROOT_NAMESPACE_ID]) == {3} and set(terms[world.team_id]) == {3}
    assert [t.number for t in (await stored_keyring(world, ROOT_NAMESPACE_ID)).terms] == [3]
    assert (await world.status())["dropped_terms"] == [1, 2]


async def test_an_undecryptable_record_is_counted_and_the_old_term_kept(world: World) -> None:
    await world.ns.ok("PUT", "sys/rotate")
    # Damage one old-term record of the KV mount (storage is untrusted): flip a ciphertext byte.
    async with world.store.transaction() as tx:
        keys = await world.node.root.current_keys(tx)
        begin, end = keys.space.sub("m").range()
        key, value = (await tx.range(begin, end, limit=1))[0]
        tx.set(key, value[:-1] + bytes([value[-1] ^ 1]))
    await rewrap_pending(world.node)
    status = await world.status()
    assert status["state"] == "done" and status["failed"] == 1 and status["dropped_terms"] == []
    assert status["readable_terms"] == [1, 2]  # kept: dropping them would make nothing better
    terms = await record_terms(world.store)
    assert terms[ROOT_NAMESPACE_ID][1] == 1  # only the damaged record is left under term 1


async def test_automatic_or_earlier_rotations_are_discovered_for_the_platform(world: World) -> None:
    # A rotation written without a re-wrap record (as the encryption budget's automatic one, or an older
    # server): the job notices the extra term and starts the re-wrap itself.
    async def rotate_behind_the_back(tx: Transaction) -> None:
        keys = await world.node.root.current_keys(tx)
        ring = keys.keyring.rotated(world.node.clock.now())
        tx.set(keys.space.key("keyring"), ring.seal(keys.root_key, keys.space.key("keyring")))

    async with world.store.transaction() as tx:
        await rotate_behind_the_back(tx)
    assert (await world.status())["state"] == "idle"
    await rewrap_pending(world.node)
    assert set((await record_terms(world.store))[ROOT_NAMESPACE_ID]) == {2}
    assert (await world.status())["dropped_terms"] == [1]


# -- resumption, fencing, concurrency --------------------------------------------------------------------


class Crash(Exception):
    """The lease holder dies (the transaction in flight is lost with it)."""


def crashing_fence(after: int) -> Callable[[Transaction], Awaitable[None]]:
    calls = 0

    async def fence(tx: Transaction) -> None:
        nonlocal calls
        calls += 1
        if calls > after:
            raise Crash()

    return fence


async def test_a_killed_lease_holder_is_resumed_by_another_node_from_the_cursor(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = Node(world.store, clock=world.node.clock)
    for key in world.ns.vault.keys[:2]:
        await other.root.submit_unseal(key)
    a = BackgroundRunner(world.node, holder="node-a", lease_ttl=30)
    b = BackgroundRunner(other, holder="node-b", lease_ttl=30)
    rewrap.install(a)
    rewrap.install(b)
    await world.ns.ok("PUT", "sys/rotate")
    # Node A takes the lease and commits 4 steps (the testing knobs: 3 records a step, 4 steps a run) ...
    monkeypatch.setenv(rewrap.BATCH_ENV, "3")
    monkeypatch.setenv(rewrap.STEPS_ENV, "4")
    assert (await a.run_once())[rewrap.JOB_NAME] is Outcome.RAN
    # ... then dies inside its next step: that transaction never commits.
    with pytest.raises(Crash):
        await rewrap_pending(world.node, fence=crashing_fence(0), batch=3)
    stopped = await world.status()
    assert stopped["state"] == "running" and stopped["done"] > 0
    # Node B cannot start while A's lease lives; once it lapsed, B resumes where A stopped.
    monkeypatch.delenv(rewrap.STEPS_ENV)
    assert (await b.run_once())[rewrap.JOB_NAME] is Outcome.BUSY
    world.node.clock.advance(31)  # type: ignore[attr-defined]
    assert (await b.run_once())[rewrap.JOB_NAME] is Outcome.RAN
    done = await world.status()
    assert done["state"] == "done" and done["dropped_terms"] == [1]
    assert stopped["phase"] == "counting" or done["rewrapped"] >= stopped["rewrapped"]
    terms = await record_terms(world.store)
    assert set(terms[ROOT_NAMESPACE_ID]) == {2} and set(terms[world.team_id]) == {2}
    # Node A comes back with the old keyring in memory: it adopts the new generation at its next request.
    assert await world.get("app/9") == "root-9"
    await world.put("app/new", "after")
    assert (await record_terms(world.store))[ROOT_NAMESPACE_ID].keys() == {2}
    other.root.seal()


async def test_a_runner_whose_lease_passed_on_writes_nothing(world: World) -> None:
    await world.ns.ok("PUT", "sys/rotate")
    a = BackgroundRunner(world.node, holder="a", lease_ttl=10)
    lease = await a.leases.acquire(rewrap.JOB_NAME, 10)
    assert lease is not None
    world.node.clock.advance(11)  # type: ignore[attr-defined]
    b = BackgroundRunner(world.node, holder="b", lease_ttl=10)
    assert await b.leases.acquire(rewrap.JOB_NAME, 10) is not None
    before = await record_terms(world.store)

    async def fence(tx: Transaction) -> None:
        await a.leases.check(tx, lease)

    with pytest.raises(rewrap.LeaseLost):
        await rewrap_pending(world.node, fence=fence)
    assert await record_terms(world.store) == before


class Interleaving:
    """A store whose range reads let a concurrent writer commit before the reading transaction does."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.hook: Callable[[], Awaitable[None]] | None = None
        self.scan_start = namespace(ROOT_NAMESPACE_ID).range()[0]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def transaction(self) -> Any:
        outer = self

        class Tx:
            async def __aenter__(self) -> Any:
                self.ctx = outer.inner.transaction()
                self.tx = await self.ctx.__aenter__()
                return self

            async def __aexit__(self, *exc: Any) -> Any:
                return await self.ctx.__aexit__(*exc)

            def __getattr__(self, name: str) -> Any:
                return getattr(self.tx, name)

            async def range(self, begin: bytes, end: bytes, **kw: Any) -> Any:
                rows = await self.tx.range(begin, end, **kw)
                if outer.hook is not None and begin == outer.scan_start:  # the walk's read of a page
                    hook, outer.hook = outer.hook, None
                    await hook()
                return rows

        return Tx()


async def test_a_record_changed_during_its_rewrap_keeps_the_new_value() -> None:
    store = Interleaving(MemoryStore())
    w = await build(store, secrets=3)  # type: ignore[arg-type]
    try:
        await w.ns.ok("PUT", "sys/rotate")
        await rewrap_pending(w.node, max_steps=1)  # counting done: the next range read is the re-wrap's
        writes = 0

        async def concurrent_writer() -> None:
            nonlocal writes
            for i in range(3):
                await w.put(f"app/{i}", f"changed-{i}")
                writes += 1

        store.hook = concurrent_writer
        await rewrap_pending(w.node, batch=256)
        assert writes == 3
        for i in range(3):  # the re-wrap conflicted, re-read and kept every concurrent value and version
            assert await w.get(f"app/{i}") == f"changed-{i}"
            assert await w.get(f"app/{i}", version=1) == f"root-{i}"
        assert set((await record_terms(w.store))[ROOT_NAMESPACE_ID]) == {2}
    finally:
        await w.ns.vault.client.aclose()
        await w.node.close()


async def test_concurrent_writes_during_the_rewrap_lose_nothing(tmp_path: Path) -> None:
    import asyncio

    w = await build(open_store(f"sqlite:///{tmp_path / 'rewrap.db'}"), secrets=30)
    try:
        await w.ns.ok("PUT", "sys/rotate")
        seen: list[str] = []

        async def writer(n: int) -> None:
            for round_ in range(8):
                await w.put(f"app/{n}", f"w{n}-{round_}")
                await w.put(f"svc/{n}", f"t{n}-{round_}", ns="team")
                seen.append((await w.status())["state"])

        async def job() -> None:
            await rewrap_pending(w.node, batch=2)

        await asyncio.gather(job(), *(writer(n) for n in range(4)))
        assert "running" in seen  # the writers really ran while the walk was under way
        await rewrap_pending(w.node)
        for n in range(4):
            assert await w.get(f"app/{n}") == f"w{n}-7"
            assert await w.get(f"svc/{n}", ns="team") == f"t{n}-7"
            for round_ in range(8):  # every version of the history is intact (KV v2 keeps them all)
                assert await w.get(f"app/{n}", version=round_ + 2) == f"w{n}-{round_}"
        for i in range(4, 30):
            assert await w.get(f"app/{i}") == f"root-{i}"
        terms = await record_terms(w.store)
        assert set(terms[ROOT_NAMESPACE_ID]) == {2} and set(terms[w.team_id]) == {2}
        assert (await w.status())["dropped_terms"] == [1]
    finally:
        await w.ns.vault.client.aclose()
        await w.node.close()


async def test_each_step_stays_within_the_stores_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    # etcd-like limits: few operations and bytes per transaction. Secrets of 4 KiB make the byte budget
    # (half the transaction bytes) bind before the page size does.
    limits = StoreLimits(max_transaction_ops=40, max_transaction_bytes=64 * 1024)
    w = await build(MemoryStore(limits), secrets=0)
    refused: list[Exception] = []
    real = rewrap.transactional

    async def counting(store: Store, fn: Any, **kw: Any) -> Any:
        try:
            return await real(store, fn, **kw)
        except RecordTooLarge as exc:
            refused.append(exc)
            raise

    monkeypatch.setattr(rewrap, "transactional", counting)
    try:
        for i in range(30):
            await w.put(f"big/{i}", f"{i}-" + "x" * 4096)
        await w.ns.ok("PUT", "sys/rotate")
        await rewrap_pending(w.node)
        status = await w.status()
        assert status["state"] == "done" and status["dropped_terms"] == [1] and status["rewrapped"] > 30
        assert refused == []  # the byte budget kept every step inside the limit: none had to be retried smaller
        assert set((await record_terms(w.store))[ROOT_NAMESPACE_ID]) == {2}
        assert (await w.get("big/29")).startswith("29-x")
    finally:
        await w.ns.vault.client.aclose()
        await w.node.close()


async def test_dropping_many_terms_fits_a_small_transaction() -> None:
    # Fifty rotations that were never re-wrapped (older servers), each term with an encryption counter,
    # then one rotation through the API, on a store allowing 40 operations per transaction.
    w = await build(MemoryStore(StoreLimits(max_transaction_ops=40)), secrets=2)
    try:
        for _ in range(50):
            async with w.store.transaction() as tx:
                keys = await w.node.root.current_keys(tx)
                ring = keys.keyring.rotated(w.node.clock.now())
                tx.set(keys.space.key("keyring"), ring.seal(keys.root_key, keys.space.key("keyring")))
                keys.records(tx, "ctr").put_json(("enc", ring.active.number), 1)
            await w.put("app/0", f"v{ring.active.number}")
        await w.ns.ok("PUT", "sys/rotate")
        await rewrap_pending(w.node)
        status = await w.status()
        assert status["state"] == "done" and status["dropped_terms"] == list(range(1, 52))
        assert set((await record_terms(w.store))[ROOT_NAMESPACE_ID]) == {52}
        assert await w.get("app/0") == "v51"
    finally:
        await w.ns.vault.client.aclose()
        await w.node.close()
