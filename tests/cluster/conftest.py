"""Fixtures for cluster tests: N real ``strongroom server`` nodes over a chosen shared backend.

``start_nodes(backend, count, env=..., etcd=...)`` starts a cluster (tests/cluster/nodes.py) over a fresh
store of ``backend`` (tests/cluster/backends.py) and stops its nodes by PID and removes the store when the
test ends. ``private_etcd_cluster`` (a 3-member etcd cluster of the test's own, for tests that stop
members) and ``etcd_cluster`` (the session's shared one) come from tests/support/etcd.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest

from tests.cluster.backends import Backend, make_backend
from tests.cluster.nodes import Cluster, start_cluster
from tests.support.etcd import EtcdCluster, etcd_cluster, private_etcd_cluster

__all__ = ["etcd_cluster", "private_etcd_cluster", "start_nodes"]

StartNodes = Callable[..., Cluster]


@pytest.fixture
def start_nodes(tmp_path: Path) -> Iterator[StartNodes]:
    """A factory ``(backend, count=3, *, env=None, etcd=None, extra="") -> Cluster``; all torn down after."""
    started: list[tuple[Cluster | None, Backend]] = []

    def start(
        backend: str,
        count: int = 3,
        *,
        env: Mapping[str, str] | None = None,
        etcd: EtcdCluster | None = None,
        extra: str = "",
    ) -> Cluster:
        workdir = tmp_path / f"{backend}-{len(started)}"
        store = make_backend(backend, workdir / "store", etcd)
        started.append((None, store))
        cluster = start_cluster(store, workdir, count, env=env, extra=extra)
        started[-1] = (cluster, store)
        return cluster

    try:
        yield start
    finally:
        for cluster, store in reversed(started):
            try:
                if cluster is not None:
                    cluster.close()
            finally:
                store.close()
