"""Background jobs across real nodes: the token cleanup job's lease holder is killed (``kill -9``) in the
middle of a pass; after its lease lapses another node takes the job over and finishes the work.

The nodes run with the hidden testing knobs of core/job_settings.py (a tick every 0.2 s, a 3 s lease,
two tokens per transaction) and debug logging, where the job logs each batch with its lease fence. Token
records are counted directly in the store (their subspace, without decrypting anything).
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from strongroom.storage.subspace import ROOT_NAMESPACE_ID, namespace
from strongroom.storage.url import open_store
from tests.cluster.conftest import StartNodes
from tests.cluster.nodes import Cluster, wait_for

pytestmark = pytest.mark.slow

ENV = {
    "STRONGROOM_TEST_JOB_INTERVAL": "0.2",
    "STRONGROOM_TEST_JOB_LEASE_TTL": "3",
    "STRONGROOM_TEST_TOKEN_CLEANUP_BATCH": "2",
}
EXPIRING = 240
LIVE = 4
BATCH_LINE = re.compile(r"token cleanup: removed (\d+) dead tokens \(lease fence (\d+)\)")


def _stored_tokens(cluster: Cluster) -> int:
    begin, end = namespace(ROOT_NAMESPACE_ID).sub("tok", "id").range()

    async def count() -> int:
        store = open_store(cluster.backend.url())
        try:
            async with store.transaction() as tx:
                return len(await tx.range(begin, end))
        finally:
            await store.close()

    return asyncio.run(count())


def _batches(cluster: Cluster, i: int) -> list[tuple[int, int]]:
    """(tokens removed, lease fence) of every batch node ``i`` logged."""
    return [(int(n), int(f)) for n, f in BATCH_LINE.findall(cluster.nodes[i].log())]


@pytest.mark.parametrize("backend", ["sqlite", "etcd"])
def test_killed_lease_holder_leaves_the_job_to_another_node(start_nodes: StartNodes, backend: str) -> None:
    cluster = start_nodes(backend, 3, env=ENV, extra='log_level = "debug"\n')
    live = [cluster.ok(0, "POST", "auth/token/create", json={"policies": ["default"], "ttl": "1h"})["auth"]
            ["client_token"] for _ in range(LIVE)]  # fmt: skip
    # Every expiring token expires in the same second, so the first pass after it finds them all dead.
    expire_at = time.time() + 12

    def create(n: int) -> None:
        ttl = math.ceil(expire_at - time.time())
        assert ttl >= 2, "creating the tokens took too long on this machine"
        cluster.ok(n % 3, "POST", "auth/token/create", json={"policies": ["default"], "ttl": f"{ttl}s"})

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(create, range(EXPIRING)))
    assert _stored_tokens(cluster) == 1 + LIVE + EXPIRING
    assert not any(_batches(cluster, i) for i in range(3))

    # The node holding the lease logs its first batch: kill it there, in the middle of its pass.
    holder: list[int] = []
    wait_for(
        lambda: bool(holder.extend(i for i in range(3) if _batches(cluster, i)) or holder), "a first batch"
    )
    dead = holder[0]
    cluster.kill(dead)
    dead_fence = max(f for _, f in _batches(cluster, dead))
    removed_by_dead = sum(n for n, _ in _batches(cluster, dead))
    left = _stored_tokens(cluster)
    # (Not "==": a batch may have committed just before the kill without reaching the log.)
    assert left <= 1 + LIVE + EXPIRING - removed_by_dead
    assert left > 1 + LIVE, "the holder finished before it was killed: nothing left to take over"

    # Another node takes the lease once it lapsed (a new tenure: a higher fence) and finishes the pass.
    wait_for(lambda: _stored_tokens(cluster) == 1 + LIVE, "the expired tokens are removed by the survivors")
    survivors = [i for i in range(3) if i != dead]
    taken_over = [(n, f) for i in survivors for n, f in _batches(cluster, i)]
    assert taken_over and all(f > dead_fence for _, f in taken_over)
    assert sum(n for n, _ in taken_over) == left - 1 - LIVE  # each token removed exactly once
    for token in live:
        for i in survivors:
            assert cluster.status(i, "GET", "auth/token/lookup-self", token) == 200
    assert "Traceback" not in cluster.logs()
