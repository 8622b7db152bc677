"""``kill -9`` of a real server during writes loses no acknowledged write and leaves no partial one.

Each round: a dev server on SQLite takes KV v2 writes from several client threads (each write is one
transaction of several records: version, metadata, directory markers); the server is SIGKILLed at a
random moment; a new process on the same store must return every acknowledged write, and every secret
it lists must be whole (its metadata's current version readable with the data written for it).
"""

from __future__ import annotations

import random
import signal
import threading
import time
from pathlib import Path

import httpx

from tests.support.server import start_strongroom

THREADS = 4
ROUNDS = 3


def _writer(addr: str, tid: int, start: int, stop: threading.Event, acked: list[tuple[str, int]]) -> None:
    with httpx.Client(base_url=addr, headers={"X-Vault-Token": "root"}, timeout=5) as client:
        n = start
        while not stop.is_set():
            path = f"crash/t{tid}/s{n % 7}"
            try:
                r = client.post(f"/v1/secret/data/{path}", json={"data": {"n": n, "tid": tid, "pad": "x" * 300}})
            except httpx.HTTPError:
                return  # the server died: this write was never acknowledged
            if r.status_code == 200:
                acked.append((path, n))
            n += 1


def test_kill_9_keeps_every_acknowledged_write(tmp_path: Path) -> None:
    args = ["--dev", "--dev-root-token-id", "root", "--storage", f"sqlite:///{tmp_path / 'store.db'}"]
    rng = random.Random(20261126)
    latest: dict[str, int] = {}
    for round_ in range(ROUNDS):
        server = start_strongroom(args, tmp_path)
        stop = threading.Event()
        acked: list[tuple[str, int]] = []
        threads = [threading.Thread(target=_writer, args=(server.addr, t, round_ * 1_000_000, stop, acked)) for t in range(THREADS)]
        for t in threads:
            t.start()
        # The load must be under way before the crash (on a loaded machine the first write can take a
        # while): wait, bounded, for one acknowledged write, then crash at a random moment.
        deadline = time.monotonic() + 60
        while not acked and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(rng.uniform(0.3, 1.2))  # a random moment to crash at, not a wait for a condition
        server.kill(signal.SIGKILL)
        stop.set()
        for t in threads:
            t.join(10)
        assert acked, server.log()
        for path, n in acked:
            latest[path] = max(latest.get(path, -1), n)

        server = start_strongroom(args, tmp_path)
        try:
            with server.client("root") as client:
                for path, n in latest.items():
                    r = client.get(f"/v1/secret/data/{path}")
                    assert r.status_code == 200, (path, r.text)
                    # An unacknowledged later write may also have committed; never an older one.
                    assert r.json()["data"]["data"]["n"] >= n
                for tid in range(THREADS):
                    listing = client.request("LIST", f"/v1/secret/metadata/crash/t{tid}")
                    if listing.status_code == 404:
                        continue
                    for name in listing.json()["data"]["keys"]:
                        meta = client.get(f"/v1/secret/metadata/crash/t{tid}/{name}").json()["data"]
                        current = meta["current_version"]
                        data = client.get(f"/v1/secret/data/crash/t{tid}/{name}?version={current}")
                        assert data.status_code == 200, data.text
                        assert data.json()["data"]["data"]["tid"] == tid
        finally:
            server.kill()
