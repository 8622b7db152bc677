"""Bring-your-own-key: unwrap keys sent to transit's ``import`` endpoints and turn them into key material.

The wire format is Vault's (``keys/:name/import``, ``keys/:name/import_version``, and what
``vault transit import`` sends)::

    ciphertext = RSA-OAEP(wrapping key, hash H, MGF1 with H, empty label)(ephemeral 32-byte AES key)  # 512 bytes
                 || AES-KWP(ephemeral key)(target key)                                                # RFC 5649

H is SHA-256 unless the caller names another (``hash_function``: SHA1, SHA224, SHA256, SHA384, SHA512).
The target key is the raw key for the symmetric and HMAC types, and an unencrypted PKCS#8 DER private key
for RSA, ECDSA and Ed25519. A public key alone (verify and encrypt only) arrives as PEM
SubjectPublicKeyInfo, in clear.

Parsing follows Go's ``x509`` as Vault calls it: only PKCS#8 private keys (a PKCS#1 or SEC 1 key is
refused with Go's hint to use that format's parser), only SubjectPublicKeyInfo public keys, the NIST
curves P-224/256/384/521 only; the refusals carry Vault's messages. Where Go reports a raw ASN.1 decoder
error for malformed DER we give a fixed description instead (Go's text names decoder internals).

Everything here raises :class:`~strongroom.errors.InvalidRequest` for bad input; no message contains
key material.
"""

from __future__ import annotations

import binascii
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed25519, padding, rsa, x25519

from strongroom.crypto.random import random_bytes
from strongroom.crypto.transit import keywrap
from strongroom.crypto.transit.keytypes import HMAC_MAX_KEY_BYTES, HMAC_MIN_KEY_BYTES, KeyType
from strongroom.crypto.transit.material import KeyMaterial, curve_of
from strongroom.errors import CorruptRecord, InvalidRequest

WRAPPED_EPHEMERAL_BYTES = 512
"""Length of the RSA-OAEP part: one RSA-4096 block."""
EPHEMERAL_KEY_BYTES = 32

ERR_PAIR_MISMATCH = "cannot import key, key pair does not match"

_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "SHA1": hashes.SHA1,
    "SHA224": hashes.SHA224,
    "SHA256": hashes.SHA256,
    "SHA384": hashes.SHA384,
    "SHA512": hashes.SHA512,
}

