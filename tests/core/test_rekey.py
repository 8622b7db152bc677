"""The rekey state machine below HTTP, as the server runs it (:class:`StoredRekey` on the platform's vault):
phases, nonces, progress, the atomic commit, expiry.

Every test here used to pin ``RekeyCeremony``, a node-local reference with its progress in one process's
memory that no route ran any more; they now pin the stored ceremony the routes run. Where the two designs
differ, the test says so in its docstring and pins the stored design's rule. What only storage adds (two
nodes taking turns, encrypted and expiring records) is in test_stored_ceremonies.py.
"""

from __future__ import annotations

import dataclasses

import pytest

from strongroom.clock import FakeClock
from strongroom.core.namespace import NamespaceKeys
from strongroom.core.rekey import RekeyRequest
from strongroom.core.seal import decode_share
from strongroom.core.stored_ceremony import PlatformSubject
from strongroom.core.stored_rekey import StoredRekey
from strongroom.core.vault import InitRequest, Vault
from strongroom.crypto.shamir import combine_key, split
from strongroom.errors import InvalidRequest, InvalidShare, NotInitialized, Sealed
from strongroom.storage.base import Transaction, transactional
from strongroom.storage.memory import MemoryStore


async def _setup(tx: Transaction, keys: NamespaceKeys) -> str:
    keys.records(tx, "sys").put_json(("marker",), {"ok": True})
    return "root-token"


async def _vault(shares: int = 3, threshold: int = 2) -> tuple[Vault, list[str], FakeClock]:
    clock = FakeClock()
    vault = Vault(MemoryStore(), clock)
    result = await vault.initialize(InitRequest(shares, threshold), _setup)
    for key in result.keys[:threshold]:
        await vault.submit_unseal(key)
    assert not vault.sealed
    return vault, result.keys, clock


def _ceremony(vault: Vault, expiry_seconds: float | None = None) -> StoredRekey:
    """The platform rekey of ``vault`` as ``sys/rekey`` builds it (a new, stateless object per call)."""
    return StoredRekey(PlatformSubject(vault), expiry_seconds=expiry_seconds)


def _shares(keys: list[str]) -> list[bytes]:
    return [decode_share(k) for k in keys]


def _forged(share: bytes) -> bytes:
    """The share with its first value byte changed: same x-coordinate, so it combines with the other
    shares (random x-coordinates of unrelated shares could collide), but to the wrong key."""
    return bytes([share[0] ^ 0x5A]) + share[1:]


async def _unseals_with(vault: Vault, keys: list[str]) -> bool:
    """Whether a fresh vault on the same store (another node, a restart) unseals with ``keys``."""
    other = Vault(vault.store, FakeClock())
    try:
        for key in keys:
            await other.submit_unseal(key)
    except InvalidShare:
        return False
    if other.sealed:
        return False
    keys_ = other.keys
    assert keys_ is not None

    async def marker(tx: Transaction) -> object:
        return await keys_.records(tx, "sys").get_json("marker")

    assert await transactional(other.store, marker) == {"ok": True}
    return True


async def _keyring_blob(vault: Vault) -> bytes | None:
    async def read(tx: Transaction) -> bytes | None:
        return await tx.get(vault.keyring_key)

    return await transactional(vault.store, read)


async def test_full_rekey_replaces_the_root_key_and_config() -> None:
    vault, old_keys, _ = await _vault()
    ceremony = _ceremony(vault)
    status = await ceremony.status()
    assert status == {
        "nonce": "", "started": False, "t": 0, "n": 0, "progress": 0, "required": 2,
        "pgp_fingerprints": None, "backup": False, "verification_required": False,
    }  # fmt: skip
    await ceremony.start(RekeyRequest(5, 3))
    status = await ceremony.status()
    nonce = status["nonce"]
    assert status["started"] and (status["t"], status["n"], status["required"]) == (3, 5, 2)
    old_root = vault.keys.root_key if vault.keys else None

    assert await ceremony.submit(_shares(old_keys)[0], nonce) is None
    assert (await ceremony.status())["progress"] == 1
    result = await ceremony.submit(_shares(old_keys)[2], nonce)
    assert result is not None and result.nonce == nonce
    assert len(result.keys) == 5 and not result.verification_required and result.pgp_fingerprints is None
    assert not (await ceremony.status())["started"]  # back to IDLE
    assert vault.keys is not None and vault.keys.root_key != old_root
    config = await vault.seal_config()
    assert config is not None and (config.secret_shares, config.secret_threshold) == (5, 3)

    assert not await _unseals_with(vault, old_keys)  # three old shares rebuild the OLD key: refused
    assert not await _unseals_with(vault, result.keys[:2])  # below the new threshold
    assert await _unseals_with(vault, result.keys_base64[1:4])


