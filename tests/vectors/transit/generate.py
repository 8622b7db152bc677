"""Make tests/vectors/transit/ciphertexts.json: transit ciphertext test vectors, independently of strongroom.

Nothing here imports strongroom. The layouts of docs/spec/transit-ciphertext.md are implemented again
from their definitions, with the primitives taken as low as practical:

* HKDF-SHA256 (RFC 5869) and the legacy SP 800-108 counter KDF are written out with :mod:`hmac`;
* AES-GCM and ChaCha20-Poly1305 come from ``cryptography``; XChaCha20-Poly1305 is HChaCha20 (written out
  below, checked against draft-irtf-cfrg-xchacha-03 section 2.2.1) followed by ChaCha20-Poly1305 with the
  nonce ``0^4 || nonce[16:24]`` (strongroom itself uses libsodium's construction);
* RSA-OAEP (SHA-256, MGF1-SHA-256, empty label) is encoded by hand with a fixed seed (RFC 8017 section
  7.1.1) so the vector is fully determined, and the RSA key is derived deterministically from a label.

Three kinds of vectors come out:

``published``
    AEAD test vectors from the GCM specification, RFC 8439 and the XChaCha20 draft, put into the transit
    layout (the nonce prepended, ``vault:v1:``, base64).
``independent``
    fixed key, nonce (or OAEP seed), plaintext, context and associated data, computed here. Running the
    script again reproduces them byte for byte.
``openbao``
    made by a real ``bao server -dev`` (``--openbao``): a key created ``exportable``, exported with
    ``export/encryption-key``, data encrypted there. Random nonces, so each run yields new ones; the
    vectors from the last run are kept unless ``--openbao`` is given. Each is checked here by the
    independent implementation before it is recorded (decrypted; convergent ones also re-encrypted).

Usage::

    .venv/bin/python tests/vectors/transit/generate.py            # independent vectors, keep OpenBao's
    .venv/bin/python tests/vectors/transit/generate.py --openbao  # also redo OpenBao's (needs .venv/bin/bao)
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

HERE = Path(__file__).resolve().parent
OUT = HERE / "ciphertexts.json"

KDF_COUNTER = "hmac-sha256-counter"
KDF_HKDF = "hkdf_sha256"
AEAD_TYPES = ("aes128-gcm96", "aes256-gcm96", "chacha20-poly1305", "xchacha20-poly1305")
RSA_TYPES = ("rsa-2048", "rsa-3072", "rsa-4096")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def unb64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


# -- key derivation --------------------------------------------------------------------------------------


def hkdf_sha256(key: bytes, info: bytes, length: int) -> bytes:
    """RFC 5869 with no salt (a zero-filled HashLen salt) and ``info`` = the transit context."""
    prk = hmac.new(b"\x00" * 32, key, hashlib.sha256).digest()
    out, block, counter = b"", b"", 1
    while len(out) < length:
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        out += block
        counter += 1
    return out[:length]


def counter_kdf(key: bytes, context: bytes) -> bytes:
    """Vault's legacy KDF: SP 800-108 counter mode, HMAC-SHA256 PRF, 256 bits, one round (counter 0)."""
    return hmac.new(key, struct.pack(">I", 0) + context + struct.pack(">I", 256), hashlib.sha256).digest()


def enc_bytes(key_type: str) -> int:
    return 16 if key_type == "aes128-gcm96" else 32


def nonce_bytes(key_type: str) -> int:
    return 24 if key_type == "xchacha20-poly1305" else 12


def derive(key: bytes, context: bytes, kdf: str, length: int) -> bytes:
    if kdf == KDF_HKDF:
        return hkdf_sha256(key, context, length)
    return counter_kdf(key, context)  # always 32 bytes, whatever was asked


# -- AEADs -------------------------------------------------------------------------------------------------


def _rotl(v: int, n: int) -> int:
    return ((v << n) & 0xFFFFFFFF) | (v >> (32 - n))