# Go's names for the curves its x509 package knows; any other curve is unknown to Vault.
_GO_CURVES = {"secp224r1": "P-224", "secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}

_OID_RSA = "1.2.840.113549.1.1.1"
_OID_RSA_PSS = "1.2.840.113549.1.1.10"
_OID_EC = "1.2.840.10045.2.1"
_OID_ED25519 = "1.3.101.112"
_OID_X25519 = "1.3.101.110"
_OID_DSA = "1.2.840.10040.4.1"
_PRIVATE_OIDS = {_OID_RSA, _OID_RSA_PSS, _OID_EC, _OID_ED25519, _OID_X25519}
_PUBLIC_OIDS = {_OID_RSA, _OID_EC, _OID_ED25519, _OID_X25519, _OID_DSA}

_SEQUENCE, _INTEGER, _BIT_STRING, _OCTET_STRING, _OID = 0x30, 0x02, 0x03, 0x04, 0x06
_MAX_OID_BYTES = 64
_PEM_ATTEMPTS = 16  # BEGIN lines tried before "not in PEM format" (a key is one block; a chain a few)

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | x25519.X25519PrivateKey
PublicKey = (
    rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | x25519.X25519PublicKey
    | dsa.DSAPublicKey
)
_PUBLIC_CLASSES = (
    rsa.RSAPublicKey, ec.EllipticCurvePublicKey, ed25519.Ed25519PublicKey, x25519.X25519PublicKey, dsa.DSAPublicKey
)


# -- the wrapping layer ---------------------------------------------------------------------------------


def check_hash_function(name: str) -> str:
    """Return the canonical name of an OAEP hash (``hash_function``, any case).

    Raises:
        InvalidRequest: ``unknown hash function: NAME``.
    """
    upper = name.upper()
    if upper not in _HASHES:
        raise InvalidRequest(f"unknown hash function: {name[:100]}")
    return upper


def split_ciphertext(blob: bytes) -> tuple[bytes, bytes]:
    """Split the decoded ``ciphertext`` into the wrapped ephemeral key and the wrapped target key.

    Raises:
        InvalidRequest: ``provided ciphertext is too short`` (no room for a wrapped target key).
    """
    if len(blob) <= WRAPPED_EPHEMERAL_BYTES:
        raise InvalidRequest("provided ciphertext is too short")
    return blob[:WRAPPED_EPHEMERAL_BYTES], blob[WRAPPED_EPHEMERAL_BYTES:]


def unwrap_target_key(
    wrapping: KeyMaterial, wrapped_ephemeral: bytes, wrapped_key: bytes, hash_function: str
) -> bytes:
    """Recover the target key: RSA-OAEP-decrypt the ephemeral key, then KWP-unwrap the target with it.

    Raises:
        InvalidRequest: Vault's messages: ``crypto/rsa: decryption error`` (any OAEP failure, one message
            so the padding check leaks nothing), ``expected ephemeral AES key to be 256-bit``, an unknown
            hash, or the KWP size and integrity errors of :func:`keywrap.unwrap_bounded`.
        CorruptRecord: ``wrapping`` is not an RSA private key.
    """
    private = wrapping.private_key
    if not isinstance(private, rsa.RSAPrivateKey):
        raise CorruptRecord("transit wrapping key is not an RSA private key")
    algorithm = _HASHES[check_hash_function(hash_function)]()
    oaep = padding.OAEP(mgf=padding.MGF1(algorithm), algorithm=algorithm, label=None)
    try:
        ephemeral = private.decrypt(wrapped_ephemeral, oaep)
    except ValueError:
        raise InvalidRequest("crypto/rsa: decryption error") from None
    # Python cannot reliably wipe an immutable bytes object (Vault zeroes its copy); the ephemeral key
    # only ever protects this one transfer, and its last reference is dropped on return.
    if len(ephemeral) != EPHEMERAL_KEY_BYTES:
        raise InvalidRequest("expected ephemeral AES key to be 256-bit")
    return keywrap.unwrap_bounded(ephemeral, wrapped_key)


# -- key material ---------------------------------------------------------------------------------------


def material_from_import(key_type: KeyType, key: bytes, *, private: bool, derived: bool) -> KeyMaterial:
    """Build a new version's material from an imported key (Vault's ``ImportPublicOrPrivate`` rules).

    ``private``: ``key`` came from ``ciphertext`` (raw symmetric key or PKCS#8 DER); otherwise it is the
    ``public_key`` PEM text. Every version gets a fresh random HMAC key, except hmac keys, whose HMAC key
    is the key itself (as Vault stores them).

    Raises:
        InvalidRequest: a public key for a derived Ed25519 key, a wrong key size, an unparseable key, or a
            key of another type or curve, each in Vault's words.
    """
    if key_type is KeyType.ED25519 and derived and not private:
        raise InvalidRequest(
            "unable to import only public key for derived Ed25519 key: imported key should not be an "
            "Ed25519 key pair but is instead an HKDF key"
        )
    if not private and not key_type.asymmetric:
        raise InvalidRequest("provided type does not support public_key import")
    if key_type.symmetric_aead or key_type is KeyType.HMAC:
        size = len(key)
        if key_type.symmetric_aead:
            ok = size == key_type.symmetric_key_bytes
        else:
            ok = HMAC_MIN_KEY_BYTES <= size <= HMAC_MAX_KEY_BYTES
        if not ok:
            raise InvalidRequest(f"invalid key size {size} bytes for key type {key_type.value}")
        if key_type is KeyType.HMAC:
            return KeyMaterial(key_type, key=bytes(key), hmac_key=bytes(key))
        return KeyMaterial(key_type, key=bytes(key), hmac_key=random_bytes(32))
    parsed: PrivateKey | PublicKey = parse_private_key(key) if private else parse_public_key(key)
    return _material(key_type, parsed, random_bytes(32))


def complete_version(key_type: KeyType, existing: KeyMaterial, der: bytes) -> KeyMaterial:
    """Add the private key ``der`` to a version that holds only a public key (``ImportPrivateKeyForVersion``).

    The version keeps its HMAC key; the private key must belong to the stored public key.

    Raises:
        InvalidRequest: ``der`` does not parse, ``cannot import key, key pair does not match`` (including a
            key of another algorithm or curve), or the type checks of :func:`material_from_import`.
    """
    parsed = parse_private_key(der)
    public = existing.public_key
    if public is None or _spki(parsed.public_key()) != _spki(public):
        raise InvalidRequest(ERR_PAIR_MISMATCH)
    return _material(key_type, parsed, existing.reveal_hmac_key())


def _material(key_type: KeyType, parsed: PrivateKey | PublicKey, hmac_key: bytes) -> KeyMaterial:
    """Check ``parsed`` against ``key_type`` (Vault's ``parseFromKey``) and wrap it as material."""
    expected = key_type.value
    if isinstance(parsed, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        if not key_type.ecdsa:
            raise InvalidRequest(f"invalid key type: expected {expected}, got {_go_type(parsed)}")
        want = _GO_CURVES[curve_of(key_type).name]
        got = _GO_CURVES.get(parsed.curve.name, parsed.curve.name)
        if got != want:
            raise InvalidRequest(f"invalid curve: expected {want}, got {got}")
    elif isinstance(parsed, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey):
        if key_type is not KeyType.ED25519:
            raise InvalidRequest(f"invalid key type: expected {expected}, got {_go_type(parsed)}")
        if isinstance(parsed, ed25519.Ed25519PrivateKey):
            return KeyMaterial.from_ed25519(parsed, hmac_key=hmac_key)
    elif isinstance(parsed, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        if not key_type.rsa:
            raise InvalidRequest(f"invalid key type: expected {expected}, got {_go_type(parsed)}")
        bits = parsed.key_size
        if (bits + 7) // 8 != key_type.rsa_bits // 8:
            raise InvalidRequest(
                f"invalid key size: expected {key_type.rsa_bits // 8} bytes, got {(bits + 7) // 8} bytes"
            )
        if bits != key_type.rsa_bits:
            # Deliberately stricter than Vault, which accepts e.g. a 2047-bit modulus as rsa-2048.
            raise InvalidRequest(f"invalid key size: expected {key_type.rsa_bits} bits, got {bits} bits")
        # Rebuild from the numbers: an RSA-PSS-restricted key object would refuse OAEP encryption later.
        if isinstance(parsed, rsa.RSAPrivateKey):
            parsed = parsed.private_numbers().private_key()
        else:
            parsed = parsed.public_numbers().public_key()
    else:
        raise InvalidRequest(f"invalid key type: expected {expected}, got {_go_type(parsed)}")
    if isinstance(parsed, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        return KeyMaterial(key_type, hmac_key=hmac_key, private=parsed)
    assert isinstance(parsed, ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey)
    return KeyMaterial(key_type, hmac_key=hmac_key, public=parsed)


def _go_type(key: object) -> str:
    """Go's ``%T`` of the key Vault would have parsed (its error messages name it)."""
    names: tuple[tuple[Any, str], ...] = (
        (rsa.RSAPrivateKey, "*rsa.PrivateKey"), (rsa.RSAPublicKey, "*rsa.PublicKey"),
        (ec.EllipticCurvePrivateKey, "*ecdsa.PrivateKey"), (ec.EllipticCurvePublicKey, "*ecdsa.PublicKey"),
        (ed25519.Ed25519PrivateKey, "ed25519.PrivateKey"), (ed25519.Ed25519PublicKey, "ed25519.PublicKey"),
        (x25519.X25519PrivateKey, "*ecdh.PrivateKey"), (x25519.X25519PublicKey, "*ecdh.PublicKey"),
        (dsa.DSAPublicKey, "*dsa.PublicKey"),
    )
    for cls, name in names:
        if isinstance(key, cls):
            return name
    return type(key).__name__


def _spki(public: Any) -> bytes:
    der: bytes = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return der


# -- parsing --------------------------------------------------------------------------------------------


def parse_private_key(der: bytes) -> PrivateKey:
    """Parse an unencrypted PKCS#8 DER private key as Go's ``x509.ParsePKCS8PrivateKey`` accepts it.

    Raises:
        InvalidRequest: ``error parsing asymmetric key: ...`` for anything else (PKCS#1 and SEC 1 keys
            get Go's hint, unknown algorithms their OID, malformed DER a fixed description).
    """
    prefix = "error parsing asymmetric key: "
    try:
        kind, oid = _private_shape(der)
    except ValueError:
        raise InvalidRequest(prefix + "x509: malformed PKCS#8 private key") from None
    if kind != "pkcs8":
        loaded = _load_private(der)
        if kind == "pkcs1" and isinstance(loaded, rsa.RSAPrivateKey):
            raise InvalidRequest(
                prefix + "x509: failed to parse private key (use ParsePKCS1PrivateKey instead for this key format)"
            )
        if kind == "sec1" and isinstance(loaded, ec.EllipticCurvePrivateKey):
            raise InvalidRequest(
                prefix + "x509: failed to parse private key (use ParseECPrivateKey instead for this key format)"
            )
        raise InvalidRequest(prefix + "x509: malformed PKCS#8 private key")
    if oid not in _PRIVATE_OIDS:
        raise InvalidRequest(prefix + f"x509: PKCS#8 wrapping contained private key with unknown algorithm: {oid}")
    loaded = _load_private(der)
    if oid == _OID_EC:
        if not isinstance(loaded, ec.EllipticCurvePrivateKey) or loaded.curve.name not in _GO_CURVES:
            raise InvalidRequest(
                prefix + "x509: failed to parse EC private key embedded in PKCS#8: x509: unknown elliptic curve"
            )
        return loaded
    if oid in (_OID_RSA, _OID_RSA_PSS):
        if not isinstance(loaded, rsa.RSAPrivateKey):
            raise InvalidRequest(prefix + "x509: failed to parse RSA private key embedded in PKCS#8")
        return loaded
    if isinstance(loaded, ed25519.Ed25519PrivateKey | x25519.X25519PrivateKey):
        return loaded
    raise InvalidRequest(prefix + "x509: malformed PKCS#8 private key")


def _load_private(der: bytes) -> object:
    """cryptography's parse of ``der`` (which also accepts legacy formats), or ``None``."""
    try:
        return serialization.load_der_private_key(der, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        return None


def parse_public_key(pem: bytes) -> PublicKey:
    """Parse the first PEM block of ``pem`` as a SubjectPublicKeyInfo (Go's ``ParsePKIXPublicKey``).

    Raises:
        InvalidRequest: ``error parsing public key: not in PEM format`` or ``error parsing public key: ...``.
    """
    prefix = "error parsing public key: "
    der = _pem_body(pem)
    if der is None:
        raise InvalidRequest(prefix + "not in PEM format")
    try:
        kind, oid = _public_shape(der)
    except ValueError:
        raise InvalidRequest(prefix + "x509: malformed SubjectPublicKeyInfo") from None
    if kind == "pkcs1":
        raise InvalidRequest(
            prefix + "x509: failed to parse public key (use ParsePKCS1PublicKey instead for this key format)"
        )
    if oid not in _PUBLIC_OIDS:
        raise InvalidRequest(prefix + "x509: unknown public key algorithm")
    try:
        loaded = serialization.load_der_public_key(der)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        if oid == _OID_EC:
            raise InvalidRequest(prefix + "x509: unsupported elliptic curve") from None
        raise InvalidRequest(prefix + "x509: malformed SubjectPublicKeyInfo") from None
    if isinstance(loaded, ec.EllipticCurvePublicKey) and loaded.curve.name not in _GO_CURVES:
        raise InvalidRequest(prefix + "x509: unsupported elliptic curve")
    if not isinstance(loaded, _PUBLIC_CLASSES):
        raise InvalidRequest(prefix + "x509: unknown public key algorithm")
    return loaded


def _pem_body(pem: bytes) -> bytes | None:
    """The DER of the first decodable PEM block (text before it is skipped, as Go's ``pem.Decode`` does).

    Linear: string searches, at most :data:`_PEM_ATTEMPTS` BEGIN lines (a regex pairing BEGIN and END
    lines was quadratic: 30 s for 300 KB of BEGIN lines)."""
    text = pem.decode("utf-8", errors="replace")
    pos = 0
    for _ in range(_PEM_ATTEMPTS):
        start = text.find("-----BEGIN ", pos)
        eol = text.find("\n", start)
        if start < 0 or eol < 0:
            return None
        pos, label = start + 1, text[start + 11:eol].removesuffix("\r")
        marker = f"-----END {label[:-5]}-----"
        end = text.find(marker, eol) if label.endswith("-----") and "\r" not in label else -1
        if end < 0:
            continue
        pos = end + len(marker)
        lines = [line.strip() for line in text[eol + 1:end].splitlines()]
        if any(":" in line for line in lines):  # RFC 1421 headers ("Proc-Type: ...") end at a blank line
            if "" not in lines:
                continue
            lines = lines[lines.index("") + 1:]
        try:
            return binascii.a2b_base64("".join(lines), strict_mode=True)
        except (binascii.Error, ValueError):
            continue
    return None


# -- just enough DER to tell the containers apart ---------------------------------------------------------


def _tlv(data: bytes, pos: int, end: int) -> tuple[int, int, int]:
    """``(tag, content start, content end)`` of the DER element at ``pos``.

    Raises:
        ValueError: truncated or oversized element.
    """
    if pos + 2 > end:
        raise ValueError("truncated DER")
    tag, length = data[pos], data[pos + 1]
    pos += 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 4 or pos + count > end:
            raise ValueError("bad DER length")
        length = int.from_bytes(data[pos:pos + count], "big")
        pos += count
    if pos + length > end:
        raise ValueError("truncated DER")
    return tag, pos, pos + length


def _children(data: bytes, start: int, end: int, count: int) -> list[tuple[int, int, int]]:
    out: list[tuple[int, int, int]] = []
    while start < end and len(out) < count:
        out.append(_tlv(data, start, end))
        start = out[-1][2]
    return out


def _oid_text(body: bytes) -> str:
    # Bounded: arcs built by shifting are quadratic in length (a 300 KB OID took 10 s); ours are short.
    if not body or len(body) > _MAX_OID_BYTES:
        raise ValueError("empty or overlong OID")
    arcs: list[int] = []
    value = 0
    for byte in body:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    if body[-1] & 0x80:
        raise ValueError("truncated OID")
    first = arcs[0]
    head = [0, first] if first < 40 else [1, first - 40] if first < 80 else [2, first - 80]
    return ".".join(str(a) for a in head + arcs[1:])


def _algorithm_oid(data: bytes, start: int, end: int) -> str:
    algo = _children(data, start, end, 1)
    if not algo or algo[0][0] != _OID:
        raise ValueError("no algorithm OID")
    return _oid_text(data[algo[0][1]:algo[0][2]])


def _private_shape(der: bytes) -> tuple[str, str]:
    """``("pkcs8", algorithm OID)``, ``("pkcs1", "")`` or ``("sec1", "")`` by the DER layout.

    Raises:
        ValueError: none of them.
    """
    tag, start, end = _tlv(der, 0, len(der))
    if tag != _SEQUENCE:
        raise ValueError("not a SEQUENCE")
    kids = _children(der, start, end, 2)
    if len(kids) < 2 or kids[0][0] != _INTEGER:
        raise ValueError("not a private key")
    second, s2, e2 = kids[1]
    if second == _SEQUENCE:
        return "pkcs8", _algorithm_oid(der, s2, e2)
    if second == _INTEGER:
        return "pkcs1", ""
    if second == _OCTET_STRING:
        return "sec1", ""
    raise ValueError("not a private key")


def _public_shape(der: bytes) -> tuple[str, str]:
    """``("spki", algorithm OID)`` or ``("pkcs1", "")`` by the DER layout.

    Raises:
        ValueError: neither.
    """
    tag, start, end = _tlv(der, 0, len(der))
    if tag != _SEQUENCE:
        raise ValueError("not a SEQUENCE")
    kids = _children(der, start, end, 2)
    if len(kids) == 2 and kids[0][0] == _SEQUENCE and kids[1][0] == _BIT_STRING:
        return "spki", _algorithm_oid(der, kids[0][1], kids[0][2])
    if len(kids) == 2 and kids[0][0] == _INTEGER and kids[1][0] == _INTEGER:
        return "pkcs1", ""
    raise ValueError("not a public key")
