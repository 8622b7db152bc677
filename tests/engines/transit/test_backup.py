"""``backup/:name``, ``restore`` and ``restore/:name`` over the API.

Backups must have Vault's layout (checked field by field here, byte compatibility with OpenBao in
tests/compat/test_transit_backup_bao.py), restore must bring back every version that can still be used
(including archived ones below ``min_decryption_version``), and every malformed backup is a 400 that
leaves nothing behind.
"""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

import pytest

from strongroom.crypto.transit import vault_entry
from strongroom.storage.memory import MemoryStore
from tests.engines.transit.conftest import b64, unb64
from tests.support.vault import InProcessVault, start_vault

POLICY_FIELDS = [
    "name", "keys", "derived", "kdf", "convergent_encryption", "exportable", "min_decryption_version",
    "min_encryption_version", "latest_version", "archive_version", "archive_min_version", "min_available_version",
    "deletion_allowed", "convergent_version", "type", "backup_info", "restore_info", "allow_plaintext_backup",
    "version_template", "storage_prefix", "auto_rotate_period", "Imported", "AllowImportedKeyRotation",
    "soft_deleted",
]
ENTRY_FIELDS = ["key", "hmac_key", "time", "ec_x", "ec_y", "ec_d", "rsa_key", "rsa_public_key", "public_key",
                "convergent_version", "creation_time", "certificate_chain", "external_key_ref"]
BACKUPABLE = {"exportable": True, "allow_plaintext_backup": True}


async def _backup(transit: InProcessVault, name: str) -> str:
    backup: str = (await transit.ok("GET", f"transit/backup/{name}"))["data"]["backup"]
    return backup


