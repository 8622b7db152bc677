"""Fault tests with real processes on loopback: concurrent compare-and-set, a node killed under load, etcd
members stopped, PostgreSQL connections terminated, and what a dump of each backend reveals.

Every load is bounded by a count of requests; waits are bounded (``BOUND``) and only turn hangs into
failures. What each test accepts from the servers: 200, a CAS mismatch (400) where CAS is used, and 503
while a fault lasts; never a 500, never a hang. Run alone: ``pytest tests/cluster/test_faults.py``.
"""

from __future__ import annotations

import asyncio
import base64
import secrets
from collections.abc import Iterator

import asyncpg  # type: ignore[import-untyped]
import pytest

from strongroom.storage.etcd_client import EtcdClient
from strongroom.storage.subspace import ROOT_NAMESPACE_ID, namespace
from tests.cluster.backends import BACKENDS, PostgresBackend, make_backend
from tests.cluster.conftest import StartNodes
from tests.cluster.loads import Clients, Tally, run_load, write_until_acked
from tests.cluster.nodes import Cluster, start_cluster
from tests.conformance import factory_postgresql
from tests.support.etcd import EtcdCluster, leader

pytestmark = pytest.mark.slow

NODES, CLIENTS_PER_NODE, CAS_ATTEMPTS = 3, 32, 3