async def test_start_validates_like_vault() -> None:
    vault, _, _ = await _vault()
    ceremony = _ceremony(vault)
    cases = [
        (RekeyRequest(3, 2, backup=True), "cannot request a backup of the new keys without providing PGP"),
        (RekeyRequest(3, 2, pgp_keys=("a", "b")), "incorrect number of PGP keys for rekey"),
        (RekeyRequest(2, 3), "provided threshold greater than the total shares"),
        (RekeyRequest(0, 0), "invalid rekey seal configuration: shares must be at least one"),
        (RekeyRequest(3, 1), "invalid rekey seal configuration: threshold must be greater than one"),
        (RekeyRequest(1, 1, pgp_keys=("not base64!",)), "error decoding given PGP key"),
    ]
    for request, message in cases:
        with pytest.raises(InvalidRequest, match=message):
            await ceremony.start(request)
        assert not (await ceremony.status())["started"]
    await ceremony.start(RekeyRequest(1, 1))
    with pytest.raises(InvalidRequest, match=r"^rekey already in progress$"):
        await ceremony.start(RekeyRequest(3, 2))


async def test_nonce_duplicate_and_state_errors() -> None:
    vault, keys, _ = await _vault()
    ceremony = _ceremony(vault)
    share = _shares(keys)[0]
    with pytest.raises(InvalidRequest, match=r"^no barrier rekey in progress$"):
        await ceremony.submit(share, "")
    with pytest.raises(InvalidRequest, match=r"^no rekey configuration found$"):
        await ceremony.verification_status()
    with pytest.raises(InvalidRequest, match=r"^no rekey in progress$"):
        await ceremony.verify(share, "")
    await ceremony.start(RekeyRequest(3, 2))
    nonce = (await ceremony.status())["nonce"]
    with pytest.raises(InvalidRequest, match=f'nonce for this rekey operation is "{nonce}"$'):
        await ceremony.submit(share, "wrong")
    assert (await ceremony.status())["progress"] == 0
    with pytest.raises(InvalidRequest, match=r"^no rekey verification in progress$"):
        await ceremony.verify(share, nonce)
    assert await ceremony.submit(share, nonce) is None
    with pytest.raises(InvalidRequest, match="already been provided during this generation operation"):
        await ceremony.submit(share, nonce)
    with pytest.raises(InvalidShare, match="key is shorter than minimum 16 bytes"):
        await ceremony.submit(b"\x01" * 15, nonce)
    with pytest.raises(InvalidShare, match="key is longer than maximum 33 bytes"):
        await ceremony.submit(b"\x01" * 34, nonce)
    assert (await ceremony.status())["progress"] == 1


async def test_shares_of_another_key_reset_progress_and_keep_the_attempt() -> None:
    vault, keys, _ = await _vault()
    ceremony = _ceremony(vault)
    await ceremony.start(RekeyRequest(3, 2))
    nonce = (await ceremony.status())["nonce"]
    assert await ceremony.submit(_shares(keys)[0], nonce) is None
    with pytest.raises(InvalidShare, match="root key verification failed"):
        await ceremony.submit(_forged(_shares(keys)[1]), nonce)
    status = await ceremony.status()
    assert status["started"] and status["nonce"] == nonce and status["progress"] == 0
    # The right shares still work afterwards, under the same nonce.
    assert await ceremony.submit(_shares(keys)[1], nonce) is None
    assert await ceremony.submit(_shares(keys)[2], nonce) is not None


