"""The platform's rekey and generate-root with their progress in storage: two "nodes" (two vaults over one
store, each unsealed by its own ceremony) share one attempt, whichever of them takes each call.

The HTTP behaviour (bodies, messages) is pinned by tests/engines/sys/test_rekey_api.py and
test_generate_root_api.py, which run these ceremonies through the routes; here: what storage adds.
"""

from __future__ import annotations

import base64

import pytest

from strongroom.clock import FakeClock
from strongroom.core.generate_root import decode_token
from strongroom.core.namespace import NamespaceKeys
from strongroom.core.rekey import RekeyRequest
from strongroom.core.seal import SealConfig, decode_share
from strongroom.core.stored_ceremony import PLATFORM_REKEY, PLATFORM_ROOT_GENERATION, PlatformSubject
from strongroom.core.stored_generate_root import StoredRootGeneration
from strongroom.core.stored_rekey import StoredRekey
from strongroom.core.vault import InitRequest, Vault
from strongroom.crypto.aead import generate_key
from strongroom.errors import InvalidRequest, InvalidShare, Sealed
from strongroom.storage.base import Transaction, transactional
from strongroom.storage.memory import MemoryStore
from strongroom.storage.subspace import ROOT_NAMESPACE_ID

TOKEN_LENGTH = 28


async def _setup(tx: Transaction, keys: NamespaceKeys) -> str:
    keys.records(tx, "sys").put_json(("marker",), {"ok": True})
    return "root-token"


async def _nodes(shares: int = 3, threshold: int = 2) -> tuple[Vault, Vault, list[str], FakeClock]:
    """Two unsealed vaults of the root namespace over one store (two nodes, or two workers)."""
    clock = FakeClock()
    store = MemoryStore()
    a, b = Vault(store, clock), Vault(store, clock)
    init = await a.initialize(InitRequest(shares, threshold), _setup)
    for vault in (a, b):
        for key in init.keys[:threshold]:
            await vault.submit_unseal(key)
        assert not vault.sealed
    return a, b, init.keys, clock


def _rekey(vault: Vault, expiry: float | None = None) -> StoredRekey:
    return StoredRekey(PlatformSubject(vault), expiry_seconds=expiry)


def _generation(vault: Vault, expiry: float | None = None) -> StoredRootGeneration:
    return StoredRootGeneration(PlatformSubject(vault), token_length=TOKEN_LENGTH, expiry_seconds=expiry)


async def _unseals_with(store: MemoryStore, keys: list[str]) -> bool:
    """Whether a fresh node on ``store`` unseals with ``keys`` (and reads a record the old keys wrote)."""
    fresh = Vault(store, FakeClock())
    try:
        for key in keys:
            await fresh.submit_unseal(key)
    except InvalidShare:
        return False
    keys_ = fresh.keys
    if keys_ is None:
        return False

    async def marker(tx: Transaction) -> object:
        return await keys_.records(tx, "sys").get_json("marker")

    assert await transactional(store, marker) == {"ok": True}
    return True


async def _dump(store: MemoryStore) -> bytes:
    async with store.transaction() as tx:
        rows = await tx.range(b"", b"\xff" * 8)
    return b"".join(k + v for k, v in rows)


def _forms(secret: bytes) -> list[bytes]:
    return [secret, secret.hex().encode(), base64.b64encode(secret), base64.b64encode(secret).rstrip(b"=")]


async def test_rekey_shares_through_two_nodes_commit_once_for_both() -> None:
    a, b, old, _ = await _nodes()
    await _rekey(a).start(RekeyRequest(5, 3))
    status = await _rekey(b).status()  # the other node sees the attempt at once
    assert status["started"] and (status["t"], status["n"], status["progress"]) == (3, 5, 0)
    nonce = status["nonce"]
    assert await _rekey(b).submit(decode_share(old[0]), nonce) is None
    assert (await _rekey(a).status())["progress"] == 1
    # A duplicate is refused whichever node it reaches.
    with pytest.raises(InvalidRequest, match="already been provided during this generation operation"):
        await _rekey(a).submit(decode_share(old[0]), nonce)
    result = await _rekey(a).submit(decode_share(old[2]), nonce)
    assert result is not None and len(result.keys) == 5

    # A committed and adopted the new key; B's key no longer opens the keyring: it seals itself.
    assert not (await _rekey(a).status())["started"]
    with pytest.raises(Sealed):
        await _rekey(b).status()
    assert b.sealed
    for key in result.keys[:3]:
        await b.submit_unseal(key)
    assert not b.sealed and (await _rekey(b).status())["required"] == 3
    assert not await _unseals_with(a.store, old)
    assert await _unseals_with(a.store, result.keys_base64[2:])


async def test_verification_finishes_on_the_other_node() -> None:
    a, b, old, _ = await _nodes()
    await _rekey(a).start(RekeyRequest(3, 2, require_verification=True))
    nonce = (await _rekey(a).status())["nonce"]
    await _rekey(a).submit(decode_share(old[0]), nonce)
    pending = await _rekey(b).submit(decode_share(old[1]), nonce)
    assert pending is not None and pending.verification_required
    # Nothing committed yet: the old shares still unseal; the new key rests in the attempt record.
    assert await _unseals_with(a.store, old[:2])
    vnonce = (await _rekey(a).verification_status())["nonce"]
    assert vnonce == pending.verification_nonce
    await _rekey(a).restart_verification()
    vnonce = (await _rekey(b).verification_status())["nonce"]
    assert vnonce != pending.verification_nonce
    assert await _rekey(b).verify(decode_share(pending.keys[2]), vnonce) is None
    assert await _rekey(a).verify(decode_share(pending.keys[0]), vnonce) == vnonce
    assert not a.sealed  # A committed and adopted; B seals at its next request
    with pytest.raises(Sealed):
        await _rekey(b).status()
    assert not await _unseals_with(a.store, old[:2])
    assert await _unseals_with(a.store, pending.keys[:2])