def _quarter(s: list[int], a: int, b: int, c: int, d: int) -> None:
    s[a] = (s[a] + s[b]) & 0xFFFFFFFF
    s[d] = _rotl(s[d] ^ s[a], 16)
    s[c] = (s[c] + s[d]) & 0xFFFFFFFF
    s[b] = _rotl(s[b] ^ s[c], 12)
    s[a] = (s[a] + s[b]) & 0xFFFFFFFF
    s[d] = _rotl(s[d] ^ s[a], 8)
    s[c] = (s[c] + s[d]) & 0xFFFFFFFF
    s[b] = _rotl(s[b] ^ s[c], 7)


def hchacha20(key: bytes, nonce16: bytes) -> bytes:
    """HChaCha20 (draft-irtf-cfrg-xchacha-03 section 2.2): 20 ChaCha rounds, words 0-3 and 12-15 out."""
    state = [0x61707865, 0x3320646E, 0x79622D32, 0x6B206574]
    state += list(struct.unpack("<8I", key)) + list(struct.unpack("<4I", nonce16))
    for _ in range(10):
        _quarter(state, 0, 4, 8, 12)
        _quarter(state, 1, 5, 9, 13)
        _quarter(state, 2, 6, 10, 14)
        _quarter(state, 3, 7, 11, 15)
        _quarter(state, 0, 5, 10, 15)
        _quarter(state, 1, 6, 11, 12)
        _quarter(state, 2, 7, 8, 13)
        _quarter(state, 3, 4, 9, 14)
    return struct.pack("<8I", *(state[0:4] + state[12:16]))


def _check_hchacha20() -> None:
    key = bytes(range(32))
    nonce = bytes.fromhex("000000090000004a0000000031415927")
    expected = "82413b4227b27bfed30e42508a877d73a0f9e4d58a74a853c12ec41326d3ecdc"
    assert hchacha20(key, nonce).hex() == expected, "HChaCha20 does not match the draft's test vector"


