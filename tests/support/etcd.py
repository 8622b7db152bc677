"""Real etcd clusters for tests: members on loopback with random free ports and temporary data dirs.

* :func:`shared_cluster` / fixture ``etcd_cluster``: one 3-member cluster per test session, started on
  first use, killed by PID when the session ends (``atexit``, so that the conformance factory, which is not
  a fixture, can use it too). Tests sharing it use their own key prefix and must not stop members.
* fixture ``private_etcd_cluster``: a 3-member cluster of the test's own, for tests that stop and restart
  members; killed by PID when the test ends.
* helpers for the tests: :func:`open_test_store`, :func:`put`, :func:`get`, :func:`member_value`,
  :func:`leader`, :func:`until`.

``etcd`` missing from ``PATH`` calls :func:`tests.support.require.missing`: a skip locally, a failure
in CI (``STRONGROOM_REQUIRE_ALL=1``). Data dirs go to ``/dev/shm`` when it exists: the tests check
semantics and fail-over, not durability, and fsyncs on a shared disk would make them slow.
"""

from __future__ import annotations

import asyncio
import atexit
import binascii
import contextlib
import ctypes
import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from strongroom.errors import StorageUnavailable
from strongroom.storage.base import Store
from strongroom.storage.etcd import EtcdStore
from strongroom.storage.etcd_client import EtcdClient
from strongroom.storage.etcd_txn import b64s
from strongroom.storage.url import open_store
from tests.support.require import missing

HANG_GUARD = 120.0  # seconds: a call that takes longer hangs (the stores' own bounds are seconds)

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    # Members must not outlive a test run that was killed before its clean-up could run.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _free_ports(count: int) -> list[int]:
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _data_parent() -> str | None:
    """``/dev/shm`` if it is writable and roomy (each member preallocates a 64 MB WAL), else the default."""
    try:
        stat = os.statvfs("/dev/shm")
    except OSError:
        return None
    roomy = stat.f_bavail * stat.f_frsize > 2 * 1024**3
    return "/dev/shm" if roomy and os.access("/dev/shm", os.W_OK) else None


@dataclass
class Member:
    """One etcd member: its ports, data dir and (while running) process."""

    name: str
    client_port: int
    peer_port: int
    data_dir: Path
    log: Path
    process: subprocess.Popen[bytes] | None = None

    scheme: str = "http"

    @property
    def client_url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"http://127.0.0.1:{self.peer_port}"


