"""The generate-root state machine below HTTP, as the server runs it (:class:`StoredRootGeneration` on the
platform's vault): OTP encoding, phases, the quorum proof, expiry.

These tests used to pin ``GenerateRootCeremony``, a node-local reference with its progress in one
process's memory that no route ran any more; they now pin the stored ceremony the routes run (two nodes
taking turns and the encrypted, expiring record: test_stored_ceremonies.py).
"""

from __future__ import annotations

import base64
import string

import pytest

from strongroom.clock import FakeClock
from strongroom.core.generate_root import decode_token, encode_token
from strongroom.core.namespace import NamespaceKeys
from strongroom.core.seal import decode_share
from strongroom.core.stored_ceremony import PlatformSubject
from strongroom.core.stored_generate_root import StoredRootGeneration
from strongroom.core.vault import InitRequest, Vault
from strongroom.errors import InvalidRequest, InvalidShare, NotInitialized, Sealed
from strongroom.storage.base import Transaction, transactional
from strongroom.storage.memory import MemoryStore

TOKEN = "hvs.ABCDEFGHIJKLMNOPQRSTUVWX"


async def _setup(tx: Transaction, keys: NamespaceKeys) -> str:
    return "root-token"


class Issuer:
    """Writes a marker record in the ceremony's transaction and returns a fixed 28-character token."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, tx: Transaction, keys: NamespaceKeys) -> str:
        self.calls += 1
        keys.records(tx, "sys").put_json(("issued",), {"n": self.calls})
        return TOKEN


async def _vault() -> tuple[Vault, list[bytes], FakeClock]:
    clock = FakeClock()
    vault = Vault(MemoryStore(), clock)
    result = await vault.initialize(InitRequest(3, 2), _setup)
    for key in result.keys[:2]:
        await vault.submit_unseal(key)
    return vault, [decode_share(k) for k in result.keys], clock


def _ceremony(
    vault: Vault, token_length: int = 28, expiry_seconds: float | None = None
) -> StoredRootGeneration:
    """The platform's root-token generation of ``vault`` as ``sys/generate-root`` builds it."""
    return StoredRootGeneration(
        PlatformSubject(vault), token_length=token_length, expiry_seconds=expiry_seconds
    )


async def _started(ceremony: StoredRootGeneration) -> bool:
    """Whether an attempt is collecting shares (COLLECTING; ``False``: IDLE)."""
    started: bool = (await ceremony.status())["started"]
    return started


async def _issued(vault: Vault) -> object:
    keys = vault.keys
    assert keys is not None

    async def read(tx: Transaction) -> object:
        return await keys.records(tx, "sys").get_json("issued")

    return await transactional(vault.store, read)


def test_token_encoding_is_vaults_unpadded_xor() -> None:
    otp = "0123456789abcdefghijklmnopqr"
    encoded = encode_token(TOKEN, otp)
    assert "=" not in encoded and len(encoded) == 38  # 28 bytes -> 38 base64 characters without padding
    raw = base64.b64decode(encoded + "==")
    assert bytes(a ^ b for a, b in zip(raw, otp.encode(), strict=True)) == TOKEN.encode()
    assert decode_token(encoded, otp) == TOKEN
    # OpenBao's sys/decode-token answers "abc" for these inputs (checked against bao 2.7).
    assert decode_token("AAAA", "abc") == "abc"
    with pytest.raises(InvalidRequest, match="incorrect length"):
        encode_token(TOKEN, otp[:-1])
    with pytest.raises(InvalidRequest, match="not equivalent"):
        decode_token(encoded, otp[:-1])
    with pytest.raises(InvalidRequest, match="base64"):
        decode_token("!!!", otp)


