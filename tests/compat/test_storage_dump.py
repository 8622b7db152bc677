"""A dump of the SQLite store holds no user-chosen name, no secret value and no token.

Everything is written through the HTTP API (in-process), then the database files are read as raw bytes
and searched for every name and value the test used, in the encodings they could appear in.
"""

from __future__ import annotations

import base64
from pathlib import Path

from strongroom.storage.sqlite import SqliteStore
from tests.support.vault import start_vault

MOUNT = "corp-finance-mount"
POLICY = "payroll-policy-name"
SECRET_PATH = "hr/salaries/alice-smith"
SECRET_VALUE = "VALUE-0xDEADBEEF-unique"
METADATA_VALUE = "owner-bob-the-builder"
V1_MOUNT = "legacy-kv-mount"
V1_PATH = "team-alpha/credentials"
V1_VALUE = "hunter2-very-secret"


def _needles(names: list[str]) -> list[bytes]:
    out = []
    for n in names:
        raw = n.encode()
        out += [raw, n.upper().encode(), base64.b64encode(raw), raw.hex().encode()]
        # Path components on their own must not show either.
        out += [p.encode() for p in n.split("/") if len(p) >= 6]
    return out


def _read_store_files(directory: Path) -> bytes:
    return b"".join(p.read_bytes() for p in directory.iterdir() if p.name.startswith("store.db"))


async def test_sqlite_dump_shows_no_names_values_or_tokens(tmp_path: Path) -> None:
    db = tmp_path / "store.db"
    vault = await start_vault(SqliteStore(str(db)))
    try:
        await vault.ok("POST", f"sys/mounts/{MOUNT}", json={"type": "kv", "options": {"version": "2"}})
        await vault.ok("POST", f"sys/mounts/{V1_MOUNT}", json={"type": "kv", "options": {"version": "1"}})
        await vault.ok("PUT", f"sys/policies/acl/{POLICY}",
                       json={"policy": f'path "{MOUNT}/data/hr/*" {{ capabilities = ["read"] }}'})
        await vault.ok("POST", f"{MOUNT}/data/{SECRET_PATH}", json={"data": {"salary": SECRET_VALUE}})
        await vault.ok("POST", f"{MOUNT}/metadata/{SECRET_PATH}",
                       json={"custom_metadata": {"owner": METADATA_VALUE}})
        await vault.ok("POST", f"{V1_MOUNT}/{V1_PATH}", json={"password": V1_VALUE})
        token = await vault.token([POLICY])
        accessor = (await vault.ok("POST", "auth/token/lookup", json={"token": token}))["data"]["accessor"]
        # Everything reads back, so the data really is in the files searched below.
        read = await vault.ok("GET", f"{MOUNT}/data/{SECRET_PATH}", token=token)
        assert read["data"]["data"]["salary"] == SECRET_VALUE
        secrets = [vault.root_token, token, accessor, *vault.keys]
    finally:
        await vault.client.aclose()
        await vault.node.close()

    dump = _read_store_files(tmp_path)
    assert len(dump) > 4096
    names = [MOUNT, POLICY, SECRET_PATH, SECRET_VALUE, METADATA_VALUE, V1_MOUNT, V1_PATH, V1_VALUE]
    found = [n for n in _needles(names + secrets) if n in dump]
    assert found == []