class EtcdCluster:
    """A cluster of ``size`` local etcd members (see the module docstring)."""

    def __init__(
        self,
        binary: str,
        size: int = 3,
        extra_args: list[str] | None = None,
        client_tls: ssl.SSLContext | None = None,
    ) -> None:
        """``extra_args`` go to every member; with ``client_tls`` (the context clients use) members
        serve clients over https (``extra_args`` must then name the server's certificate and key)."""
        self.binary = binary
        self.extra_args = extra_args or []
        self.client_tls = client_tls
        self.root = Path(tempfile.mkdtemp(prefix="strongroom-etcd-", dir=_data_parent()))
        ports = _free_ports(2 * size)
        scheme = "https" if client_tls is not None else "http"
        self.members = [
            Member(
                f"m{i}",
                ports[2 * i],
                ports[2 * i + 1],
                self.root / f"m{i}",
                self.root / f"m{i}.log",
                scheme=scheme,
            )
            for i in range(size)
        ]
        self.token = secrets.token_hex(8)

    def _command(self, member: Member) -> list[str]:
        initial = ",".join(f"{m.name}={m.peer_url}" for m in self.members)
        return [
            self.binary,
            "--name", member.name,
            "--data-dir", str(member.data_dir),
            "--listen-client-urls", member.client_url,
            "--advertise-client-urls", member.client_url,
            "--listen-peer-urls", member.peer_url,
            "--initial-advertise-peer-urls", member.peer_url,
            "--initial-cluster", initial,
            "--initial-cluster-token", self.token,
            "--initial-cluster-state", "new",  # ignored on restart: the data dir knows the cluster
            "--log-level", "warn",
            *self.extra_args,
        ]  # fmt: skip

    def start_member(self, index: int) -> None:
        """Start member ``index`` (again); its data dir is kept across restarts."""
        member = self.members[index]
        assert member.process is None or member.process.poll() is not None, "member already running"
        with member.log.open("ab") as log:
            member.process = subprocess.Popen(
                self._command(member),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,  # the test process forks members from one thread
            )

    def stop_member(self, index: int) -> None:
        """Kill member ``index`` by its PID (SIGKILL: a crash, as the fail-over tests want) and reap it."""
        member = self.members[index]
        if member.process is not None and member.process.poll() is None:
            os.kill(member.process.pid, signal.SIGKILL)
            member.process.wait(timeout=30)
        member.process = None

    def start(self, deadline: float = 60.0) -> None:
        """Start every member and wait until each answers as healthy."""
        for i in range(len(self.members)):
            self.start_member(i)
        self.wait_healthy(range(len(self.members)), deadline)

    def healthy(self, index: int) -> bool:
        """Whether member ``index`` runs and answers a linearizable read (so it has a leader)."""
        member = self.members[index]
        if member.process is None or member.process.poll() is not None:
            return False
        request = urllib.request.Request(member.client_url + "/v3/kv/range", data=b'{"key":"AA=="}')
        try:
            with urllib.request.urlopen(request, timeout=2, context=self.client_tls) as answer:
                return "header" in json.loads(answer.read())
        except (OSError, ValueError):
            return False

    def wait_healthy(self, indexes: range | list[int], deadline: float = 60.0) -> None:
        """Wait (at most ``deadline`` seconds) until the given members are healthy."""
        end = time.monotonic() + deadline
        pending = list(indexes)
        while pending:
            for i in list(pending):
                process = self.members[i].process
                if process is not None and process.poll() is not None:
                    raise RuntimeError(f"etcd member {i} exited:\n{self.log_tail(i)}")
                if self.healthy(i):
                    pending.remove(i)
            if pending:
                if time.monotonic() > end:
                    raise RuntimeError(f"etcd members {pending} not healthy:\n{self.log_tail(pending[0])}")
                time.sleep(0.1)

    def log_tail(self, index: int, lines: int = 20) -> str:
        """The last lines of member ``index``'s log (for failure messages)."""
        try:
            return "\n".join(self.members[index].log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def endpoints(self, indexes: list[int] | None = None) -> str:
        """``host:port,host:port...`` of the given members (default: all)."""
        chosen = self.members if indexes is None else [self.members[i] for i in indexes]
        return ",".join(f"127.0.0.1:{m.client_port}" for m in chosen)

    def url(self, prefix: str, indexes: list[int] | None = None, **options: object) -> str:
        """A storage URL for this cluster with key ``prefix`` and further URL options."""
        query = "&".join([f"prefix={prefix}"] + [f"{k}={v}" for k, v in options.items()])
        return f"etcd://{self.endpoints(indexes)}?{query}"

    def close(self) -> None:
        """Kill every member by PID and delete the data dirs."""
        for i in range(len(self.members)):
            self.stop_member(i)
        shutil.rmtree(self.root, ignore_errors=True)


def start_cluster(
    size: int = 3, extra_args: list[str] | None = None, client_tls: ssl.SSLContext | None = None
) -> EtcdCluster:
    """Start a fresh cluster of ``size`` members (``missing`` when etcd is not installed); the other
    arguments are :class:`EtcdCluster`'s."""
    binary = shutil.which("etcd")
    if binary is None:
        missing("etcd is not installed (apt-get install etcd-server)")
        raise AssertionError("unreachable")
    for attempt in range(3):
        cluster = EtcdCluster(binary, size, extra_args, client_tls)
        try:
            cluster.start()
            return cluster
        except RuntimeError:
            cluster.close()
            if attempt == 2:  # e.g. a free port taken by someone else between probing and binding
                raise
    raise AssertionError("unreachable")


_shared: EtcdCluster | None = None


def shared_cluster() -> EtcdCluster:
    """The session's shared cluster, started on first use and killed when the process exits."""
    global _shared
    if _shared is None:
        _shared = start_cluster()
        atexit.register(_shared.close)
    return _shared


@pytest.fixture(scope="session")
def etcd_cluster() -> Iterator[EtcdCluster]:
    """The session's shared 3-member cluster (do not stop its members; use your own key prefix), killed
    by PID when the session ends (``atexit`` covers sessions where only the conformance factory used it).
    """
    global _shared
    cluster = shared_cluster()
    try:
        yield cluster
    finally:
        cluster.close()
        _shared = None


@pytest.fixture
def private_etcd_cluster() -> Iterator[EtcdCluster]:
    """A 3-member cluster for this test alone, killed by PID afterwards."""
    cluster = start_cluster()
    try:
        yield cluster
    finally:
        cluster.close()


# -- helpers for tests -----------------------------------------------------------------------------------


def open_test_store(
    cluster: EtcdCluster, indexes: list[int] | None = None, prefix: str = "", **options: object
) -> EtcdStore:
    """A store on ``cluster`` (members ``indexes``, in that order) under a fresh random prefix."""
    store = open_store(cluster.url(prefix or f"test/{secrets.token_hex(8)}/", indexes, **options))
    assert isinstance(store, EtcdStore)
    return store


async def put(store: Store, items: dict[bytes, bytes]) -> None:
    """Set ``items`` in one transaction."""
    async with store.transaction() as tx:
        for k, v in items.items():
            tx.set(k, v)


async def get(store: Store, key: bytes) -> bytes | None:
    """Read ``key`` in a transaction of its own."""
    async with store.transaction() as tx:
        return await tx.get(key)


def _client(cluster: EtcdCluster, index: int) -> EtcdClient:
    return EtcdClient(
        [("127.0.0.1", cluster.members[index].client_port)], timeout=5, attempt_timeout=5, max_connections=1
    )


async def member_value(cluster: EtcdCluster, index: int, key: bytes) -> bytes | None:
    """What member ``index`` alone holds at etcd key ``key`` (serializable: no consensus, no other member)."""
    client = _client(cluster, index)
    try:
        answer, _ = await client.call(
            "/v3/kv/range", {"key": b64s(key), "serializable": True}, require_leader=False
        )
    finally:
        await client.close()
    kvs = answer.get("kvs")
    return binascii.a2b_base64(kvs[0].get("value", "")) if kvs else None


async def leader(cluster: EtcdCluster) -> int:
    """Index of the cluster's current leader, as member 0 sees it."""
    ids = []
    for i in range(len(cluster.members)):
        client = _client(cluster, i)
        try:
            status, _ = await client.call("/v3/maintenance/status", {})
        finally:
            await client.close()
        ids.append(status["header"]["member_id"])
        if i == 0:
            leader_id = status["leader"]
    return ids.index(leader_id)


async def until(check: Callable[[], Awaitable[bool]], what: str, deadline: float = 60.0) -> None:
    """Poll ``check`` until it returns true (``StorageUnavailable`` counts as not yet); fail after ``deadline``
    seconds."""
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    while True:
        try:
            if await check():
                return
        except StorageUnavailable:
            pass
        if loop.time() > end:
            pytest.fail(f"not within {deadline}s: {what}")
        await asyncio.sleep(0.2)