@pytest.fixture(scope="module", params=BACKENDS)
def shared(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Three nodes over one store of each backend, shared by the CAS test and the dump test after it."""
    workdir = tmp_path_factory.mktemp(f"faults-{request.param}")
    backend = make_backend(request.param, workdir / "store")
    try:
        cluster = start_cluster(backend, workdir, NODES)
        try:
            cluster.ok(0, "POST", "sys/mounts/secret", json={"type": "kv", "options": {"version": "2"}})
            yield cluster
        finally:
            cluster.close()
    finally:
        backend.close()


async def test_concurrent_cas_increments_from_three_nodes(shared: Cluster) -> None:
    """3 nodes x 32 clients each make CAS_ATTEMPTS check-and-set increments of one secret (read the
    version, write with ``cas`` = that version): the final version is the number of acknowledged writes,
    and each acknowledged write got its own version, the one after the version it read."""
    cluster, clients, tally = shared, Clients(shared), Tally()
    versions: list[int] = []

    async def increment(c: int, _attempt: int) -> None:
        node = c % NODES
        r = await clients.request(node, "GET", "secret/data/counter")
        assert r.status_code in (200, 404), r.text
        current = r.json()["data"]["metadata"]["version"] if r.status_code == 200 else 0
        w = await clients.request(
            node,
            "POST",
            "secret/data/counter",
            json={"options": {"cas": current}, "data": {"n": current + 1}},
        )
        tally.statuses[w.status_code] += 1
        if w.status_code == 200:
            versions.append(w.json()["data"]["version"])
            assert versions[-1] == current + 1
        else:
            # A mismatch (another client won) or conflicts exhausted (503): both wrote nothing.
            assert w.status_code in (400, 503), w.text

    try:
        await run_load(NODES * CLIENTS_PER_NODE, CAS_ATTEMPTS, increment)
    finally:
        await clients.aclose()
    assert tally.unexpected() == {}, tally
    assert len(versions) > NODES  # several landed (the first of each round of contention at least)
    assert sorted(versions) == list(range(1, len(versions) + 1))
    for node in range(NODES):
        data = cluster.ok(node, "GET", "secret/data/counter")["data"]
        assert data["metadata"]["version"] == len(versions)
        assert data["data"] == {"n": len(versions)}


# -- the dump -------------------------------------------------------------------------------------------

MOUNT, V1_MOUNT, TRANSIT = "corp-finance-mount", "legacy-kv-mount", "payments-transit"
POLICY, TRANSIT_KEY = "payroll-policy-name", "card-numbers-key"
SECRET_PATH, SECRET_VALUE = "hr/salaries/alice-smith", "VALUE-0xDEADBEEF-unique"
METADATA_VALUE, V1_PATH, V1_VALUE = "owner-bob-the-builder", "team-alpha/credentials", "hunter2-very-secret"
PLAINTEXT = "4111-1111-1111-1111-visa"


def _needles(names: list[str]) -> list[bytes]:
    out = []
    for n in names:
        raw = n.encode()
        out += [raw, n.upper().encode(), base64.b64encode(raw), raw.hex().encode()]
        out += [p.encode() for p in n.split("/") if len(p) >= 6]
    return out


def test_dump_shows_no_names_values_or_tokens(shared: Cluster) -> None:
    """After the CAS load, names and values written through all three nodes appear nowhere in the store."""
    c = shared
    c.ok(0, "POST", f"sys/mounts/{MOUNT}", json={"type": "kv", "options": {"version": "2"}})
    c.ok(1, "POST", f"sys/mounts/{V1_MOUNT}", json={"type": "kv", "options": {"version": "1"}})
    c.ok(2, "POST", f"sys/mounts/{TRANSIT}", json={"type": "transit"})
    c.ok(
        0,
        "PUT",
        f"sys/policies/acl/{POLICY}",
        json={"policy": f'path "{MOUNT}/data/hr/*" {{ capabilities = ["read"] }}'},
    )
    c.ok(1, "POST", f"{MOUNT}/data/{SECRET_PATH}", json={"data": {"salary": SECRET_VALUE}})
    c.ok(2, "POST", f"{MOUNT}/metadata/{SECRET_PATH}", json={"custom_metadata": {"owner": METADATA_VALUE}})
    c.ok(0, "POST", f"{V1_MOUNT}/{V1_PATH}", json={"password": V1_VALUE})
    c.ok(1, "POST", f"{TRANSIT}/keys/{TRANSIT_KEY}")
    plain = base64.b64encode(PLAINTEXT.encode()).decode()
    c.ok(2, "POST", f"{TRANSIT}/encrypt/{TRANSIT_KEY}", json={"plaintext": plain})
    token = c.ok(0, "POST", "auth/token/create", json={"policies": [POLICY]})["auth"]
    assert (
        c.ok(2, "GET", f"{MOUNT}/data/{SECRET_PATH}", token["client_token"])["data"]["data"]["salary"]
        == SECRET_VALUE
    )
    dump = c.backend.dump()
    # The dump holds the store's records: the root namespace's key prefix appears in it.
    assert len(dump) > 4096 and namespace(ROOT_NAMESPACE_ID).key() in dump
    names = [MOUNT, V1_MOUNT, TRANSIT, POLICY, TRANSIT_KEY, SECRET_PATH, SECRET_VALUE, METADATA_VALUE, V1_PATH,
             V1_VALUE, PLAINTEXT]  # fmt: skip
    secrets_ = [c.root_token, token["client_token"], token["accessor"], *c.keys]
    assert [n for n in _needles(names + secrets_) if n in dump] == []


# -- kill -9 a node under write load --------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
async def test_node_killed_under_write_load_loses_no_acknowledged_write(
    start_nodes: StartNodes, backend: str
) -> None:
    """kill -9 one of three nodes while 12 clients write; clients of the dead node fail over to the others.
    Every acknowledged write reads back complete from both survivors; no secret is half written."""
    cluster = start_nodes(backend, NODES)
    cluster.ok(0, "POST", "sys/mounts/load", json={"type": "kv", "options": {"version": "2"}})
    clients, tally, victim = Clients(cluster), Tally(), NODES - 1
    live = list(range(NODES))

    async def write(c: int, i: int) -> None:
        tag = secrets.token_hex(8)
        home = c % NODES
        # A client whose node died goes to a survivor, as a load balancer would send it.
        await write_until_acked(
            clients, tally, f"load/data/c{c}/k{i}", {"a": tag, "b": tag},
            lambda: home if home in live else live[c % len(live)],
        )  # fmt: skip

    def kill() -> None:
        live.remove(victim)
        cluster.kill(victim)

    try:
        await run_load(12, 15, write, at={60: kill})
    finally:
        await clients.aclose()
    assert tally.unexpected() == {}, tally
    assert len(tally.acked) == 12 * 15
    for node in (0, 1):
        for c in range(12):
            listed = cluster.ok(node, "LIST", f"load/metadata/c{c}")["data"]["keys"]
            assert sorted(listed) == sorted(f"k{i}" for i in range(15))
            for i in range(15):
                data = cluster.ok(node, "GET", f"load/data/c{c}/k{i}")["data"]["data"]
                assert data["a"] == data["b"]  # never half written
        for path, data in tally.acked.items():
            # Retries of a write whose outcome was unknown wrote the same data again.
            assert cluster.ok(node, "GET", path)["data"]["data"] == data, path


# -- etcd members stopped under load ---------------------------------------------------------------------


async def _revision(cluster: EtcdCluster, index: int) -> int:
    """The revision member ``index`` has applied (its own answer, no other member asked)."""
    client = EtcdClient(
        [("127.0.0.1", cluster.members[index].client_port)], timeout=5, attempt_timeout=5, max_connections=1
    )
    try:
        answer, _ = await client.call("/v3/maintenance/status", {})
    finally:
        await client.close()
    return int(answer["header"]["revision"])


async def _caught_up(cluster: EtcdCluster, index: int, other: int) -> None:
    for _ in range(600):
        if await _revision(cluster, index) >= await _revision(cluster, other):
            return
        await asyncio.sleep(0.2)
    pytest.fail(f"etcd member {index} did not catch up")


async def test_etcd_members_stopped_under_load(
    private_etcd_cluster: EtcdCluster, start_nodes: StartNodes
) -> None:
    """Two nodes over a private 3-member etcd cluster (the etcd fixture first: its members outlive the
    nodes at teardown, so the nodes stop cleanly)."""
    etcd = private_etcd_cluster
    cluster = start_nodes("etcd", 2, etcd=etcd)
    cluster.ok(0, "POST", "sys/mounts/load", json={"type": "kv", "options": {"version": "2"}})
    clients, tally = Clients(cluster), Tally()
    stopped = await leader(etcd)

    async def write(c: int, i: int) -> None:
        await write_until_acked(clients, tally, f"load/data/c{c}/k{i}", {"v": i}, lambda: c % 2)

    try:
        # 1. The leader stops during the load: writes go on (503s allowed during the election).
        await run_load(8, 15, write, at={40: lambda: etcd.stop_member(stopped)})
        assert tally.unexpected() == {}, tally
        assert len(tally.acked) == 8 * 15
        for path, data in tally.acked.items():
            assert cluster.ok(1, "GET", path)["data"]["data"] == data

        # 2. It comes back and catches up with the others.
        etcd.start_member(stopped)
        etcd.wait_healthy([stopped])
        others = [i for i in range(3) if i != stopped]
        await _caught_up(etcd, stopped, others[0])

        # 3. Another member stops: the restarted one is part of the quorum that keeps writes going.
        etcd.stop_member(others[0])
        for i in range(10):
            await write_until_acked(clients, tally, f"load/data/after/k{i}", {"v": i}, lambda i=i: i % 2)
        assert tally.unexpected() == {}, tally

        # 4. Two of three stopped: no quorum. Requests fail cleanly with 503 within the store's bound (2 s).
        etcd.stop_member(others[1])
        for node, method, path, body in [(0, "POST", "load/data/none", {"data": {"v": 1}}),
                                         (1, "GET", "load/data/after/k0", None),
                                         (1, "POST", "load/data/none", {"data": {"v": 1}})]:  # fmt: skip
            r = await clients.request(node, method, path, json=body)
            assert r.status_code == 503, (node, method, r.status_code, r.text)
        # 5. A member returns: writes succeed again, and nothing acknowledged was lost.
        etcd.start_member(others[1])
        await write_until_acked(clients, tally, "load/data/recovered", {"v": 1}, lambda: 0)
        assert tally.unexpected() == {}, tally
        for path, data in tally.acked.items():
            assert cluster.ok(1, "GET", path)["data"]["data"] == data
    finally:
        await clients.aclose()
    assert "Traceback" not in cluster.logs()


# -- PostgreSQL connections terminated ----------------------------------------------------------------------


async def _terminate(application: str) -> int:
    conn = await asyncpg.connect(factory_postgresql.URL, timeout=10)
    try:
        rows = await conn.fetch(
            "SELECT pg_terminate_backend(pid) AS done FROM pg_stat_activity WHERE application_name = $1",
            application,
        )
    finally:
        await conn.close()
    return sum(1 for r in rows if r["done"])


async def test_postgresql_connections_terminated_under_load(start_nodes: StartNodes) -> None:
    cluster = start_nodes("postgresql", 2)
    backend = cluster.backend
    assert isinstance(backend, PostgresBackend)
    application = backend.application_name  # only these nodes' connections are terminated
    cluster.ok(0, "POST", "sys/mounts/load", json={"type": "kv", "options": {"version": "2"}})
    clients, tally = Clients(cluster), Tally()
    terminated: list[int] = []

    async def terminate() -> None:
        terminated.append(await _terminate(application))

    async def write(c: int, i: int) -> None:
        await write_until_acked(clients, tally, f"load/data/c{c}/k{i}", {"v": i}, lambda: c % 2)

    try:
        await run_load(8, 20, write, at={30: terminate, 80: terminate, 130: terminate})
        assert sum(terminated) > 0, "no connection of the servers was found to terminate"
        assert tally.unexpected() == {}, tally
        assert len(tally.acked) == 8 * 20
        # Reconnected: both nodes serve reads and writes again.
        for node in (0, 1):
            await write_until_acked(
                clients, tally, f"load/data/after{node}", {"v": node}, lambda node=node: node
            )
        for path, data in tally.acked.items():
            assert cluster.ok(1, "GET", path)["data"]["data"] == data
    finally:
        await clients.aclose()
    assert "Traceback" not in cluster.logs()
