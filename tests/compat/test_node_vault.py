"""node-vault (npm), the most used JavaScript Vault client, driving a real strongroom server process.

It sends the ``LIST`` verb and its own request shapes; the script runs a whole lifecycle: init, unseal,
KV write/read/list/delete, policy and token calls, seal.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.require import missing
from tests.support.server import start_strongroom

SCRIPT = r"""
const vault = require('node-vault')({ apiVersion: 'v1', endpoint: process.argv[2] });
(async () => {
  const out = {};
  out.initializedBefore = (await vault.initialized()).initialized;
  const init = await vault.init({ secret_shares: 3, secret_threshold: 2 });
  out.keys = init.keys.length;
  vault.token = init.root_token;
  await vault.unseal({ key: init.keys[0] });
  out.unsealed = !(await vault.unseal({ key: init.keys[2] })).sealed;
  await vault.mount({ mount_point: 'kv', type: 'kv', options: { version: '2' } });
  await vault.write('kv/data/app/db', { data: { user: 'app', password: 's3cr3t' } });
  out.read = (await vault.read('kv/data/app/db')).data.data;
  out.list = (await vault.list('kv/metadata/app')).data.keys;
  await vault.addPolicy({ name: 'reader', rules: 'path "kv/data/*" { capabilities = ["read"] }' });
  out.policy = (await vault.getPolicy({ name: 'reader' })).rules;
  const child = await vault.tokenCreate({ policies: ['reader'], ttl: '1h' });
  vault.token = init.root_token;  // node-vault's tokenCreate switches the client to the new token
  const reader = require('node-vault')({ apiVersion: 'v1', endpoint: process.argv[2], token: child.auth.client_token });
  out.childRead = (await reader.read('kv/data/app/db')).data.data.user;
  try { await reader.write('kv/data/app/db', { data: { x: 1 } }); out.childWrite = 'allowed'; }
  catch (e) { out.childWrite = e.response.statusCode; }
  await vault.delete('kv/metadata/app/db');
  try { await vault.read('kv/data/app/db'); out.afterDelete = 'found'; }
  catch (e) { out.afterDelete = e.response.statusCode; }
  await vault.seal();
  out.sealedAfter = (await vault.status()).sealed;
  console.log(JSON.stringify(out));
})().catch((e) => { console.error(e.message, e.response && e.response.body); process.exit(1); });
"""


@pytest.fixture(scope="module")
def node_vault(tmp_path_factory: pytest.TempPathFactory) -> Path:
    npm, node = shutil.which("npm"), shutil.which("node")
    if not npm or not node:
        missing("node and npm are needed for the node-vault test")
    workdir = tmp_path_factory.mktemp("node-vault")
    result = subprocess.run(
        [str(npm), "install", "--silent", "--no-audit", "--no-fund", "node-vault@0.12.0"],
        cwd=workdir, capture_output=True, text=True, timeout=300, check=False,
    )
    if result.returncode != 0:
        missing(f"npm could not install node-vault: {result.stderr[-500:]}")
    (workdir / "lifecycle.js").write_text(SCRIPT)
    return workdir


def test_node_vault_lifecycle(node_vault: Path, tmp_path: Path) -> None:
    server = start_strongroom(["--storage", "memory://"], tmp_path)
    try:
        result = subprocess.run(
            ["node", "lifecycle.js", server.addr], cwd=node_vault, capture_output=True, text=True,
            timeout=60, check=False,
        )
        assert result.returncode == 0, result.stderr + server.log()
        out = json.loads(result.stdout)
    finally:
        server.kill()
    assert out == {
        "initializedBefore": False,
        "keys": 3,
        "unsealed": True,
        "read": {"user": "app", "password": "s3cr3t"},
        "list": ["db"],
        "policy": 'path "kv/data/*" { capabilities = ["read"] }',
        "childRead": "app",
        "childWrite": 403,
        "afterDelete": 404,
        "sealedAfter": True,
    }