def aead_seal(key_type: str, key: bytes, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """``ciphertext || tag`` (without the nonce)."""
    if key_type == "xchacha20-poly1305":
        sub = hchacha20(key, nonce[:16])
        return ChaCha20Poly1305(sub).encrypt(b"\x00" * 4 + nonce[16:], plaintext, aad or None)
    if key_type == "chacha20-poly1305":
        return ChaCha20Poly1305(key).encrypt(nonce, plaintext, aad or None)
    return AESGCM(key).encrypt(nonce, plaintext, aad or None)


def aead_open(key_type: str, key: bytes, nonce: bytes, sealed: bytes, aad: bytes) -> bytes:
    if key_type == "xchacha20-poly1305":
        sub = hchacha20(key, nonce[:16])
        return ChaCha20Poly1305(sub).decrypt(b"\x00" * 4 + nonce[16:], sealed, aad or None)
    if key_type == "chacha20-poly1305":
        return ChaCha20Poly1305(key).decrypt(nonce, sealed, aad or None)
    return AESGCM(key).decrypt(nonce, sealed, aad or None)


def symmetric_encrypt(v: dict[str, Any], nonce: bytes | None) -> tuple[bytes, dict[str, str]]:
    """The raw blob for vector ``v`` and the intermediate values worth recording.

    ``nonce`` is the random nonce for non-convergent keys; convergent keys compute theirs.
    """
    kt, key = v["type"], unb64(v["key"])
    context, aad, plaintext = unb64(v["context"]), unb64(v["associated_data"]), unb64(v["plaintext"])
    extra: dict[str, str] = {}
    if v["derived"]:
        want = enc_bytes(kt) + (32 if v["convergent_version"] else 0)
        derived = derive(key, context, v["kdf"], want)
        extra["derived_key"] = derived.hex()
        enc_key, hmac_part = derived[: enc_bytes(kt)], derived[enc_bytes(kt):]
    else:
        enc_key, hmac_part = key, b""
    if v["convergent_version"]:
        assert v["convergent_version"] == 3 and len(hmac_part) == 32
        nonce = hmac.new(hmac_part, plaintext, hashlib.sha256).digest()[: nonce_bytes(kt)]
    assert nonce is not None and len(nonce) == nonce_bytes(kt)
    extra["nonce"] = nonce.hex()
    return nonce + aead_seal(kt, enc_key, nonce, plaintext, aad), extra


def symmetric_decrypt(v: dict[str, Any], blob: bytes) -> bytes:
    kt, key = v["type"], unb64(v["key"])
    if v["derived"]:
        key = derive(key, unb64(v["context"]), v["kdf"], enc_bytes(kt))[: enc_bytes(kt)]
    n = nonce_bytes(kt)
    return aead_open(kt, key, blob[:n], blob[n:], unb64(v["associated_data"]))


# -- RSA ---------------------------------------------------------------------------------------------------


def _stream(label: bytes, n: int) -> bytes:
    out, i = b"", 0
    while len(out) < n:
        out += hashlib.sha512(label + struct.pack(">I", i)).digest()
        i += 1
    return out[:n]


_SMALL_PRIMES = [p for p in range(3, 400) if all(p % q for q in range(2, int(p**0.5) + 1))]


def _probably_prime(n: int) -> bool:
    if any(n % p == 0 for p in _SMALL_PRIMES):
        return n in _SMALL_PRIMES
    d, r = n - 1, 0
    while d % 2 == 0:
        d, r = d // 2, r + 1
    for a in _SMALL_PRIMES[:40]:  # fixed bases: deterministic, error far below 2^-80
        x = pow(a, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(r - 1):
            x = pow(x, 2, n)
            if x == n - 1:
                break
        else:
            return False
    return True


def _prime(label: bytes, bits: int) -> int:
    n = int.from_bytes(_stream(label, bits // 8), "big") | (3 << (bits - 2)) | 1
    while not (_probably_prime(n) and (n - 1) % 65537):
        n += 2
    return n


def deterministic_rsa(label: str, bits: int) -> rsa.RSAPrivateKey:
    """An RSA key whose primes are the first primes after hash-stream values of ``label``."""
    p = _prime(f"{label}/p".encode(), bits // 2)
    q = _prime(f"{label}/q".encode(), bits // 2)
    e = 65537
    d = pow(e, -1, (p - 1) * (q - 1))
    public = rsa.RSAPublicNumbers(e, p * q)
    numbers = rsa.RSAPrivateNumbers(
        p, q, d, rsa.rsa_crt_dmp1(d, p), rsa.rsa_crt_dmq1(d, q), rsa.rsa_crt_iqmp(p, q), public
    )
    return numbers.private_key()


def _mgf1(seed: bytes, length: int) -> bytes:
    out, i = b"", 0
    while len(out) < length:
        out += hashlib.sha256(seed + struct.pack(">I", i)).digest()
        i += 1
    return out[:length]


def oaep_encrypt(public: rsa.RSAPublicKey, message: bytes, seed: bytes) -> bytes:
    """RSAES-OAEP-ENCRYPT (RFC 8017 7.1.1) with SHA-256, MGF1-SHA-256, empty label and the given seed."""
    numbers = public.public_numbers()
    k = (numbers.n.bit_length() + 7) // 8
    h = 32
    assert len(seed) == h and len(message) <= k - 2 * h - 2
    db = hashlib.sha256(b"").digest() + b"\x00" * (k - len(message) - 2 * h - 2) + b"\x01" + message
    masked_db = bytes(a ^ b for a, b in zip(db, _mgf1(seed, k - h - 1), strict=True))
    masked_seed = bytes(a ^ b for a, b in zip(seed, _mgf1(masked_db, h), strict=True))
    em = b"\x00" + masked_seed + masked_db
    return pow(int.from_bytes(em, "big"), numbers.e, numbers.n).to_bytes(k, "big")


OAEP = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)


def _pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def rsa_decrypt(v: dict[str, Any], blob: bytes) -> bytes:
    key = serialization.load_pem_private_key(v["key_pem"].encode(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return key.decrypt(blob, OAEP)


# -- vectors -----------------------------------------------------------------------------------------------


def split(ciphertext: str) -> tuple[int, bytes]:
    assert ciphertext.startswith("vault:v")
    version, payload = ciphertext[len("vault:v"):].split(":", 1)
    return int(version), unb64(payload)


def check(v: dict[str, Any]) -> None:
    """Decrypt ``v`` with this module's implementation; re-encrypt the deterministic ones."""
    version, blob = split(v["ciphertext"])
    assert version == v["version"], v["name"]
    if v["type"] in RSA_TYPES:
        assert rsa_decrypt(v, blob) == unb64(v["plaintext"]), v["name"]
        return
    assert symmetric_decrypt(v, blob) == unb64(v["plaintext"]), v["name"]
    if v["deterministic"]:
        again, _ = symmetric_encrypt(v, None)
        assert again == blob, v["name"]


def vector(name: str, key_type: str, *, key: bytes, plaintext: bytes, context: bytes = b"",
           aad: bytes = b"", derived: bool = False, kdf: str = KDF_HKDF, convergent: bool = False,
           version: int = 1, nonce: bytes | None = None, usage: str = "encrypt") -> dict[str, Any]:
    v: dict[str, Any] = {
        "name": name, "source": "independent", "usage": usage, "type": key_type, "version": version,
        "key": b64(key), "derived": derived, "kdf": kdf if derived else "",
        "convergent_version": 3 if convergent else 0, "context": b64(context),
        "associated_data": b64(aad), "plaintext": b64(plaintext), "deterministic": convergent,
    }
    blob, extra = symmetric_encrypt(v, nonce)
    v.update(extra)
    v["ciphertext"] = f"vault:v{version}:{b64(blob)}"
    return v


SUNSCREEN = (
    b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, "
    b"sunscreen would be it."
)

# Published AEAD vectors (key, nonce, aad, plaintext, ciphertext||tag), each put in a transit ciphertext.
PUBLISHED = [
    (
        "aes256-gcm96: GCM spec (McGrew-Viega) test case 16",
        "aes256-gcm96",
        "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
        "cafebabefacedbaddecaf888",
        "feedfacedeadbeeffeedfacedeadbeefabaddad2",
        "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b1"
        "6aedf5aa0de657ba637b39",
        "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5"
        "f61e6393ba7a0abcc9f662" "76fc6ece0f4e1768cddf8853bb2d551b",
    ),
    (
        "chacha20-poly1305: RFC 8439 section 2.8.2",
        "chacha20-poly1305",
        "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f",
        "070000004041424344454647",
        "50515253c0c1c2c3c4c5c6c7",
        SUNSCREEN.hex(),
        "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d63dbea45e8ca9671282fafb69da92728b1a"
        "71de0a9e060b2905d6a5b67ecd3b3692ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc3ff4"
        "def08e4b7a9de576d26586cec64b6116" "1ae10b594f09e26a7e902ecbd0600691",
    ),
    (
        "xchacha20-poly1305: draft-irtf-cfrg-xchacha-03 appendix A.3.1",
        "xchacha20-poly1305",
        "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f",
        "404142434445464748494a4b4c4d4e4f5051525354555657",
        "50515253c0c1c2c3c4c5c6c7",
        SUNSCREEN.hex(),
        "bd6d179d3e83d43b9576579493c0e939572a1700252bfaccbed2902c21396cbb731c7f1b0b4aa6440bf3a82f4eda7e39ae"
        "64c6708c54c216cb96b72e1213b4522f8c9ba40db5d945b11b69b982c1bb9e3f3fac2bc369488f76b2383565d3fff921f9"
        "664c97637da9768812f615c68b13b52e" "c0875924c1c7987947deafd8780acf49",
    ),
]


def published() -> list[dict[str, Any]]:
    """The published vectors as transit ciphertexts (``vault:v1:`` + nonce || ciphertext || tag)."""
    out = []
    for name, kt, key, nonce, aad, plaintext, sealed in PUBLISHED:
        v = vector(name, kt, key=bytes.fromhex(key), plaintext=bytes.fromhex(plaintext),
                   aad=bytes.fromhex(aad), nonce=bytes.fromhex(nonce))
        assert v["ciphertext"] == "vault:v1:" + b64(bytes.fromhex(nonce + sealed)), name
        v["source"] = "published"
        out.append(v)
    return out


def independent() -> list[dict[str, Any]]:
    _check_hchacha20()
    assert hkdf_sha256(b"\x0b" * 22, b"", 42).hex() == (  # RFC 5869 test case 3 (no salt, no info)
        "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8"
    )
    k32 = bytes(range(0x00, 0x20))
    k16 = bytes(range(0x40, 0x50))
    n12 = bytes.fromhex("cafebabefacedbaddecaf888")
    n24 = bytes(range(0x40, 0x58))
    fox = b"The quick brown fox jumps over the lazy dog"
    ctx = b"tenant-42/customer-7"
    aad = b"record-id:1234"
    out = [
        vector("aes256-gcm96", "aes256-gcm96", key=k32, plaintext=fox, nonce=n12),
        vector("aes256-gcm96 with associated_data", "aes256-gcm96", key=k32, plaintext=fox, aad=aad, nonce=n12),
        vector("aes256-gcm96 empty plaintext, version 7", "aes256-gcm96", key=k32, plaintext=b"", nonce=n12,
               version=7),
        vector("aes128-gcm96", "aes128-gcm96", key=k16, plaintext=fox, nonce=n12),
        vector("chacha20-poly1305", "chacha20-poly1305", key=k32, plaintext=fox, nonce=n12),
        vector("chacha20-poly1305 with associated_data", "chacha20-poly1305", key=k32, plaintext=fox, aad=aad,
               nonce=n12),
        vector("xchacha20-poly1305", "xchacha20-poly1305", key=k32, plaintext=fox, nonce=n24),
        vector("xchacha20-poly1305 with associated_data", "xchacha20-poly1305", key=k32, plaintext=fox,
               aad=aad, nonce=n24),
    ]
    for kt in AEAD_TYPES:
        key = k16 if kt == "aes128-gcm96" else k32
        n = n24 if kt == "xchacha20-poly1305" else n12
        out.append(vector(f"{kt} derived (HKDF)", kt, key=key, plaintext=fox, context=ctx, derived=True,
                          nonce=n))
        out.append(vector(f"{kt} convergent v3", kt, key=key, plaintext=fox, context=ctx, derived=True,
                          convergent=True))
    out.append(vector("aes256-gcm96 convergent v3 with associated_data", "aes256-gcm96", key=k32,
                      plaintext=fox, context=ctx, aad=aad, derived=True, convergent=True))
    out.append(vector("aes256-gcm96 convergent v3, other context", "aes256-gcm96", key=k32,
                      plaintext=fox, context=b"tenant-43/customer-7", derived=True, convergent=True))
    for kt in ("aes256-gcm96", "chacha20-poly1305", "xchacha20-poly1305"):
        n = n24 if kt == "xchacha20-poly1305" else n12
        out.append(vector(f"{kt} derived, legacy counter KDF", kt, key=k32, plaintext=fox, context=ctx,
                          derived=True, kdf=KDF_COUNTER, nonce=n))
    out.append(vector("datakey/plaintext bits=256 under aes256-gcm96", "aes256-gcm96", key=k32,
                      plaintext=bytes(range(0x80, 0xA0)), nonce=n12, usage="datakey"))
    private = deterministic_rsa("strongroom transit vector rsa-2048", 2048)
    seed = bytes(range(0xA0, 0xC0))
    blob = oaep_encrypt(private.public_key(), fox, seed)
    assert private.decrypt(blob, OAEP) == fox
    out.append({
        "name": "rsa-2048 RSA-OAEP SHA-256", "source": "independent", "usage": "encrypt", "type": "rsa-2048",
        "version": 1, "key_pem": _pem(private), "derived": False, "kdf": "", "convergent_version": 0,
        "context": "", "associated_data": "", "plaintext": b64(fox), "deterministic": False,
        "nonce": seed.hex(), "ciphertext": f"vault:v1:{b64(blob)}",
    })
    for v in out:
        check(v)
    return out


# -- OpenBao ----------------------------------------------------------------------------------------------


class Bao:
    """A ``bao server -dev`` child process with transit mounted."""

    def __init__(self, binary: str) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.proc = subprocess.Popen(
            [binary, "server", "-dev", "-dev-root-token-id=root", f"-dev-listen-address=127.0.0.1:{port}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
        )
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{port}/v1/", headers={"X-Vault-Token": "root"})
        for _ in range(300):
            try:
                self.version = self.http.get("sys/seal-status").json()["version"]
                break
            except httpx.HTTPError:
                time.sleep(0.05)
        self.call("POST", "sys/mounts/transit", {"type": "transit"})

    def call(self, method: str, path: str, body: Any = None) -> Any:
        r = self.http.request(method, path, json=body)
        assert r.status_code in (200, 204), (path, r.status_code, r.text)
        return r.json()["data"] if r.content else None

    def stop(self) -> None:
        os.kill(self.proc.pid, signal.SIGTERM)
        self.proc.wait(10)


def _from_openbao(bao: Bao, name: str, key_type: str, *, context: bytes = b"", aad: bytes = b"",
                  derived: bool = False, convergent: bool = False, plaintext: bytes, version: int,
                  usage: str = "encrypt", kdf: str = KDF_HKDF, ciphertext: str = "") -> dict[str, Any]:
    body: dict[str, Any] = {"plaintext": b64(plaintext), "key_version": version}
    if context:
        body["context"] = b64(context)
    if aad:
        body["associated_data"] = b64(aad)
    if not ciphertext:
        ciphertext = bao.call("POST", f"transit/encrypt/{name}", body)["ciphertext"]
    exported = bao.call("GET", f"transit/export/encryption-key/{name}/{version}")["keys"][str(version)]
    v: dict[str, Any] = {
        "name": f"{key_type}{' ' if usage == 'encrypt' else ' ' + usage + ' '}from OpenBao {bao.version}"
                + (" derived" if derived else "") + (" convergent v3" if convergent else "")
                + (" legacy KDF" if kdf == KDF_COUNTER and derived else "")
                + (" with associated_data" if aad else "") + (f", version {version}" if version > 1 else ""),
        "source": f"openbao {bao.version}", "usage": usage, "type": key_type, "version": version,
        "derived": derived, "kdf": kdf if derived else "", "convergent_version": 3 if convergent else 0,
        "context": b64(context), "associated_data": b64(aad), "plaintext": b64(plaintext),
        "deterministic": convergent, "ciphertext": ciphertext,
    }
    if key_type in RSA_TYPES:
        v["key_pem"] = exported
    else:
        v["key"] = exported
    check(v)
    return v


def openbao(binary: str) -> list[dict[str, Any]]:
    bao = Bao(binary)
    out: list[dict[str, Any]] = []
    text = b"attack at dawn, bring the transit vectors"
    ctx = b"openbao-context"
    aad = b"openbao-aad"
    try:
        for kt in (*AEAD_TYPES, *RSA_TYPES):
            bao.call("POST", f"transit/keys/{kt}", {"type": kt, "exportable": True})
            out.append(_from_openbao(bao, kt, kt, plaintext=text, version=1))
            if kt in AEAD_TYPES:
                out.append(_from_openbao(bao, kt, kt, plaintext=text, aad=aad, version=1))
                name = f"{kt}-derived"
                bao.call("POST", f"transit/keys/{name}", {"type": kt, "exportable": True, "derived": True})
                out.append(_from_openbao(bao, name, kt, plaintext=text, context=ctx, derived=True, version=1))
                name = f"{kt}-convergent"
                bao.call("POST", f"transit/keys/{name}",
                         {"type": kt, "exportable": True, "derived": True, "convergent_encryption": True})
                out.append(_from_openbao(bao, name, kt, plaintext=text, context=ctx, derived=True,
                                         convergent=True, version=1))
        # A rotated key: the version is in the prefix and selects the key.
        bao.call("POST", "transit/keys/aes256-gcm96/rotate")
        out.append(_from_openbao(bao, "aes256-gcm96", "aes256-gcm96", plaintext=text, version=2))
        # A data key: an ordinary ciphertext of random key bytes.
        dk = bao.call("POST", "transit/datakey/plaintext/aes256-gcm96", {"bits": 512})
        out.append(_from_openbao(bao, "aes256-gcm96", "aes256-gcm96", plaintext=unb64(dk["plaintext"]),
                                 version=2, usage="datakey", ciphertext=dk["ciphertext"]))
        # The legacy counter KDF: only keys from before Vault 0.6.2 have it, so restore a backup that says
        # kdf 0 (OpenBao restores it as it is and derives with that KDF).
        for kt in ("aes256-gcm96", "chacha20-poly1305", "xchacha20-poly1305"):
            name = f"{kt}-derived"
            bao.call("POST", f"transit/keys/{name}/config", {"allow_plaintext_backup": True})
            backup = json.loads(unb64(bao.call("GET", f"transit/backup/{name}")["backup"]))
            backup["policy"]["kdf"] = 0
            backup["policy"]["name"] = f"{name}-legacy"
            bao.call("POST", f"transit/restore/{name}-legacy",
                     {"backup": b64(json.dumps(backup).encode())})
            out.append(_from_openbao(bao, f"{name}-legacy", kt, plaintext=text, context=ctx, derived=True,
                                     kdf=KDF_COUNTER, version=1))
    finally:
        bao.stop()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--openbao", action="store_true", help="regenerate the OpenBao vectors too")
    parser.add_argument("--bao", default=str(Path(sys.executable).parent / "bao"), help="bao binary")
    args = parser.parse_args()
    previous = json.loads(OUT.read_text())["vectors"] if OUT.exists() else []
    theirs = [v for v in previous if v["source"].startswith("openbao")]
    if args.openbao:
        theirs = openbao(args.bao)
    for v in theirs:
        check(v)
    doc = {
        "description": "Transit ciphertext vectors; layouts in docs/spec/transit-ciphertext.md. Made by "
                       "tests/vectors/transit/generate.py (independent) and by OpenBao (source 'openbao X').",
        "fields": {
            "key": "base64 of the version's key bytes, as export/encryption-key shows it",
            "key_pem": "RSA private key (PEM) for rsa-* types",
            "kdf": "'hkdf_sha256' or 'hmac-sha256-counter' for derived keys, else ''",
            "context, associated_data, plaintext": "base64",
            "nonce": "hex; the AEAD nonce (or the OAEP seed for RSA) used by independent vectors",
            "derived_key": "hex; the per-context key (enc part || hmac part for convergent keys)",
            "deterministic": "true when encrypting the plaintext again must give the same ciphertext",
            "usage": "'encrypt' or 'datakey' (a data key is an ordinary ciphertext of random bytes)",
        },
        "vectors": published() + independent() + theirs,
    }
    OUT.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {len(doc['vectors'])} vectors to {OUT}")


if __name__ == "__main__":
    main()
