"""Bounded HTTP loads for the fault tests: counted writes from many concurrent clients, with a record of
every answer, so that a test can check each acknowledged write afterwards.

Loads are bounded by count, never by time. Each request has the HTTP client's timeout (``BOUND``) as a hang
guard; a request that exceeds it fails the test as a hang.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.cluster.nodes import BOUND, Cluster

TRANSIENT = 503
"""The only failure status a fault may cause (storage unavailable, node sealed, conflicts exhausted)."""


@dataclass
class Tally:
    """What a load saw: statuses per node, transport errors, and the acknowledged writes."""

    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    acked: dict[str, Any] = field(default_factory=dict)
    """Secret path -> the data whose write was answered 200."""

    def unexpected(self) -> dict[int, int]:
        """Statuses other than success, CAS mismatch (400) and 503."""
        return {s: n for s, n in self.statuses.items() if s not in (200, 204, 400, TRANSIENT)}


class Clients:
    """One async HTTP client per node (``max_connections`` each), carrying the root token."""

    def __init__(self, cluster: Cluster, max_connections: int = 32) -> None:
        self.cluster = cluster
        self.clients = [
            httpx.AsyncClient(
                base_url=node.addr,
                headers={"X-Vault-Token": cluster.root_token},
                timeout=BOUND,
                limits=httpx.Limits(
                    max_connections=max_connections, max_keepalive_connections=max_connections
                ),
            )
            for node in cluster.nodes
        ]

    async def request(self, node: int, method: str, path: str, **kw: Any) -> httpx.Response:
        return await self.clients[node].request(method, "/v1/" + path, **kw)

    async def aclose(self) -> None:
        for client in self.clients:
            await client.aclose()


async def write_until_acked(
    clients: Clients,
    tally: Tally,
    path: str,
    data: dict[str, Any],
    route: Callable[[], int],
    attempts: int = 200,
) -> None:
    """Write ``data`` at ``path`` through node ``route()``, retrying 503s and dropped connections (as a
    client behind a load balancer would) until it is acknowledged; record it in ``tally``.

    A dropped connection or a 503 leaves the outcome unknown, so the same data is simply written again.
    """
    for _ in range(attempts):
        node = route()
        try:
            r = await clients.request(node, "POST", path, json={"data": data})
        except httpx.TimeoutException as exc:
            raise AssertionError(f"a request to node {node} hung for {BOUND:.0f} s") from exc
        except httpx.TransportError as exc:
            tally.errors[type(exc).__name__] += 1
            await asyncio.sleep(0.05)
            continue
        tally.statuses[r.status_code] += 1
        if r.status_code == 200:
            tally.acked[path] = data
            return
        assert r.status_code == TRANSIENT, (node, path, r.status_code, r.text)
        await asyncio.sleep(0.05)
    raise AssertionError(f"{path} not acknowledged after {attempts} attempts: {tally}")


async def run_load(
    clients: int,
    writes: int,
    one: Callable[[int, int], Awaitable[None]],
    at: dict[int, Callable[[], Awaitable[None] | None]] | None = None,
) -> None:
    """Run ``clients`` tasks, each calling ``one(client, i)`` for ``i`` in ``range(writes)``; after the
    ``n``-th completed call overall, run ``at[n]`` (a fault) once, while the other tasks keep going."""
    done = 0
    pending = dict(at or {})

    async def task(c: int) -> None:
        nonlocal done
        for i in range(writes):
            await one(c, i)
            done += 1
            fault = pending.pop(done, None)
            if fault is not None:
                result = fault()
                if result is not None:
                    await result

    await asyncio.wait_for(asyncio.gather(*(task(c) for c in range(clients))), 3 * BOUND)