async def test_verification_commits_only_after_new_shares_are_proven() -> None:
    """One difference from the in-memory reference this test used to pin: two NEW shares with the same
    x-coordinate, which cannot combine at all, are refused like any wrong combination (``InvalidRequest``,
    "rekey verification failed"), not with the combiner's ``InvalidShare``: StoredRekey.verify treats every
    set of new shares that does not yield the new key alike. The rule the test pins is unchanged: progress
    resets and the verification nonce changes."""
    vault, old_keys, _ = await _vault()
    ceremony = _ceremony(vault)
    await ceremony.start(RekeyRequest(3, 2, require_verification=True))
    nonce = (await ceremony.status())["nonce"]
    await ceremony.submit(_shares(old_keys)[0], nonce)
    result = await ceremony.submit(_shares(old_keys)[1], nonce)
    assert result is not None and result.verification_required
    first_vnonce = result.verification_nonce
    status = await ceremony.status()  # VERIFYING: started, the verification nonce shown, progress reset
    assert status["started"] and status["verification_nonce"] == first_vnonce and status["progress"] == 0
    with pytest.raises(InvalidRequest, match="verification must be performed"):
        await ceremony.submit(_shares(old_keys)[2], nonce)
    # Nothing is committed yet: the old shares still unseal.
    assert await _unseals_with(vault, old_keys[:2])
    assert await ceremony.verification_status() == {
        "nonce": first_vnonce, "started": True, "t": 2, "n": 3, "progress": 0,
    }  # fmt: skip

    new = _shares(result.keys)
    with pytest.raises(InvalidRequest, match=f'nonce for this verify operation is "{first_vnonce}"'):
        await ceremony.verify(new[0], nonce)
    assert await ceremony.verify(new[0], first_vnonce) is None
    # A wrong share in the verification phase combines to the wrong key: progress resets, nonce changes.
    with pytest.raises(InvalidRequest, match="rekey verification failed; incorrect key shares supplied"):
        await ceremony.verify(_forged(new[1]), first_vnonce)
    second = (await ceremony.verification_status())["nonce"]
    assert second != first_vnonce
    # Two shares with the same x-coordinate cannot combine at all: same reset, another nonce.
    forged = bytes([new[0][0] ^ 1]) + new[0][1:]
    await ceremony.verify(new[0], second)
    with pytest.raises(InvalidRequest, match="rekey verification failed; incorrect key shares supplied"):
        await ceremony.verify(forged, second)
    after_forgery = await ceremony.verification_status()
    assert after_forgery["progress"] == 0 and after_forgery["nonce"] != second
    second = after_forgery["nonce"]
    with pytest.raises(InvalidShare, match="shorter than minimum"):
        await ceremony.verify(b"short", second)
    assert (await ceremony.verification_status())["nonce"] == second  # a refused size changes nothing
    await ceremony.verify(new[2], second)
    await ceremony.restart_verification()
    third = await ceremony.verification_status()
    assert third["progress"] == 0 and third["nonce"] not in (first_vnonce, second)

    assert await ceremony.verify(new[1], third["nonce"]) is None
    assert await ceremony.verify(new[2], third["nonce"]) == third["nonce"]
    assert not (await ceremony.status())["started"]  # back to IDLE
    assert not await _unseals_with(vault, old_keys[:2])
    assert await _unseals_with(vault, result.keys[:2])


async def test_cancel_during_verification_keeps_the_old_shares() -> None:
    vault, old_keys, _ = await _vault()
    ceremony = _ceremony(vault)
    await ceremony.start(RekeyRequest(3, 2, require_verification=True))
    nonce = (await ceremony.status())["nonce"]
    await ceremony.submit(_shares(old_keys)[0], nonce)
    result = await ceremony.submit(_shares(old_keys)[1], nonce)
    assert result is not None
    await ceremony.cancel()
    assert not (await ceremony.status())["started"]
    with pytest.raises(InvalidRequest, match=r"^no rekey in progress$"):
        await ceremony.verify(_shares(result.keys)[0], result.verification_nonce)
    assert await _unseals_with(vault, old_keys[1:])
    assert not await _unseals_with(vault, result.keys[:2])


async def test_a_rotation_committed_before_the_rekey_survives_it() -> None:
    vault, old_keys, clock = await _vault()
    keys = vault.keys
    assert keys is not None
    rotated = NamespaceKeys.build(keys.ns_id, keys.path, keys.root_key, keys.keyring.rotated(clock.now()))

    async def rotate(tx: Transaction) -> None:
        await vault.write_keyring(tx, rotated)

    await transactional(vault.store, rotate)
    vault.install(rotated)
    ceremony = _ceremony(vault)
    await ceremony.start(RekeyRequest(1, 1))
    nonce = (await ceremony.status())["nonce"]
    await ceremony.submit(_shares(old_keys)[0], nonce)
    result = await ceremony.submit(_shares(old_keys)[1], nonce)
    assert result is not None and len(decode_share(result.keys[0])) == 32
    reopened = await vault.load_keys(combine_key([decode_share(result.keys[0])], 1, 1))
    assert [t.number for t in reopened.keyring.terms] == [1, 2]
    # The node kept its barrier (and encryption counter) because the keyring itself did not change.
    assert vault.keys is not None and vault.keys.barrier is rotated.barrier


async def test_expiry_drops_a_stale_attempt() -> None:
    vault, keys, clock = await _vault()
    ceremony = _ceremony(vault, expiry_seconds=600)
    await ceremony.start(RekeyRequest(3, 2))
    nonce = (await ceremony.status())["nonce"]
    await ceremony.submit(_shares(keys)[0], nonce)
    clock.advance(599)
    status = await ceremony.status()
    assert status["started"] and status["progress"] == 1  # still COLLECTING
    clock.advance(2)
    assert not (await ceremony.status())["started"]  # expired: IDLE
    with pytest.raises(InvalidRequest, match="no barrier rekey in progress"):
        await ceremony.submit(_shares(keys)[1], nonce)
    await ceremony.start(RekeyRequest(3, 2))
    assert (await ceremony.status())["nonce"] != nonce


