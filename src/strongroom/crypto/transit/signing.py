"""Transit signatures, byte-compatible with Vault's ``keysutil`` (``SignWithOptions`` / ``VerifySignatureWithOptions``).

What is signed, per key type (``message`` is the caller's decoded ``input``):

* Ed25519: pure Ed25519 (RFC 8032) over ``message`` itself; the hash algorithm, ``prehashed``, the RSA
  options are ignored, as in Vault. A ``derived`` key signs with the key Vault derives for the context.
* ECDSA P-256/384/521: over ``H(message)``, or over ``message`` when ``prehashed`` (any length: it is
  truncated to the curve order's bit length, as Go and OpenSSL both do). ``asn1`` marshaling is the DER
  ``SEQUENCE {r, s}``; ``jws`` is ``r || s``, each left-padded to the curve size (32, 48, 66 bytes).
* RSA: PSS (default; MGF1 with the same hash) or PKCS#1 v1.5 over ``H(message)`` or a prehashed digest of
  exactly the hash's size. ``none`` (prehashed PKCS#1 v1.5 only) signs the caller's bytes without a
  DigestInfo prefix, Go's ``SignPKCS1v15(hash=0)``.

``salt_length`` uses Go's numbers: :data:`SALT_AUTO` (0: as long as possible when signing, any length when
verifying), :data:`SALT_HASH` (-1: the hash size) or an explicit length; Vault's bounds are -1 to
``ceil((bits-1)/8) - 2 - hash size``.

Verification never raises for a wrong signature: it returns ``False``. It raises :class:`InvalidRequest`
only where Vault reports a user error (an ECDSA signature that is not DER, a bad salt length).
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa, utils

from strongroom.crypto.transit.derive import MISSING_CONTEXT, derive_ed25519
from strongroom.crypto.transit.digest import DEFAULT, HashAlgorithm, lookup
from strongroom.crypto.transit.keytypes import KeyType
from strongroom.crypto.transit.material import KeyMaterial
from strongroom.errors import InvalidRequest

ASN1 = "asn1"
JWS = "jws"
MARSHALINGS = frozenset((ASN1, JWS))
PSS = "pss"
PKCS1V15 = "pkcs1v15"
SALT_AUTO = 0
SALT_HASH = -1

_CURVE_BYTES = {KeyType.ECDSA_P256: 32, KeyType.ECDSA_P384: 48, KeyType.ECDSA_P521: 66}
_DERIVED_CACHE_LIMIT = 256
"""Derived Ed25519 keys kept per key version (then all are dropped): a fixed-size entry each, see
:func:`_ed25519_key`."""


@dataclass(frozen=True, slots=True)
class SigningOptions:
    """How to sign or verify (Vault's ``SigningOptions``)."""

    hash: HashAlgorithm
    prehashed: bool = False
    signature_algorithm: str = ""
    """RSA scheme: ``pss`` (also when empty) or ``pkcs1v15``; ignored by other key types."""
    salt_length: int = SALT_AUTO
    marshaling: str = ASN1


_DEFAULT_HASH = lookup(DEFAULT)
assert _DEFAULT_HASH is not None
DEFAULT_OPTIONS = SigningOptions(_DEFAULT_HASH)


@dataclass(frozen=True, slots=True)
class Signature:
    """A signature and, for derived Ed25519 keys, the derived public key (raw 32 bytes)."""

    value: bytes
    derived_public_key: bytes = b""


def parse_salt_length(text: str) -> int:
    """Parse Vault's ``salt_length`` (``auto``, ``hash`` or an integer, case-insensitive) to Go's number.

    Raises:
        InvalidRequest: neither keyword nor integer, or an integer below -1 (Vault's messages).
    """
    low = text.lower()
    if low == "auto":
        return SALT_AUTO
    if low == "hash":
        return SALT_HASH
    body = low[1:] if low[:1] in ("+", "-") else low
    if not body.isascii() or not body.isdigit() or len(body) > 18:
        raise InvalidRequest(f"salt length neither 'auto', 'hash', nor an int: {text[:100]}")
    value = int(low)
    if value < SALT_HASH:
        raise InvalidRequest(f"salt length is invalid: {value}")
    return value


def _check_salt(public: rsa.RSAPublicKey, hash_size: int, salt: int) -> None:
    # Go's bounds (keysutil validRSAPSSSaltLength): EqualsHash(-1) .. emLen - 2 - hLen.
    if not SALT_HASH <= salt <= (public.key_size - 1 + 7) // 8 - 2 - hash_size:
        raise InvalidRequest(f"requested salt length {salt} is invalid")


def _pss(hash_alg: hashes.HashAlgorithm, salt: int, *, signing: bool) -> padding.PSS:
    length: Any
    if salt == SALT_AUTO:
        length = padding.PSS.MAX_LENGTH if signing else padding.PSS.AUTO
    elif salt == SALT_HASH:
        length = padding.PSS.DIGEST_LENGTH
    else:
        length = salt
    return padding.PSS(mgf=padding.MGF1(hash_alg), salt_length=length)


class _Digest(hashes.HashAlgorithm):
    """A digest of any length, for ECDSA over caller-supplied bytes (the algorithm is not part of ECDSA)."""

    name = "strongroom-raw-digest"
    block_size = None

    def __init__(self, size: int) -> None:
        self._size = size

    @property
    def digest_size(self) -> int:
        return self._size


def _ecdsa(size: int) -> ec.ECDSA:
    return ec.ECDSA(utils.Prehashed(_Digest(size)))


def _digest(material: KeyMaterial, message: bytes, options: SigningOptions) -> bytes:
    if options.prehashed or options.hash.is_none or not material.key_type.hash_signature_input:
        return message
    return options.hash.digest(message)


def _ed25519_key(material: KeyMaterial, derivation: tuple[int, bytes] | None) -> ed25519.Ed25519PrivateKey:
    """The signing key: the version's own, or the one Vault derives for the context (cached per context).

    The cache is keyed by the SHA-256 of the context, never the context itself: contexts are caller
    input of any length (up to the request size limit), and a cache holding them would let callers pin
    ``_DERIVED_CACHE_LIMIT`` times that much memory per key version.
    """
    if derivation is None:
        private = material.private_key
        if not isinstance(private, ed25519.Ed25519PrivateKey):
            raise InvalidRequest("requested version for signing does not contain a private part")
        return private
    kdf, context = derivation
    if not material.reveal_key():
        raise InvalidRequest("requested version for signing does not contain a private part")
    if not context:
        raise InvalidRequest(f"error deriving key: {MISSING_CONTEXT}")
    cache_key = ("ed25519-derived", kdf, hashlib.sha256(context).digest())
    key = material.cache.get(cache_key)
    if key is None:
        key = derive_ed25519(material.reveal_key(), context, kdf)
        if len(material.cache) >= _DERIVED_CACHE_LIMIT:
            for stale in [k for k in material.cache if isinstance(k, tuple) and k[:1] == ("ed25519-derived",)]:
                material.cache.pop(stale, None)
        material.cache[cache_key] = key
    assert isinstance(key, ed25519.Ed25519PrivateKey)
    return key


def sign(material: KeyMaterial, message: bytes, options: SigningOptions = DEFAULT_OPTIONS, *,
         derivation: tuple[int, bytes] | None = None) -> Signature:
    """Sign ``message`` with ``material`` as Vault does (see the module docstring for what is signed).

    ``derivation`` is ``(kdf, context)`` for a ``derived`` Ed25519 key, else ``None``.

    Raises:
        InvalidRequest: no private key, a type that cannot sign, a prehashed digest of the wrong size, an
            input too long for ``none``, a bad salt length or RSA scheme, a missing context; each worded
            as Vault (or Go's ``crypto/rsa``) words it.
    """
    kt = material.key_type
    if kt is KeyType.ED25519:
        key = _ed25519_key(material, derivation)
        public = key.public_key().public_bytes_raw() if derivation is not None else b""
        return Signature(key.sign(message), public)
    private = material.private_key
    if private is None:
        raise InvalidRequest("requested version for signing does not contain a private part")
    digest = _digest(material, message, options)
    if isinstance(private, ec.EllipticCurvePrivateKey):
        if not digest:
            raise InvalidRequest("ecdsa: hash cannot be empty")
        der = private.sign(digest, _ecdsa(len(digest)))
        if options.marshaling == JWS:
            r, s = utils.decode_dss_signature(der)
            size = _CURVE_BYTES[kt]
            return Signature(r.to_bytes(size, "big") + s.to_bytes(size, "big"))
        return Signature(der)
    if isinstance(private, rsa.RSAPrivateKey):
        return Signature(_rsa_sign(material, private, digest, options))
    raise InvalidRequest(f"message signing not supported for key type {kt.value}")


def _rsa_scheme(options: SigningOptions) -> str:
    scheme = options.signature_algorithm or PSS
    if scheme not in (PSS, PKCS1V15):
        raise InvalidRequest(f"unsupported rsa signature algorithm {scheme[:100]}")
    return scheme


def _rsa_sign(material: KeyMaterial, private: rsa.RSAPrivateKey, digest: bytes, options: SigningOptions) -> bytes:
    scheme = _rsa_scheme(options)
    alg = options.hash
    if alg.is_none:
        if scheme != PKCS1V15:
            raise InvalidRequest("hash_algorithm=none requires both prehashed=true and signature_algorithm=pkcs1v15")
        return _rsa_sign_raw(material, private, digest)
    if scheme == PSS:
        _check_salt(private.public_key(), alg.size, options.salt_length)
    if len(digest) != alg.size:
        # Go's crypto/rsa messages: the digest must match the hash named in the request.
        if scheme == PSS:
            raise InvalidRequest("crypto/rsa: input must be hashed with given hash")
        raise InvalidRequest("crypto/rsa: input must be hashed message")
    crypto_hash = alg.crypto_hash()
    pad = _pss(crypto_hash, options.salt_length, signing=True) if scheme == PSS else padding.PKCS1v15()
    return private.sign(digest, pad, utils.Prehashed(crypto_hash))


def _rsa_sign_raw(material: KeyMaterial, private: rsa.RSAPrivateKey, payload: bytes) -> bytes:
    """PKCS#1 v1.5 type-1 padding over ``payload`` with no DigestInfo (Go's ``SignPKCS1v15`` with hash 0).

    ``cryptography`` has no such operation, so the RSA private operation is done here on integers, with
    the defences Go and OpenSSL use: the base is blinded with a fresh random ``r`` (so timing does not
    depend on the caller's input), the CRT exponents are blinded with random multiples of ``p-1``/``q-1``,
    and the result is checked with the public exponent before it is released (a faulty CRT half must not
    leak a factor).
    """
    numbers = material.cache.get("rsa-private-numbers")
    if numbers is None:
        numbers = material.cache["rsa-private-numbers"] = private.private_numbers()
    assert isinstance(numbers, rsa.RSAPrivateNumbers)
    n, e = numbers.public_numbers.n, numbers.public_numbers.e
    k = (n.bit_length() + 7) // 8
    if len(payload) + 11 > k:
        raise InvalidRequest("crypto/rsa: message too long for RSA key size")
    m = int.from_bytes(b"\x00\x01" + b"\xff" * (k - len(payload) - 3) + b"\x00" + payload, "big")
    while True:
        r = secrets.randbelow(n - 2) + 2
        if math.gcd(r, n) == 1:
            break
    blinded = m * pow(r, e, n) % n
    p, q = numbers.p, numbers.q
    s1 = pow(blinded % p, numbers.dmp1 + secrets.randbits(64) * (p - 1), p)
    s2 = pow(blinded % q, numbers.dmq1 + secrets.randbits(64) * (q - 1), q)
    s = (s2 + (numbers.iqmp * (s1 - s2) % p) * q) % n
    s = s * pow(r, -1, n) % n
    if pow(s, e, n) != m:
        raise RuntimeError("RSA signature failed its consistency check")
    return s.to_bytes(k, "big")


def verify(material: KeyMaterial, message: bytes, signature: bytes, options: SigningOptions = DEFAULT_OPTIONS, *,
           derivation: tuple[int, bytes] | None = None) -> bool:
    """Return whether ``signature`` (already base64-decoded) is valid for ``message``.

    Works with public-key-only versions. ``derivation`` as for :func:`sign`.

    Raises:
        InvalidRequest: an ECDSA ``asn1`` signature that is not DER (``supplied signature is invalid``) or
            has trailing bytes, a bad salt length or RSA scheme, a missing context for a derived key.
    """
    kt = material.key_type
    if kt is KeyType.ED25519:
        if derivation is not None:
            public = _ed25519_key(material, derivation).public_key()
        else:
            found = material.public_key
            if not isinstance(found, ed25519.Ed25519PublicKey):
                return False
            public = found
        try:
            public.verify(signature, message)
        except InvalidSignature:
            return False
        return True
    key = material.public_key
    digest = _digest(material, message, options)
    if isinstance(key, ec.EllipticCurvePublicKey):
        if options.marshaling == JWS:
            half = len(signature) // 2
            r, s = int.from_bytes(signature[:half], "big"), int.from_bytes(signature[half:], "big")
        else:
            r, s = parse_der_signature(signature)
        if r <= 0 or s <= 0 or not digest:
            return False
        try:
            key.verify(utils.encode_dss_signature(r, s), digest, _ecdsa(len(digest)))
        except InvalidSignature:
            return False
        return True
    if isinstance(key, rsa.RSAPublicKey):
        return _rsa_verify(key, digest, signature, options)
    raise InvalidRequest(f"message verification not supported for key type {kt.value}")


def _rsa_verify(key: rsa.RSAPublicKey, digest: bytes, signature: bytes, options: SigningOptions) -> bool:
    scheme = _rsa_scheme(options)
    alg = options.hash
    if alg.is_none:
        if scheme != PKCS1V15:
            raise InvalidRequest("hash_algorithm=none requires both prehashed=true and signature_algorithm=pkcs1v15")
        try:
            recovered = key.recover_data_from_signature(signature, padding.PKCS1v15(), None)
        except InvalidSignature:
            return False
        return hmac.compare_digest(recovered, digest)
    if scheme == PSS:
        _check_salt(key, alg.size, options.salt_length)
    if len(digest) != alg.size:
        return False
    crypto_hash = alg.crypto_hash()
    pad = _pss(crypto_hash, options.salt_length, signing=False) if scheme == PSS else padding.PKCS1v15()
    try:
        key.verify(signature, digest, pad, utils.Prehashed(crypto_hash))
    except InvalidSignature:
        return False
    return True


# -- ECDSA DER, parsed with the strictness of Go's encoding/asn1 -----------------------------------------

_INVALID = "supplied signature is invalid"


def _tlv(data: bytes, pos: int, tag: int) -> tuple[bytes, int]:
    """Read one DER element with identifier ``tag`` at ``pos``; return its content and the next offset."""
    if pos + 2 > len(data) or data[pos] != tag:
        raise InvalidRequest(_INVALID)
    first = data[pos + 1]
    pos += 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        # Go refuses indefinite lengths, leading zero bytes and long forms that fit the short form.
        if count == 0 or count > 4 or pos + count > len(data) or data[pos] == 0:
            raise InvalidRequest(_INVALID)
        length = int.from_bytes(data[pos:pos + count], "big")
        pos += count
        if length < 0x80:
            raise InvalidRequest(_INVALID)
    if pos + length > len(data):
        raise InvalidRequest(_INVALID)
    return data[pos:pos + length], pos + length


def _der_int(data: bytes, pos: int) -> tuple[int, int]:
    content, pos = _tlv(data, pos, 0x02)
    if not content:
        raise InvalidRequest(_INVALID)
    if len(content) > 1 and (
        (content[0] == 0 and content[1] < 0x80) or (content[0] == 0xFF and content[1] >= 0x80)
    ):
        raise InvalidRequest(_INVALID)  # not minimally encoded
    return int.from_bytes(content, "big", signed=True), pos


def parse_der_signature(data: bytes) -> tuple[int, int]:
    """Parse an ECDSA ``SEQUENCE {r INTEGER, s INTEGER}`` as Go's ``asn1.Unmarshal`` does.

    Elements after ``s`` inside the sequence are ignored (as Go does); bytes after the sequence are not.
    ``r`` and ``s`` may come out zero or negative: such a signature simply does not verify.

    Raises:
        InvalidRequest: ``supplied signature is invalid`` (not DER) or ``supplied signature contains
            extra data`` (trailing bytes), Vault's messages.
    """
    body, end = _tlv(data, 0, 0x30)
    r, pos = _der_int(body, 0)
    s, _ = _der_int(body, pos)
    if end != len(data):
        raise InvalidRequest("supplied signature contains extra data")
    return r, s
