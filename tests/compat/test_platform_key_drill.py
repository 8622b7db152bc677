"""The compromise drill of docs/operations/platform-key.md, end to end, with real processes and stock tools.

Two ``strongroom server`` processes (A, B) share one SQLite file; custodians hold GnuPG keys; every
ceremony runs with the real ``bao`` CLI (``operator unseal|generate-root|rekey|rotate|rotate-keys|init``) and
the progress is followed with ``strongroom operator rewrap-status --wait``. The test plays both sides: the
operator, and an attacker who copied the storage and the platform's shares *before* the drill.

1. A custodian's share leaked: ``bao operator rekey`` with the custodians' PGP keys; the old shares are
   refused on every node (node B, still holding the old key, seals itself).
2. The key itself is suspected: ``bao operator rotate``; node A is killed (``SIGKILL``) in the middle of the
   re-wrap, node B (unsealed with the new shares) takes the job over after the lease lapses and finishes
   it; a restarted A that loaded the keyring mid-way adopts the final one (older term dropped).
3. The tenant that was unsealed rekeys (``bao operator rotate-keys``) and rotates.

Then the SQLite file is inspected: every barrier record names the new term, the attacker's old keyring no
longer decrypts the re-wrapped tenant key copy, the attacker's old tenant key no longer opens the tenant's
keyring, and what the attacker copied before is still readable with what they had (the limit of the drill).
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from strongroom.barrier.barrier import Barrier
from strongroom.barrier.keyring import Keyring
from strongroom.core.rewrap import BATCH_ENV, STEPS_ENV
from strongroom.crypto.secret import SecretBytes
from strongroom.crypto.shamir import combine_key
from strongroom.errors import CorruptRecord, DecryptionFailed
from strongroom.storage.subspace import ROOT_NAMESPACE_ID, namespace
from strongroom.storage.tuple import unpack
from tests.support.gpg import Gpg, GpgKey, gpg_home
from tests.support.require import require_binary
from tests.support.server import VENV_BIN, ServerProcess, bao_binary, start_strongroom

pytestmark = pytest.mark.slow

STORE = "sqlite:///store/platform.db"
SECRETS = 40


@dataclass(frozen=True)
class Custodian:
    gpg: Gpg
    key: GpgKey
    public: Path  # binary export: what `bao -pgp-keys` reads

    def open_file(self, path: Path) -> str:
        return self.gpg.decrypt(path.read_bytes()).decode().strip()

    def open_b64(self, text: str) -> str:
        return self.gpg.decrypt(base64.b64decode(text)).decode().strip()


@pytest.fixture(scope="module")
def custodians(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Custodian]]:
    keys = tmp_path_factory.mktemp("custodian-keys")
    with gpg_home() as a, gpg_home() as b, gpg_home() as c:
        out = []
        for home, name in ((a, "alice"), (b, "bob"), (c, "carol")):
            key = home.generate(f"{name} <{name}@example.invalid>")
            public = keys / f"{name}.gpg"
            public.write_bytes(key.binary)
            out.append(Custodian(home, key, public))
        yield out


class Bao:
    """The stock ``bao`` CLI against one server."""

    def __init__(self, server: ServerProcess, home: Path) -> None:
        self.server, self.home = server, home

    def run(self, *args: str, token: str = "") -> subprocess.CompletedProcess[str]:
        env = {"PATH": os.environ.get("PATH", ""), "HOME": str(self.home), "BAO_ADDR": self.server.addr,
               "BAO_TOKEN": token}  # fmt: skip
        return subprocess.run([bao_binary(), *args], env=env, capture_output=True, text=True, timeout=60, check=False)

    def ok(self, *args: str, token: str = "") -> str:
        r = self.run(*args, token=token)
        assert r.returncode == 0, f"bao {args}: {r.stdout}{r.stderr}\n{self.server.log()[-3000:]}"
        return r.stdout

    def json(self, *args: str, token: str = "") -> Any:
        return json.loads(self.ok(*args, token=token))

    def sealed(self) -> bool:
        """``bao status`` (exit 2 while sealed, as Vault's)."""
        sealed: bool = json.loads(self.run("status", "-format=json").stdout)["sealed"]
        return sealed


def strongroom(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(VENV_BIN / "strongroom"), *args], cwd=cwd, env={**os.environ, **(env or {})},
                          capture_output=True, text=True, timeout=300, check=False)  # fmt: skip