async def test_sealed_and_uninitialised_vaults_refuse() -> None:
    vault, keys, _ = await _vault()
    ceremony = _ceremony(vault)
    await ceremony.start(RekeyRequest(3, 2))
    vault.seal()
    with pytest.raises(Sealed):
        await ceremony.status()
    with pytest.raises(Sealed):
        await ceremony.submit(_shares(keys)[0], "")
    fresh = _ceremony(Vault(MemoryStore(), FakeClock()))
    with pytest.raises(NotInitialized, match="server is not yet initialized"):
        await fresh.status()


async def test_a_keyring_that_no_longer_opens_with_the_nodes_key_commits_nothing() -> None:
    """The reference this test used to pin kept serving the ceremony and refused the completing share
    (``InvalidShare``) once the stored keyring no longer opened with the shares' key. The stored ceremony
    reads the node's keys in every step's transaction, checked against the stored keyring: a keyring the
    node's key does not open (another node rekeyed behind this one's back) seals the node first, so the step
    fails with ``Sealed``. The rule pinned is the same: nothing is committed over the foreign keyring, and the
    node adopts nothing."""
    vault, old_keys, _ = await _vault()
    ceremony = _ceremony(vault)
    await ceremony.start(RekeyRequest(3, 2))
    nonce = (await ceremony.status())["nonce"]
    await ceremony.submit(_shares(old_keys)[0], nonce)
    keys_before = vault.keys
    assert keys_before is not None

    # Another node rekeyed behind this one's back: the stored keyring no longer opens with our key.
    other = dataclasses.replace(keys_before, root_key=combine_key(split(bytes(range(32)), 2, 2), 2, 2))

    async def foreign(tx: Transaction) -> None:
        await vault.write_keyring(tx, other)

    await transactional(vault.store, foreign)
    foreign_blob = await _keyring_blob(vault)
    with pytest.raises(Sealed):
        await ceremony.submit(_shares(old_keys)[1], nonce)
    assert vault.sealed  # adopted nothing: it dropped the keys the stored keyring no longer matches
    assert await _keyring_blob(vault) == foreign_blob  # nothing re-sealed over the other node's keyring
    assert not await _unseals_with(vault, old_keys)


async def test_two_nodes_share_one_attempt_and_a_stale_verification_cannot_commit() -> None:
    """The reference this test used to pin held its attempt in one node's memory, so two nodes over one store
    ran two independent attempts, and it pinned that a node's half-verified attempt died when the other node
    committed its own rekey. With the attempt in storage that cannot happen: there is one attempt per
    namespace, whichever node takes the call. This pins the stored design's rule instead: a second start
    through another node is refused while the attempt runs; another node ends it (cancel) and commits a
    rekey of its own; the first node, unsealed again with the newest shares, cannot verify (and so commit)
    the attempt it had half-verified."""
    vault, old_keys, _ = await _vault()
    stale = _ceremony(vault)
    await stale.start(RekeyRequest(3, 2, require_verification=True))
    nonce = (await stale.status())["nonce"]
    await stale.submit(_shares(old_keys)[0], nonce)
    pending = await stale.submit(_shares(old_keys)[1], nonce)
    assert pending is not None and (await stale.verification_status())["started"]  # VERIFYING

    # A second node on the same store, unsealed by its own ceremony, sees that one attempt.
    other = Vault(vault.store, FakeClock())
    for key in old_keys[:2]:
        await other.submit_unseal(key)
    elsewhere = _ceremony(other)
    seen = await elsewhere.status()
    assert seen["nonce"] == nonce and seen["verification_nonce"] == pending.verification_nonce
    with pytest.raises(InvalidRequest, match=r"^rekey already in progress$"):
        await elsewhere.start(RekeyRequest(3, 2))
    # It ends the attempt for every node and completes a rekey of its own with the same old shares.
    await elsewhere.cancel()
    await elsewhere.start(RekeyRequest(3, 2))
    other_nonce = (await elsewhere.status())["nonce"]
    assert other_nonce != nonce
    await elsewhere.submit(_shares(old_keys)[0], other_nonce)
    result = await elsewhere.submit(_shares(old_keys)[2], other_nonce)
    assert result is not None

    # This node is unsealed again with the newest shares: its half-verified attempt must not commit
    # over the other node's rekey.
    vault.seal()
    for key in result.keys[:2]:
        await vault.submit_unseal(key)
    assert not (await stale.status())["started"]
    with pytest.raises(InvalidRequest, match=r"^no rekey in progress$"):
        await stale.verify(_shares(pending.keys)[0], pending.verification_nonce)
    assert await _unseals_with(vault, result.keys[1:])
    assert not await _unseals_with(vault, pending.keys[:2])