async def test_an_attempt_for_a_root_key_replaced_otherwise_is_void() -> None:
    a, _, old, clock = await _nodes()
    await _rekey(a).start(RekeyRequest(3, 2, require_verification=True))
    nonce = (await _rekey(a).status())["nonce"]
    await _rekey(a).submit(decode_share(old[0]), nonce)
    pending = await _rekey(a).submit(decode_share(old[1]), nonce)
    assert pending is not None

    # The root key is replaced behind the ceremony's back (what `strongroom platform recover` does offline):
    # the stored keyring re-sealed under another key (1-of-1), the node unsealed with it.
    keys = a.keys
    assert keys is not None
    other = generate_key()

    async def replace_root_key(tx: Transaction) -> None:
        await a.write_keyring(tx, NamespaceKeys.build(keys.ns_id, keys.path, other, keys.keyring))
        await a.update_config(tx, SealConfig("shamir", 1, 1))

    await transactional(a.store, replace_root_key)
    recovered = Vault(a.store, clock)
    await recovered.submit_unseal(base64.b64encode(other.reveal()).decode())  # a 1-of-1 share is the key
    assert not recovered.sealed
    # The pending verification must not commit its new key over the recovered one.
    assert not (await _rekey(recovered).status())["started"]
    with pytest.raises(InvalidRequest, match=r"^no rekey in progress$"):
        await _rekey(recovered).verify(decode_share(pending.keys[0]), pending.verification_nonce)
    assert await _unseals_with(a.store, [base64.b64encode(other.reveal()).decode()])


async def test_generate_root_shares_through_two_nodes() -> None:
    a, b, keys, _ = await _nodes()
    issued: list[str] = []

    async def issue(tx: Transaction, ns_keys: NamespaceKeys) -> str:
        token = "hvs." + "t" * (TOKEN_LENGTH - 4)
        ns_keys.records(tx, "sys").put_json(("issued",), {"token": token})
        issued.append(token)
        return token

    otp = await _generation(a).start()
    assert len(otp) == TOKEN_LENGTH
    status = await _generation(b).status()
    assert status["started"] and status["otp"] == "" and status["required"] == 2
    first = await _generation(b).submit(decode_share(keys[1]), status["nonce"], issue)
    assert first["progress"] == 1 and not first["complete"]
    assert (await _generation(a).status())["progress"] == 1
    done = await _generation(a).submit(decode_share(keys[2]), status["nonce"], issue)
    assert done["complete"] and issued
    assert decode_token(done["encoded_token"], otp) == issued[-1]
    assert not (await _generation(b).status())["started"]


async def test_ceremony_records_are_encrypted_and_expire() -> None:
    a, b, keys, clock = await _nodes()
    otp = await _generation(a, expiry=600).start()
    status = await _generation(a).status()
    await _generation(a).submit(decode_share(keys[0]), status["nonce"], _no_issue)
    clock.advance(300)
    await _rekey(a).start(RekeyRequest(3, 2))
    await _rekey(b).submit(decode_share(keys[1]), (await _rekey(a).status())["nonce"])
    dump = await _dump(a.store)  # what a copy of the storage shows
    for secret in (decode_share(keys[0]), decode_share(keys[1]), otp.encode()):
        assert not any(form in dump for form in _forms(secret))
    assert PLATFORM_REKEY.encode() in dump  # the record is there, under its key, encrypted

    clock.advance(301)  # the generation started 601 s ago, the rekey 301 s ago
    assert not (await _generation(b, expiry=600).status())["started"]
    assert (await _rekey(b, expiry=600).status())["started"]
    clock.advance(300)
    assert not (await _rekey(b, expiry=600).status())["started"]

    async def gone(tx: Transaction) -> list[object]:
        platform = await a.current_keys(tx)
        return [await platform.records(tx, "sys", area).get(ROOT_NAMESPACE_ID)
                for area in (PLATFORM_REKEY, PLATFORM_ROOT_GENERATION)]  # fmt: skip

    assert await transactional(a.store, gone) == [None, None]  # an expired attempt is deleted when read


async def _no_issue(tx: Transaction, keys: NamespaceKeys) -> str:
    raise AssertionError("no token is issued below the threshold")


async def test_ending_the_ceremonies_and_a_sealed_platform() -> None:
    a, b, _, _ = await _nodes()
    await _rekey(a).start(RekeyRequest(3, 2))
    await _generation(a).start()
    await PlatformSubject(b).end_ceremonies()  # what sys/seal does first, on any node
    assert not (await _rekey(a).status())["started"]
    assert not (await _generation(a).status())["started"]
    b.seal()
    with pytest.raises(Sealed):
        await _rekey(b).start(RekeyRequest(3, 2))
    with pytest.raises(Sealed):
        await _generation(b).status()
    with pytest.raises(Sealed):
        await PlatformSubject(b).end_ceremonies()