def api(server: ServerProcess, method: str, path: str, token: str, ns: str = "", body: Any = None) -> Any:
    headers = {"X-Vault-Token": token, **({"X-Vault-Namespace": ns} if ns else {})}
    with httpx.Client(base_url=server.addr, timeout=30) as client:
        r = client.request(method, "/v1/" + path, headers=headers, json=body)
    assert r.status_code < 300, (method, path, r.status_code, r.text, server.log()[-2000:])
    return r.json() if r.content else None


def wait_for(what: str, check: Callable[[], Any], timeout: float = 120) -> Any:
    """Poll ``check`` until it returns something truthy (bounded; fails with ``what``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def rows(db: Path) -> list[tuple[bytes, bytes]]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return [(bytes(k), bytes(v)) for k, v in conn.execute("SELECT key, value FROM kv ORDER BY key")]


def record(db: Path, key: bytes) -> bytes:
    value = dict(rows(db)).get(key)
    assert value is not None, key
    return value


def barrier_terms(db: Path) -> dict[bytes, set[int]]:
    """Barrier-header terms per namespace id, for every record but the layout, seal configs and keyrings."""
    out: dict[bytes, set[int]] = {}
    for key, value in rows(db):
        items = unpack(key)
        if items[0] == "ns" and items[2] not in ("seal", "keyring"):
            out.setdefault(items[1], set()).add(Barrier.term_of(value))
    return out


def root_key(shares: list[str], n: int, k: int) -> SecretBytes:
    return combine_key([bytes.fromhex(s) for s in shares], n, k)


def keyring(db: Path, ns_id: bytes, key: SecretBytes) -> Keyring:
    physical = namespace(ns_id).key("keyring")
    return Keyring.open(key, physical, record(db, physical))


def test_compromise_drill(custodians: list[Custodian], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Background jobs tick every 0.2 s with a 2 s lease; the re-wrap moves 3 records per transaction and one
    # transaction per tick, so that node A can be killed in the middle of it (hidden testing knobs).
    for name, value in (("STRONGROOM_TEST_JOB_INTERVAL", "0.2"), ("STRONGROOM_TEST_JOB_LEASE_TTL", "2"),
                        (BATCH_ENV, "3"), (STEPS_ENV, "1")):  # fmt: skip
        monkeypatch.setenv(name, value)
    db = tmp_path / "store" / "platform.db"
    keys = [a for c in custodians for a in ("--pgp-key", str(c.public))]
    init = strongroom("platform", "init", "--storage", STORE, "--shares", "3", "--threshold", "2", *keys,
                      "--out-dir", "ceremony", "--format", "json", cwd=tmp_path)  # fmt: skip
    assert init.returncode == 0, init.stderr
    files = [tmp_path / "ceremony" / s["file"] for s in json.loads(init.stdout)["shares"]]
    old = [c.open_file(f) for c, f in zip(custodians, files, strict=True)]

    a = start_strongroom(["--storage", STORE], tmp_path)
    b = start_strongroom(["--storage", STORE], tmp_path)
    servers = [a, b]
    try:
        bao_a, bao_b = Bao(a, tmp_path), Bao(b, tmp_path)
        for bao in (bao_a, bao_b):  # each node runs its own unseal ceremony
            for share in old[:2]:
                bao.ok("operator", "unseal", share)
        start = bao_a.json("operator", "generate-root", "-init", "-format=json")
        done: Any = {}
        for share in old[1:]:
            done = bao_a.json("operator", "generate-root", f"-nonce={start['nonce']}", "-format=json", share)
        token = bao_a.ok("operator", "generate-root", f"-decode={done['encoded_token']}", f"-otp={start['otp']}").strip()

        # Data: the platform's KV, a plain namespace (shares the platform keyring) and a tenant.
        bao_a.ok("secrets", "enable", "-path=kv", "kv-v2", token=token)
        for i in range(SECRETS):
            api(a, "POST", f"kv/data/app/{i}", token, body={"data": {"v": f"root-{i}"}})
        bao_a.ok("namespace", "create", "team", token=token)
        bao_a.ok("secrets", "enable", "-namespace=team", "-path=kv", "kv-v2", token=token)
        for i in range(4):
            api(b, "POST", f"kv/data/svc/{i}", token, ns="team", body={"data": {"v": f"team-{i}"}})
        admin = api(a, "POST", "sys/iam/tenants/acme", token)["data"]["admin_token"]
        tenant_init = bao_a.json("operator", "init", "-namespace=acme", "-key-shares=1", "-key-threshold=1",
                                 "-format=json", token=admin)  # fmt: skip
        tenant_old, tenant_token = tenant_init["unseal_keys_hex"][0], tenant_init["root_token"]
        bao_b.ok("operator", "unseal", "-namespace=acme", tenant_old, token=admin)
        bao_a.ok("secrets", "enable", "-namespace=acme", "-path=kv", "kv-v2", token=tenant_token)
        for i in range(4):
            api(a, "POST", f"kv/data/db/{i}", tenant_token, ns="acme", body={"data": {"v": f"acme-{i}"}})
        acme_id = next(i for i in barrier_terms(db) if i not in (ROOT_NAMESPACE_ID, team_id(db)))

        # The attacker's loot, taken before the drill: a copy of the store and the old shares.
        loot = tmp_path / "stolen.db"
        with sqlite3.connect(db) as live, sqlite3.connect(loot) as copy:
            live.backup(copy)
        stolen_ring = keyring(loot, ROOT_NAMESPACE_ID, root_key(old[:2], 3, 2))
        copy_key = namespace(ROOT_NAMESPACE_ID).key("sys", "tenant-keys", acme_id)
        stolen_tenant_key = SecretBytes(Barrier(stolen_ring).decrypt(copy_key, record(loot, copy_key)))
        stolen_tenant_ring = keyring(loot, acme_id, stolen_tenant_key)
        assert stolen_ring.generation == 1 and [t.number for t in stolen_tenant_ring.terms] == [1]

        # -- 1. a custodian's share leaked: rekey, new shares PGP-encrypted to the custodians ------------
        publics = ",".join(str(c.public) for c in custodians)
        started = bao_a.json("operator", "rekey", "-init", "-key-shares=3", "-key-threshold=2",
                             f"-pgp-keys={publics}", "-format=json", token=token)  # fmt: skip
        bao_a.ok("operator", "rekey", f"-nonce={started['nonce']}", old[0], token=token)
        rekeyed = bao_a.json("operator", "rekey", f"-nonce={started['nonce']}", "-format=json", old[2], token=token)
        new = [c.open_b64(k) for c, k in zip(custodians, rekeyed["keys_base64"], strict=True)]
        assert set(new).isdisjoint(old)
        # Node B still holds the old root key: at its next request the keyring no longer opens, it seals.
        assert bao_b.run("kv", "get", "-mount=kv", "app/0", token=token).returncode != 0
        assert bao_b.sealed()
        bao_b.ok("operator", "unseal", old[0])
        refused = bao_b.run("operator", "unseal", old[1])
        assert refused.returncode == 2 and "did not reconstruct the root key" in refused.stderr
        assert bao_b.sealed()  # B stays sealed for now

        # -- 2. the key itself is suspected: rotate; A dies in the middle of the re-wrap -------------------
        assert "Success" in bao_a.ok("operator", "rotate", token=token)

        def midway() -> Any:
            status = api(a, "GET", "sys/rotate/status", token)["data"]
            return status if status["phase"] == "rewrapping" and status["done"] >= 6 else None

        before_kill = wait_for("the re-wrap to be under way on A", midway)
        a.kill(signal.SIGKILL)
        assert before_kill["state"] == "running" and before_kill["term"] == 2
        for share in new[:2]:
            bao_b.ok("operator", "unseal", share)
        resumed = api(b, "GET", "sys/rotate/status", token)["data"]
        assert resumed["phase"] != "counting" and (resumed["phase"] != "rewrapping" or resumed["done"] >= 6)
        # Node A comes back and unseals with the new shares (the old ones are refused here too) while B's
        # job goes on: A loads a keyring that still has term 1.
        a = start_strongroom(["--storage", STORE], tmp_path)
        servers.append(a)
        bao_a = Bao(a, tmp_path)
        bao_a.ok("operator", "unseal", old[1])
        assert "did not reconstruct the root key" in bao_a.run("operator", "unseal", old[2]).stderr
        for share in new[1:]:
            bao_a.ok("operator", "unseal", share)
        assert api(a, "GET", "sys/rotate/status", token)["data"]["state"] == "running"
        follow = strongroom("operator", "rewrap-status", "--wait", "--poll-interval", "0.2", "--timeout", "240",
                            cwd=tmp_path, env={"VAULT_ADDR": b.addr, "VAULT_TOKEN": token})  # fmt: skip
        assert follow.returncode == 0, follow.stdout + follow.stderr + b.log()[-3000:]
        assert "verifying  [" in follow.stderr and "done       [" in follow.stderr  # the progress bar
        assert "Dropped Terms         [1]" in follow.stdout
        # Node A, which loaded terms [1, 2], adopts the new generation at its next request.
        final = api(a, "GET", "sys/rotate/status", token)["data"]
        assert (final["state"], final["readable_terms"], final["dropped_terms"], final["failed"]) == ("done", [2], [1], 0)
        assert api(a, "GET", "sys/key-status", token)["data"]["term"] == 2

        # -- 3. the tenant that was unsealed rekeys and rotates ---------------------------------------------
        t_start = bao_a.json("operator", "rotate-keys", "-namespace=acme", "-init", "-key-shares=1",
                             "-key-threshold=1", "-format=json", token=tenant_token)  # fmt: skip
        t_done = bao_b.json("operator", "rotate-keys", "-namespace=acme", f"-nonce={t_start['nonce']}",
                            "-format=json", tenant_old, token=tenant_token)  # fmt: skip
        tenant_new = t_done["keys"][0]
        bao_b.ok("operator", "rotate", "-namespace=acme", token=tenant_token)
        tenant_follow = strongroom("operator", "rewrap-status", "--namespace", "acme", "--wait", "--format", "json",
                                   "--timeout", "240", "--poll-interval", "0.2", cwd=tmp_path,
                                   env={"VAULT_ADDR": a.addr, "VAULT_TOKEN": tenant_token})  # fmt: skip
        assert tenant_follow.returncode == 0, tenant_follow.stderr
        assert json.loads(tenant_follow.stdout)["dropped_terms"] == [1]
        bao_a.ok("operator", "seal", "-namespace=acme", token=tenant_token)
        assert "did not reconstruct" in bao_b.run("operator", "unseal", "-namespace=acme", tenant_old, token=admin).stderr
        bao_b.ok("operator", "unseal", "-namespace=acme", tenant_new, token=admin)

        # -- the data is intact, through both nodes -----------------------------------------------------
        for server in (a, b):
            for i in range(SECRETS):
                assert api(server, "GET", f"kv/data/app/{i}", token)["data"]["data"] == {"v": f"root-{i}"}
            for i in range(4):
                assert api(server, "GET", f"kv/data/svc/{i}", token, ns="team")["data"]["data"] == {"v": f"team-{i}"}
                got = api(server, "GET", f"kv/data/db/{i}", tenant_token, ns="acme")["data"]["data"]
                assert got == {"v": f"acme-{i}"}
        api(b, "POST", "kv/data/after", token, body={"data": {"v": "drill"}})
    finally:
        for server in servers:
            server.kill()

    # -- what storage shows (nodes stopped: the file is quiet) -----------------------------------------------
    terms = barrier_terms(db)
    assert terms[ROOT_NAMESPACE_ID] == {2} and terms[team_id(db)] == {2} and terms[acme_id] == {2}
    ring = keyring(db, ROOT_NAMESPACE_ID, root_key(new[:2], 3, 2))
    assert [t.number for t in ring.terms] == [2]
    with pytest.raises(DecryptionFailed):  # the old shares' key no longer opens the platform keyring
        keyring(db, ROOT_NAMESPACE_ID, root_key(old[:2], 3, 2))
    with pytest.raises(CorruptRecord, match="unknown keyring term"):  # nor the old keyring the key copy
        Barrier(stolen_ring).decrypt(copy_key, record(db, copy_key))
    with pytest.raises(DecryptionFailed):  # the tenant key the attacker took no longer opens its keyring
        keyring(db, acme_id, stolen_tenant_key)
    assert [t.number for t in keyring(db, acme_id, root_key([tenant_new], 1, 1)).terms] == [2]
    for key, value in rows(db):  # no record of the new store opens with anything the attacker holds
        items = unpack(key)
        if items[0] == "ns" and items[2] not in ("seal", "keyring"):
            with pytest.raises(CorruptRecord):
                Barrier(stolen_tenant_ring if items[1] == acme_id else stolen_ring).decrypt(key, value)
    # What the drill cannot undo: the stolen copy still opens with the stolen key (data as it was then).
    stolen = [v for k, v in rows(loot) if unpack(k)[:3] == ("ns", ROOT_NAMESPACE_ID, "m")]
    assert stolen and all(Barrier(stolen_ring).decrypt(k, v) for k, v in rows(loot)
                          if unpack(k)[:3] == ("ns", ROOT_NAMESPACE_ID, "m"))  # fmt: skip


def team_id(db: Path) -> bytes:
    """The plain namespace's id: the one namespace besides the root whose records are under the platform
    keyring (found by elimination: the tenant's records are under its own keyring, with other keys)."""
    ids = [i for i in barrier_terms(db) if i != ROOT_NAMESPACE_ID]
    seals = {unpack(k)[1] for k, _ in rows(db) if unpack(k)[0] == "ns" and unpack(k)[2] == "seal"}
    plain = [i for i in ids if i not in seals]
    assert len(plain) == 1, plain
    return plain[0]


DOC = Path(__file__).resolve().parents[2] / "docs" / "operations" / "platform-key.md"


def rehearsal_script(text: str) -> str:
    """The ```sh blocks of the doc's rehearsal section as one bash script (``! cmd`` lines must fail)."""
    section = text.split("## Rehearse the drill", 1)[1]
    lines = ["set -euo pipefail"]
    for block in re.findall(r"```sh\n(.*?)```", section, re.S):
        for line in block.splitlines():
            if line.startswith(("strongroom server", "export BAO_ADDR")):
                continue  # the test's own server and environment
            if line.startswith("! "):
                command = re.sub(r"\s+#\s.*$", "", line[2:])
                line = f"if {command}; then echo 'unexpected success: {command}' >&2; exit 1; fi"
            lines.append(line)
    return "\n".join(lines) + "\n"


def test_the_rehearsal_in_the_doc_runs(tmp_path: Path) -> None:
    require_binary("gpg", "/usr/bin/gpg")
    require_binary("jq", "/usr/bin/jq")
    server = start_strongroom(["--storage", "sqlite:///platform-demo.db"], tmp_path)
    scratch = Path(tempfile.mkdtemp(prefix="sr-pk-"))  # the script's `mktemp -d` GnuPG home: a short path
    try:
        env = {"PATH": f"{Path(bao_binary()).parent}:{VENV_BIN}:{os.environ.get('PATH', '')}", "HOME": str(tmp_path),
               "TMPDIR": str(scratch), "BAO_ADDR": server.addr, "VAULT_ADDR": server.addr}  # fmt: skip
        result = subprocess.run(["bash", "-x", "-c", rehearsal_script(DOC.read_text())], cwd=tmp_path, env=env,
                                capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
        assert result.returncode == 0, (
            f"exit {result.returncode}\nstderr (tail):\n{result.stderr[-4000:]}\nstdout (tail):\n"
            f"{result.stdout[-1500:]}\nserver log tail:\n{server.log()[-1500:]}"
        )
        assert "unexpected success" not in result.stderr
        assert result.stdout.endswith("s3cretapp")  # the two `-field` reads at the end (no newline)
    finally:
        server.kill()
        for home in scratch.iterdir():
            subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "all"], capture_output=True, check=False)
        shutil.rmtree(scratch, ignore_errors=True)