def _doc(backup: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(base64.b64decode(backup))
    return doc


def _encode(doc: dict[str, Any]) -> str:
    return base64.b64encode(json.dumps(doc).encode()).decode()


async def _restore(transit: InProcessVault, path: str, **body: Any) -> tuple[int, Any]:
    r = await transit.call("POST", path, json=body)
    return r.status_code, (r.json() if r.content else None)


async def _encrypt(transit: InProcessVault, name: str, text: str, **kw: Any) -> str:
    body = await transit.ok("POST", f"transit/encrypt/{name}", json={"plaintext": b64(text), **kw})
    ciphertext: str = body["data"]["ciphertext"]
    return ciphertext


async def _decrypt(transit: InProcessVault, name: str, ciphertext: str, **kw: Any) -> tuple[int, Any]:
    r = await transit.call("POST", f"transit/decrypt/{name}", json={"ciphertext": ciphertext, **kw})
    body = r.json()
    return r.status_code, unb64(body["data"]["plaintext"]).decode() if r.status_code == 200 else body["errors"]


# -- backup -----------------------------------------------------------------------------------------

async def test_backup_needs_exportable_and_plaintext_backup(transit: InProcessVault) -> None:
    await transit.ok("POST", "transit/keys/plain", json={})
    await transit.ok("POST", "transit/keys/exp", json={"exportable": True})
    for name, message in [("plain", "exporting is disallowed on the policy"),
                          ("exp", "plaintext backup is disallowed on the policy"),
                          ("nope", 'key "nope" not found')]:
        r = await transit.call("GET", f"transit/backup/{name}")
        assert r.status_code == 400 and r.json()["errors"] == [message]
    read = (await transit.ok("GET", "transit/keys/exp"))["data"]
    assert "backup_info" not in read


async def test_backup_has_vaults_layout_and_records_itself(transit: InProcessVault) -> None:
    await transit.ok("POST", "transit/keys/k", json={**BACKUPABLE, "auto_rotate_period": "2h"})
    for _ in range(2):
        await transit.ok("POST", "transit/keys/k/rotate")
    await transit.ok("POST", "transit/keys/k/config", json={"min_decryption_version": 2})
    transit.clock.current = 1_800_000_000.5
    doc = _doc(await _backup(transit, "k"))
    assert list(doc) == ["policy", "archived_keys"]
    policy = doc["policy"]
    assert list(policy) == POLICY_FIELDS
    assert policy["type"] == 0 and policy["kdf"] == 0 and policy["convergent_version"] == 0
    assert policy["latest_version"] == 3 and policy["archive_version"] == 3
    assert policy["auto_rotate_period"] == 7200 * 10**9
    assert policy["backup_info"] == {"time": "2027-01-15T08:00:00.5Z", "version": 3}
    assert list(policy["keys"]) == ["2", "3"]  # Vault's live map starts at min_decryption_version
    assert all(list(e) == ENTRY_FIELDS for e in policy["keys"].values())
    archive = doc["archived_keys"]["keys"]
    assert len(archive) == 4 and archive[0] == vault_entry.zero_entry()  # slot i holds version i
    assert archive[2] == policy["keys"]["2"] and archive[1]["key"] != archive[2]["key"]
    read = (await transit.ok("GET", "transit/keys/k"))["data"]
    assert read["backup_info"] == {"time": "2027-01-15T08:00:00.5Z", "version": 3}


async def test_asymmetric_entries_carry_big_integers_as_json_numbers(transit: InProcessVault) -> None:
    await transit.ok("POST", "transit/keys/r", json={**BACKUPABLE, "type": "rsa-2048"})
    await transit.ok("POST", "transit/keys/e", json={**BACKUPABLE, "type": "ecdsa-p521"})
    rsa_text = base64.b64decode(await _backup(transit, "r")).decode()
    rsa_key = json.loads(rsa_text)["policy"]["keys"]["1"]["rsa_key"]
    assert list(rsa_key) == ["N", "E", "D", "Primes", "Precomputed"]
    assert list(rsa_key["Precomputed"]) == ["Dp", "Dq", "Qinv", "CRTValues"]
    assert rsa_key["N"].bit_length() == 2048 and f'"N":{rsa_key["N"]},"E":65537,' in rsa_text
    ec_entry = _doc(await _backup(transit, "e"))["policy"]["keys"]["1"]
    assert all(isinstance(ec_entry[f], int) for f in ("ec_x", "ec_y", "ec_d"))
    assert ec_entry["public_key"].startswith("-----BEGIN PUBLIC KEY-----") and _doc(
        await _backup(transit, "e"))["policy"]["type"] == 7


# -- restore ----------------------------------------------------------------------------------------

CASES = [
    ("aes128-gcm96", {}), ("aes256-gcm96", {}), ("chacha20-poly1305", {}), ("xchacha20-poly1305", {}),
    ("aes256-gcm96", {"derived": True}), ("chacha20-poly1305", {"derived": True, "convergent_encryption": True}),
    ("rsa-2048", {}), ("ed25519", {}), ("ed25519", {"derived": True}), ("ecdsa-p256", {}), ("ecdsa-p384", {}),
    ("hmac", {"key_size": 40}),
]


@pytest.mark.parametrize(("kind", "options"), CASES)
async def test_restore_under_a_new_name_keeps_every_version(
    transit: InProcessVault, kind: str, options: dict[str, Any]
) -> None:
    await transit.ok("POST", "transit/keys/src", json={**BACKUPABLE, "type": kind, **options})
    await transit.ok("POST", "transit/keys/src/rotate")
    context = {"context": b64("ctx")} if options.get("derived") else {}
    encrypts = kind not in ("ed25519", "ecdsa-p256", "ecdsa-p384", "hmac")
    ciphertexts = [await _encrypt(transit, "src", f"m{v}", key_version=v, **context) for v in (1, 2)] if encrypts else []
    backup = await _backup(transit, "src")
    transit.clock.current += 10
    assert await _restore(transit, "transit/restore/copy", backup=backup) == (204, None)
    for v, ct in enumerate(ciphertexts, 1):
        assert await _decrypt(transit, "copy", ct, **context) == (200, f"m{v}")
    if options.get("convergent_encryption"):
        assert await _encrypt(transit, "copy", "m2", **context) == await _encrypt(transit, "src", "m2", **context)
    src = (await transit.ok("GET", "transit/keys/src"))["data"]
    copy_ = (await transit.ok("GET", "transit/keys/copy"))["data"]
    assert copy_["restore_info"]["version"] == 2 and copy_["backup_info"] == src["backup_info"]
    for field in ("type", "derived", "exportable", "latest_version", "keys", "min_decryption_version"):
        assert copy_.get(field) == src.get(field), field
    for kind_ in ("encryption-key", "signing-key", "hmac-key", "public-key"):
        ours = await transit.call("GET", f"transit/export/{kind_}/copy")
        theirs = await transit.call("GET", f"transit/export/{kind_}/src")
        assert ours.status_code == theirs.status_code
        if ours.status_code == 200:
            assert ours.json()["data"]["keys"] == theirs.json()["data"]["keys"]
    again = _doc(await _backup(transit, "copy"))["policy"]
    assert again["name"] == "copy" and again["restore_info"]["version"] == 2


async def test_restore_brings_back_archived_versions_below_min_decryption(transit: InProcessVault) -> None:
    await transit.ok("POST", "transit/keys/k", json=BACKUPABLE)
    for _ in range(4):
        await transit.ok("POST", "transit/keys/k/rotate")
    cts = {v: await _encrypt(transit, "k", f"v{v}", key_version=v) for v in range(1, 6)}
    await transit.ok("POST", "transit/keys/k/config", json={"min_decryption_version": 3, "min_encryption_version": 4})
    await transit.ok("POST", "transit/keys/k/trim", json={"min_available_version": 2})
    doc = _doc(await _backup(transit, "k"))
    assert len(doc["archived_keys"]["keys"]) == 4 and doc["policy"]["archive_min_version"] == 2
    assert await _restore(transit, "transit/restore/k2", backup=_encode(doc)) == (204, None)
    read = (await transit.ok("GET", "transit/keys/k2"))["data"]
    assert (read["min_available_version"], read["min_decryption_version"], read["min_encryption_version"]) == (2, 3, 4)
    for v in (3, 4, 5):
        assert await _decrypt(transit, "k2", cts[v]) == (200, f"v{v}")
    assert await _decrypt(transit, "k2", cts[2]) == (
        400, ["ciphertext or signature version is disallowed by policy (too old)"])
    await transit.ok("POST", "transit/keys/k2/config", json={"min_decryption_version": 2})
    assert await _decrypt(transit, "k2", cts[2]) == (200, "v2")


async def test_restore_needs_force_to_replace_and_replaces_everything(transit: InProcessVault) -> None:
    await transit.ok("POST", "transit/keys/k", json=BACKUPABLE)
    backup = await _backup(transit, "k")
    old = await _encrypt(transit, "k", "old")
    status, body = await _restore(transit, "transit/restore", backup=backup)
    assert (status, body["errors"]) == (400, ['key "k" already exists'])
    await transit.ok("POST", "transit/keys/other", json=BACKUPABLE)
    for _ in range(3):
        await transit.ok("POST", "transit/keys/other/rotate")
    assert await _restore(transit, "transit/restore/other", backup=backup, force=True) == (204, None)
    read = (await transit.ok("GET", "transit/keys/other"))["data"]
    assert read["latest_version"] == 1 and set(read["keys"]) == {"1"}
    assert await _decrypt(transit, "other", old) == (200, "old")
    assert await _restore(transit, "transit/restore", backup=backup, force="true") == (204, None)


async def test_restore_names(transit: InProcessVault) -> None:
    await transit.ok("POST", "transit/keys/k", json=BACKUPABLE)
    backup = await _backup(transit, "k")
    assert await _restore(transit, "transit/restore/a/b", backup=backup) == (
        400, {"errors": ["key names cannot be paths"]})
    assert await _restore(transit, "transit/restore", backup="") == (400, {"errors": ["'backup' must be supplied"]})
    assert await _restore(transit, "transit/restore/x") == (400, {"errors": ["'backup' must be supplied"]})
    doc = _doc(backup)
    doc["policy"]["name"] = "bad name"
    assert await _restore(transit, "transit/restore", backup=_encode(doc)) == (
        400, {"errors": ["invalid key name 'bad name'"]})
    assert await _restore(transit, "transit/restore/good.name", backup=_encode(doc)) == (204, None)


def _mutations() -> list[tuple[str, Any, str]]:
    def policy(**changes: Any) -> Any:
        return lambda d: d["policy"].update(changes)

    def entry(**changes: Any) -> Any:
        return lambda d: d["policy"]["keys"]["2"].update(changes)

    return [
        ("no policy", lambda d: d.pop("policy"), "invalid backup: no policy"),
        ("type", policy(type=99), "unsupported key type code 99"),
        ("type string", policy(type="aes"), "invalid backup: backup.policy.type must be a 64-bit integer"),
        ("latest 0", policy(latest_version=0), "invalid backup: latest version of 0 is less than 1"),
        ("min dec", policy(min_decryption_version=5),
         "invalid backup: minimum decryption version of 5 is not between 1 and the latest version 2"),
        ("min enc", policy(min_encryption_version=3), "invalid backup: minimum encryption version of 3 is out of range"),
        ("min avail", policy(min_available_version=2, min_decryption_version=1),
         "invalid backup: minimum available version of 2 is out of range"),
        ("missing version", lambda d: d["policy"]["keys"].pop("1"),
         "invalid backup: the policy must hold every version from min_decryption_version on"),
        ("gap", lambda d: d["policy"]["keys"].update({"7": d["policy"]["keys"].pop("1")}),
         "invalid backup: policy.keys has an unexpected version '7'"),
        ("label", lambda d: d["policy"]["keys"].update({"x1": d["policy"]["keys"].pop("1")}),
         "invalid backup: policy.keys has an unexpected version 'x1'"),
        ("archive", lambda d: d["archived_keys"]["keys"].append(None),
         "invalid backup: the archive holds more versions than the policy"),
        ("archive type", lambda d: d["archived_keys"].update(keys={}),
         "invalid backup: backup.archived_keys.keys must be an array"),
        ("soft deleted", policy(soft_deleted=True), "refusing to use soft-deleted key"),
        ("template", policy(version_template="x{{version}}:"),
         "invalid backup: custom version templates are not supported"),
        ("kdf", policy(derived=True, kdf=7), "invalid backup: unsupported key derivation mode"),
        ("convergent", policy(convergent_encryption=True),
         "invalid backup: convergent encryption requires a derived symmetric key"),
        ("convergent version", policy(derived=True, convergent_encryption=True, convergent_version=9),
         "invalid backup: unknown convergent version"),
        ("period", policy(auto_rotate_period=-1), "invalid backup: auto_rotate_period is negative"),
        ("key length", entry(key=base64.b64encode(b"k" * 31).decode()),
         "invalid backup: policy.keys.2 is not a valid aes256-gcm96 key"),
        ("bool", policy(exportable="yes"), "invalid backup: backup.policy.exportable must be a boolean"),
        ("backup_info", policy(backup_info={"time": "now", "version": 1}),
         "invalid backup: backup.policy.backup_info.time is not an RFC 3339 time"),
    ]


@pytest.mark.parametrize(("label", "mutate", "message"), _mutations(), ids=[m[0] for m in _mutations()])
async def test_malformed_backups_are_400_and_write_nothing(
    transit: InProcessVault, label: str, mutate: Any, message: str
) -> None:
    await transit.ok("POST", "transit/keys/k", json=BACKUPABLE)
    await transit.ok("POST", "transit/keys/k/rotate")
    doc = copy.deepcopy(_doc(await _backup(transit, "k")))
    mutate(doc)
    status, body = await _restore(transit, "transit/restore/fresh", backup=_encode(doc))
    assert (status, body["errors"]) == (400, [message])
    assert (await transit.call("GET", "transit/keys/fresh")).status_code == 404
    before = (await transit.ok("GET", "transit/export/encryption-key/k"))["data"]
    status, _ = await _restore(transit, "transit/restore/k", backup=_encode(doc), force=True)
    assert status == 400 and (await transit.ok("GET", "transit/export/encryption-key/k"))["data"] == before


@pytest.mark.parametrize(("backup", "message"), [
    ("%%%", "invalid backup: not standard base64"),
    (b64("not json"), "invalid backup: Expecting value at offset 0"),
    (b64('{"policy": {"type": 1.0}}'), "invalid backup: only integers are valid numbers in a backup"),
])
async def test_undecodable_backups_are_400(transit: InProcessVault, backup: str, message: str) -> None:
    assert await _restore(transit, "transit/restore/x", backup=backup) == (400, {"errors": [message]})


async def test_oversized_backup_is_400(transit: InProcessVault, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vault_entry, "MAX_BACKUP_CHARS", 100)
    status, body = await _restore(transit, "transit/restore/x", backup="A" * 104)
    assert (status, body["errors"]) == (400, ["backup is larger than 100 characters"])


async def test_restored_material_is_stored_wrapped() -> None:
    store = MemoryStore()
    vault = await start_vault(store)
    try:
        await vault.ok("POST", "sys/mounts/transit", json={"type": "transit"})
        await vault.ok("POST", "transit/keys/k", json={**BACKUPABLE, "type": "chacha20-poly1305"})
        backup = await _backup(vault, "k")
        raw = unb64(_doc(backup)["policy"]["keys"]["1"]["key"])
        await vault.ok("POST", "transit/restore/restored-key-name", json={"backup": backup})
        async with store.transaction() as tx:
            rows = await tx.range(b"", b"\xff" * 16)
        dump = b"".join(k + v for k, v in rows)
        assert raw not in dump and b"restored-key-name" not in dump and base64.b64encode(raw) not in dump
    finally:
        await vault.client.aclose()
        await vault.node.close()


async def test_restore_needs_update_on_the_restore_path(transit: InProcessVault) -> None:
    await transit.ok("POST", "transit/keys/k", json=BACKUPABLE)
    backup = await _backup(transit, "k")
    await transit.ok("PUT", "sys/policies/acl/r", json={"policy": 'path "transit/restore/mine" { capabilities = ["update"] }'})
    token = await transit.token(["r"])
    assert (await transit.call("POST", "transit/restore/other", token=token, json={"backup": backup})).status_code == 403
    r = await transit.call("POST", "transit/restore/mine", token=token, json={"backup": backup})
    assert r.status_code == 204
