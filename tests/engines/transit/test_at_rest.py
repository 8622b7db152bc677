"""What transit stores, seen from inside the barrier: no key material anywhere but under the KEK.

Every storage record is barrier-encrypted; this test removes that layer (as someone holding the keyring
could) and looks for every secret of every key, the BYOK wrapping key included: the raw bytes, their
standard base64 and hex, the private scalars of asymmetric keys. Policies (JSON) must hold none of them;
material records hold only KEK ciphertext. Plaintexts and data keys that went through the engine are not
stored at all.
"""

from __future__ import annotations

import base64
import contextlib

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from strongroom.crypto.transit.material import KeyMaterial
from strongroom.errors import CorruptRecord
from strongroom.storage.memory import MemoryStore
from tests.engines.transit.conftest import b64, unb64
from tests.support.vault import start_vault

TYPES = ["aes128-gcm96", "aes256-gcm96", "chacha20-poly1305", "xchacha20-poly1305", "ed25519", "ecdsa-p256",
         "ecdsa-p384", "ecdsa-p521", "rsa-2048", "hmac"]


def _int_bytes(n: int) -> bytes:
    return n.to_bytes((n.bit_length() + 7) // 8, "big")


def _secrets(material: KeyMaterial) -> list[bytes]:
    """Byte strings of ``material`` that must never be stored outside the KEK."""
    found = [material.reveal_key(), material.reveal_hmac_key()]
    private = material.private_key
    if isinstance(private, rsa.RSAPrivateKey):
        numbers = private.private_numbers()
        found += [_int_bytes(numbers.d), _int_bytes(numbers.p), _int_bytes(numbers.q)]
    elif isinstance(private, ec.EllipticCurvePrivateKey):
        found.append(_int_bytes(private.private_numbers().private_value))
    elif isinstance(private, ed25519.Ed25519PrivateKey):
        found.append(private.private_bytes_raw())
    if private is not None:
        found.append(private.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    # Forms a careless encoder would write: raw, base64, hex; a 16-byte prefix catches partial copies.
    forms: list[bytes] = []
    for secret in (s for s in found if len(s) >= 16):
        forms += [secret, secret[:16], base64.b64encode(secret), base64.b64encode(secret[:15]), secret.hex().encode()]
    return forms


async def test_no_secret_is_stored_outside_the_kek() -> None:
    store = MemoryStore()
    vault = await start_vault(store)
    await vault.ok("POST", "sys/mounts/transit", json={"type": "transit"})
    await vault.ok("GET", "transit/wrapping_key")
    plaintexts = [b"attack at dawn, the plaintext!"]
    for kt in TYPES:
        await vault.ok("POST", f"transit/keys/{kt}", json={"type": kt})
        await vault.ok("POST", f"transit/keys/{kt}/rotate")
    for name in ("aes256-gcm96", "xchacha20-poly1305", "rsa-2048"):
        await vault.ok("POST", f"transit/encrypt/{name}", json={"plaintext": b64(plaintexts[0])})
        body = await vault.ok("POST", f"transit/datakey/plaintext/{name}", json={"bits": 512})
        plaintexts.append(unb64(body["data"]["plaintext"]))
    keys = vault.node.vault("").keys
    assert keys is not None
    materials = [m for m in keys.engine_cache.values() if isinstance(m, KeyMaterial)]
    # Every version of every key (2 each) and the wrapping key's one version.
    assert len(materials) == 2 * len(TYPES) + 1
    assert any(m.key_type.value == "rsa-4096" for m in materials)
    forbidden = [form for m in materials for form in _secrets(m)]
    forbidden += plaintexts + [base64.b64encode(p) for p in plaintexts]

    async with store.transaction() as tx:
        rows = await tx.range(b"", b"\xff" * 16)
    inside = []
    for k, v in rows:
        with contextlib.suppress(CorruptRecord):  # records of the seal, not under this namespace's barrier
            inside.append(keys.barrier.decrypt(k, v))
    policies = [p for p in inside if p.startswith(b'{"name"') and b'"key_id":' in p]
    assert len(policies) == len(TYPES) + 1
    for record in [*inside, *(v for _, v in rows)]:
        hits = [f for f in forbidden if f in record]
        assert not hits, f"a secret ({len(hits[0])} bytes) is stored outside the KEK"