async def test_otp_flow_issues_one_token_in_the_quorum_transaction() -> None:
    vault, shares, _ = await _vault()
    ceremony = _ceremony(vault)
    issue = Issuer()
    status = await ceremony.status()
    assert status == {
        "started": False, "nonce": "", "progress": 0, "required": 2, "complete": False,
        "encoded_token": "", "encoded_root_token": "", "pgp_fingerprint": "", "otp": "", "otp_length": 28,
    }
    otp = await ceremony.start()
    assert len(otp) == 28 and set(otp) <= set(string.ascii_letters + string.digits)
    status = await ceremony.status()
    assert status["started"] and status["otp"] == "" and status["nonce"]
    nonce = status["nonce"]

    body = await ceremony.submit(shares[2], nonce, issue)
    assert body["progress"] == 1 and not body["complete"] and body["encoded_token"] == ""
    assert issue.calls == 0
    body = await ceremony.submit(shares[0], nonce, issue)
    assert body["complete"] and body["progress"] == 2 and body["nonce"] == nonce
    assert body["encoded_token"] == body["encoded_root_token"]
    assert decode_token(body["encoded_token"], otp) == TOKEN
    assert await _issued(vault) == {"n": 1}
    assert not await _started(ceremony)


async def test_start_rules() -> None:
    vault, _, _ = await _vault()
    ceremony = _ceremony(vault)
    with pytest.raises(InvalidRequest, match=r"^OTP string has incorrect length$"):
        await ceremony.start(otp="too-short")
    with pytest.raises(InvalidRequest, match="only one of otp or pgp_key"):
        await ceremony.start(otp="x" * 28, pgp_key="abc")
    with pytest.raises(InvalidRequest, match="PGP key"):
        await ceremony.start(pgp_key="not base64!")
    assert not await _started(ceremony)
    assert await ceremony.start(otp="x" * 28) == ""
    with pytest.raises(InvalidRequest, match=r"^root generation already in progress$"):
        await ceremony.start()
    await ceremony.cancel()
    assert not await _started(ceremony)
    assert await ceremony.start() != ""


async def test_wrong_quorum_resets_progress_and_issues_nothing() -> None:
    vault, shares, _ = await _vault()
    ceremony = _ceremony(vault)
    issue = Issuer()
    with pytest.raises(InvalidRequest, match=r"^no root generation in progress$"):
        await ceremony.submit(shares[0], "", issue)
    otp = await ceremony.start()
    nonce = (await ceremony.status())["nonce"]
    with pytest.raises(InvalidRequest, match=f'root generation operation is "{nonce}"$'):
        await ceremony.submit(shares[0], "other", issue)
    await ceremony.submit(shares[0], nonce, issue)
    with pytest.raises(InvalidRequest, match="already been provided during this generation operation"):
        await ceremony.submit(shares[0], nonce, issue)
    with pytest.raises(InvalidShare, match=r"^root generation aborted: root key verification failed"):
        # Same x-coordinate as a real share, altered value: combines, to the wrong key.
        await ceremony.submit(bytes([shares[1][0] ^ 0x5A]) + shares[1][1:], nonce, issue)
    assert issue.calls == 0 and await _issued(vault) is None
    status = await ceremony.status()
    assert status["started"] and status["nonce"] == nonce and status["progress"] == 0
    await ceremony.submit(shares[1], nonce, issue)
    body = await ceremony.submit(shares[2], nonce, issue)
    assert decode_token(body["encoded_token"], otp) == TOKEN


async def test_issuer_failure_commits_nothing_and_keeps_the_attempt() -> None:
    vault, shares, _ = await _vault()
    ceremony = _ceremony(vault, token_length=30)
    await ceremony.start()
    nonce = (await ceremony.status())["nonce"]
    await ceremony.submit(shares[0], nonce, Issuer())
    # A 28-character token cannot be XORed with a 30-character OTP: the transaction must not commit.
    with pytest.raises(InvalidRequest, match="incorrect length"):
        await ceremony.submit(shares[1], nonce, Issuer())
    assert await _issued(vault) is None
    # Still COLLECTING: the failed step committed nothing, not even its share.
    status = await ceremony.status()
    assert status["started"] and status["nonce"] == nonce and status["progress"] == 1


async def test_expiry_sealed_and_uninitialised() -> None:
    vault, shares, clock = await _vault()
    ceremony = _ceremony(vault, expiry_seconds=60)
    await ceremony.start()
    clock.advance(59)
    assert await _started(ceremony)
    clock.advance(2)
    assert not await _started(ceremony)
    await ceremony.start()
    vault.seal()
    with pytest.raises(Sealed):
        await ceremony.status()
    with pytest.raises(Sealed):
        await ceremony.submit(shares[0], "", Issuer())
    fresh = _ceremony(Vault(MemoryStore(), clock))
    with pytest.raises(NotInitialized, match="server is not yet initialized"):
        await fresh.status()
