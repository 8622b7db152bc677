"""Transit key storage: KEK wrapping bound to its key, the unwrapped-key cache and its lifetime."""

from __future__ import annotations

from strongroom.storage.memory import MemoryStore
from tests.engines.transit.conftest import b64, unb64
from tests.support.vault import InProcessVault, start_vault


def _cached_material(v: InProcessVault) -> list[object]:
    keys = v.node.vault("").keys
    assert keys is not None
    return [k for k in keys.engine_cache if isinstance(k, tuple) and k[0] == "transit"]


async def _rows(store: MemoryStore) -> dict[bytes, bytes]:
    async with store.transaction() as tx:
        return dict(await tx.range(b"", b"\xff" * 16))


async def test_material_survives_a_cold_cache() -> None:
    vault = await start_vault()
    await vault.ok("POST", "sys/mounts/transit", json={"type": "transit"})
    ct = (await vault.ok("POST", "transit/encrypt/k", json={"plaintext": b64("cold")}))["data"]["ciphertext"]
    keys = vault.node.vault("").keys
    assert keys is not None and _cached_material(vault)
    keys.engine_cache.clear()
    body = await vault.ok("POST", "transit/decrypt/k", json={"ciphertext": ct})
    assert unb64(body["data"]["plaintext"]) == b"cold"


async def test_seal_drops_unwrapped_keys() -> None:
    vault = await start_vault()
    await vault.ok("POST", "sys/mounts/transit", json={"type": "transit"})
    ct = (await vault.ok("POST", "transit/encrypt/k", json={"plaintext": b64("x")}))["data"]["ciphertext"]
    before = vault.node.vault("").keys
    assert before is not None and _cached_material(vault)
    await vault.ok("PUT", "sys/seal")
    assert vault.node.vault("").keys is None
    assert (await vault.call("POST", "transit/decrypt/k", json={"ciphertext": ct})).status_code == 503
    for key in vault.keys[:2]:
        await vault.client.put("/v1/sys/unseal", json={"key": key})
    after = vault.node.vault("").keys
    assert after is not None and after is not before and not _cached_material(vault)
    assert (await vault.ok("POST", "transit/decrypt/k", json={"ciphertext": ct}))["data"]["plaintext"] == b64("x")


async def test_delete_forgets_material_and_recreation_is_a_new_key(transit: InProcessVault) -> None:
    await transit.ok("POST", "transit/keys/k", json={})
    ct = (await transit.ok("POST", "transit/encrypt/k", json={"plaintext": b64("x")}))["data"]["ciphertext"]
    assert _cached_material(transit)
    await transit.ok("POST", "transit/keys/k/config", json={"deletion_allowed": True})
    await transit.ok("DELETE", "transit/keys/k")
    assert not _cached_material(transit)
    await transit.ok("POST", "transit/keys/k", json={})
    r = await transit.call("POST", "transit/decrypt/k", json={"ciphertext": ct})
    assert r.status_code == 400 and r.json()["errors"] == ["cipher: message authentication failed"]


async def test_swapped_material_records_are_refused() -> None:
    """Material is bound to its key by the KEK's associated data (and the barrier by physical key)."""
    store = MemoryStore()
    vault = await start_vault(store)
    await vault.ok("POST", "sys/mounts/transit", json={"type": "transit"})
    before = await _rows(store)
    await vault.ok("POST", "transit/keys/a", json={})
    after_a = await _rows(store)
    await vault.ok("POST", "transit/keys/b", json={})
    after_b = await _rows(store)
    new_a = {k: v for k, v in after_a.items() if k not in before}
    new_b = {k: v for k, v in after_b.items() if k not in after_a}
    keys = vault.node.vault("").keys
    assert keys is not None

    def material_key(rows: dict[bytes, bytes]) -> bytes:
        # The wrapped material is binary KEK ciphertext; the policy is JSON and the name marker short.
        found = [k for k, v in rows.items() if len(plain := keys.barrier.decrypt(k, v)) > 40
                 and not plain.startswith(b"{")]
        assert len(found) == 1
        return found[0]

    a_material, b_material = material_key(new_a), material_key(new_b)
    keys.engine_cache.clear()
    # Copied as is, the barrier refuses the record (its associated data is the physical key).
    async with store.transaction() as tx:
        tx.set(a_material, new_b[b_material])
    r = await vault.call("POST", "transit/encrypt/a", json={"plaintext": b64("x")})
    assert r.status_code == 500 and r.json()["errors"] == ["stored record failed authentication"]
    # Re-encrypted for a's physical key (an attacker holding the keyring but not the KEK binding), the
    # KEK layer still refuses it: its associated data names key b's id and material.
    wrapped_b = keys.barrier.decrypt(b_material, new_b[b_material])
    keys.engine_cache.clear()
    async with store.transaction() as tx:
        tx.set(a_material, keys.barrier.encrypt(a_material, wrapped_b))
    r = await vault.call("POST", "transit/encrypt/a", json={"plaintext": b64("x")})
    assert r.status_code == 500 and r.json()["errors"] == ["transit key material failed authentication"]


async def test_policy_moved_to_another_name_is_refused() -> None:
    store = MemoryStore()
    vault = await start_vault(store)
    await vault.ok("POST", "sys/mounts/transit", json={"type": "transit"})
    keys = vault.node.vault("").keys
    assert keys is not None
    snapshots = [await _rows(store)]
    for name in ("a", "b"):
        await vault.ok("POST", f"transit/keys/{name}", json={})
        snapshots.append(await _rows(store))

    def policy_key(before: dict[bytes, bytes], after: dict[bytes, bytes]) -> bytes:
        found = [k for k, v in after.items() if k not in before and keys.barrier.decrypt(k, v).startswith(b'{"name"')]
        assert len(found) == 1
        return found[0]

    a_policy = policy_key(snapshots[0], snapshots[1])
    b_policy = policy_key(snapshots[1], snapshots[2])
    b_plain = keys.barrier.decrypt(b_policy, snapshots[2][b_policy])
    async with store.transaction() as tx:
        tx.set(a_policy, keys.barrier.encrypt(a_policy, b_plain))
    r = await vault.call("POST", "transit/encrypt/a", json={"plaintext": b64("x")})
    assert r.status_code == 500 and r.json()["errors"] == ["transit key policy is stored under another name"]
