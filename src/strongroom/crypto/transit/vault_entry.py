"""Vault's on-the-wire forms of transit key material: backup ``KeyEntry`` JSON and ``export`` encodings.

A Vault/OpenBao backup is base64 of Go's ``encoding/json`` output for ``{"policy": Policy,
"archived_keys": {"keys": [KeyEntry...]}}`` plus a newline. A ``KeyEntry`` carries symmetric and Ed25519
keys as base64 (``key``), the version's ``hmac_key``, ECDSA keys as big integers (``ec_x``, ``ec_y``,
``ec_d``) and RSA keys as Go's ``*rsa.PrivateKey`` (``N``, ``E``, ``D``, ``Primes``, ``Precomputed``):
JSON **numbers** far wider than 64 bits, so :func:`decode_backup` parses with the standard library
(exact integers), bounding every number's length first. Everything is validated before use (field
types, key lengths, curve membership, RSA consistency, Ed25519 public halves); a malformed backup raises
:class:`~strongroom.errors.InvalidRequest` naming the field, never the value.

:func:`export_key` reproduces Vault's ``export`` encodings byte for byte: base64 raw keys, RSA PKCS#1
and EC SEC 1 PEM by default, PKCS#8 / SubjectPublicKeyInfo for ``der`` and ``pem``, with Vault's
trailing-newline quirks (RSA PEM keeps it, EC and Ed25519 PEM do not).
"""

from __future__ import annotations

import base64
import binascii
import datetime
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from strongroom.crypto.transit.keytypes import KeyType
from strongroom.crypto.transit.material import KeyMaterial, curve_of
from strongroom.errors import CorruptRecord, InvalidRequest

MAX_BACKUP_CHARS = 16 * 1024 * 1024
"""Largest base64 backup accepted by :func:`decode_backup` (thousands of RSA-4096 versions fit)."""
MAX_NUMBER_DIGITS = 1300
"""Longest JSON integer accepted: an RSA-4096 modulus has 1234 digits; longer ones are refused before
Python converts them (conversion cost grows quadratically with length)."""
_INT64 = 2**63
_T = TypeVar("_T")

_GO_TIME = re.compile(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)\Z")
_EPOCH = datetime.datetime(1970, 1, 1)
_SECOND = datetime.timedelta(seconds=1)
ZERO_TIME = "0001-01-01T00:00:00Z"
"""Go's zero ``time.Time`` as JSON (the ``time`` of an empty ``KeyEntry``)."""


# -- times ------------------------------------------------------------------------------------------

def parse_time(text: str, where: str = "time") -> tuple[int, int]:
    """Parse an RFC 3339 time as Go writes it; return ``(unix seconds, nanoseconds)``.

    Raises:
        InvalidRequest: not an RFC 3339 time.
    """
    m = _GO_TIME.match(text) if isinstance(text, str) else None
    if m is None:
        raise InvalidRequest(f"invalid backup: {where} is not an RFC 3339 time")
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    zone = m.group(8)
    offset = 0 if zone == "Z" else (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60) * (1 if zone[0] == "+" else -1)
    try:
        # In UTC, and within years 1..9999 (a zone offset can carry a time past either end).
        moment = datetime.datetime(year, month, day, hour, minute, second) - datetime.timedelta(seconds=offset)
    except (ValueError, OverflowError):
        raise InvalidRequest(f"invalid backup: {where} is not an RFC 3339 time") from None
    seconds = (moment - _EPOCH) // _SECOND
    return seconds, int((m.group(7) or "").ljust(9, "0"))


def format_time(seconds: int, nanos: int, *, go: bool) -> str:
    """UTC RFC 3339 with nanoseconds: Go's JSON form (``go``: trailing zeros trimmed) or ours (9 digits)."""
    t = _EPOCH + datetime.timedelta(seconds=seconds)
    base = f"{t.year:04d}-{t.month:02d}-{t.day:02d}T{t.hour:02d}:{t.minute:02d}:{t.second:02d}"
    frac = f"{nanos:09d}".rstrip("0") if go else f"{nanos:09d}"
    return f"{base}.{frac}Z" if frac else f"{base}Z"


def go_time(text: str) -> str:
    """Re-format one of our stored RFC 3339 times as Go's JSON encoder writes it (raises as :func:`parse_time`)."""
    return format_time(*parse_time(text), go=True)


def now_go_time(now: float) -> str:
    """``now`` (seconds since the epoch) in Go's JSON time form."""
    seconds = int(now // 1)
    return format_time(seconds, min(round((now - seconds) * 1e9), 999_999_999), go=True)


# -- typed access to decoded JSON, with Go's decoding rules ----------------------------------------

class GoObject:
    """A decoded JSON object read as Go's ``encoding/json`` fills a struct: ``null`` or missing is zero.

    Every accessor raises :class:`InvalidRequest` naming ``where.field`` when the JSON type is wrong.
    """

    __slots__ = ("doc", "where")

    def __init__(self, doc: Any, where: str) -> None:
        if not isinstance(doc, dict):
            raise InvalidRequest(f"invalid backup: {where} must be an object")
        self.doc: dict[str, Any] = doc
        self.where = where

    def _bad(self, name: str, what: str) -> InvalidRequest:
        return InvalidRequest(f"invalid backup: {self.where}.{name} must be {what}")

    def _typed(self, name: str, kind: type[_T], what: str) -> _T | None:
        value = self.doc.get(name)
        if value is not None and (not isinstance(value, kind) or (kind is int and isinstance(value, bool))):
            raise self._bad(name, what)
        return value

    def integer(self, name: str) -> int:
        """A Go ``int`` (64 bits; 0 for null)."""
        value = self._typed(name, int, "a 64-bit integer") or 0
        if not -_INT64 <= value < _INT64:
            raise self._bad(name, "a 64-bit integer")
        return value

    def bigint(self, name: str) -> int | None:
        """A ``*big.Int`` (``None`` for null), non-negative in every Vault key field."""
        value = self._typed(name, int, "a non-negative integer")
        if value is not None and value < 0:
            raise self._bad(name, "a non-negative integer")
        return value

    def boolean(self, name: str) -> bool:
        """A Go ``bool`` (false for null)."""
        return bool(self._typed(name, bool, "a boolean"))

    def string(self, name: str) -> str:
        """A Go ``string`` (empty for null)."""
        return self._typed(name, str, "a string") or ""

    def array(self, name: str) -> list[Any]:
        """A Go slice (empty for null)."""
        return self._typed(name, list, "an array") or []

    def blob(self, name: str) -> bytes:
        """A Go ``[]byte`` (standard base64 in JSON)."""
        value = self.string(name)
        try:
            return binascii.a2b_base64(value, strict_mode=True) if value else b""
        except (binascii.Error, ValueError):
            raise self._bad(name, "standard base64") from None

    def object(self, name: str) -> GoObject | None:
        """A nested struct pointer (``None`` for null)."""
        value = self.doc.get(name)
        return None if value is None else GoObject(value, f"{self.where}.{name}")


# -- the backup envelope ----------------------------------------------------------------------------

_HTML_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
_HTML = re.compile("[<>&\u2028\u2029]")


def encode_backup(doc: Mapping[str, Any]) -> str:
    """Encode ``doc`` as Go's ``json.Encoder`` does (compact, HTML-escaped, newline) and base64 it.

    Dict order is kept, so callers build objects in Go's struct field order (and map keys sorted).
    """
    text = json.dumps(doc, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    # These characters can only occur inside JSON strings, so replacing them in the whole text is exact.
    text = _HTML.sub(lambda m: _HTML_ESCAPES[m.group(0)], text) + "\n"
    return base64.b64encode(text.encode()).decode()


def _parse_int(text: str) -> int:
    if len(text) > MAX_NUMBER_DIGITS:
        raise ValueError("number too long")
    return int(text)


def _refuse(text: str) -> Any:
    raise ValueError("only integers are valid numbers in a backup")


def decode_backup(text: str) -> GoObject:
    """Decode a base64 backup into its top-level object, integers kept exact.

    Raises:
        InvalidRequest: too large, not base64, not UTF-8 JSON, fractional or overlong numbers, deep nesting.
    """
    if len(text) > MAX_BACKUP_CHARS:
        raise InvalidRequest(f"backup is larger than {MAX_BACKUP_CHARS} characters")
    try:
        raw = binascii.a2b_base64(text, strict_mode=True)
    except (binascii.Error, ValueError):
        raise InvalidRequest("invalid backup: not standard base64") from None
    try:
        doc = json.loads(raw.decode(), parse_int=_parse_int, parse_float=_refuse, parse_constant=_refuse)
    except json.JSONDecodeError as exc:
        raise InvalidRequest(f"invalid backup: {exc.msg} at offset {exc.pos}") from None
    except UnicodeDecodeError:
        raise InvalidRequest("invalid backup: not UTF-8 text") from None
    except (ValueError, RecursionError) as exc:  # only our own parse hooks' messages, or deep nesting
        raise InvalidRequest(f"invalid backup: {exc if isinstance(exc, ValueError) else 'nested too deeply'}") from None
    return GoObject(doc, "backup")


# -- KeyEntry ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class EntryFacts:
    """The public facts of a ``KeyEntry`` (times in our 9-digit RFC 3339 form)."""

    created: str
    created_unix: int
    convergent_version: int = 0
    certificate_chain: str = ""
    """PEM certificates joined by newlines, as ``keys/:name`` reads show them."""


def zero_entry() -> dict[str, Any]:
    """Go's zero ``KeyEntry`` (Vault's archive holds one for version 0)."""
    return {
        "key": None, "hmac_key": None, "time": ZERO_TIME, "ec_x": None, "ec_y": None, "ec_d": None,
        "rsa_key": None, "rsa_public_key": None, "public_key": "", "convergent_version": 0,
        "creation_time": 0, "certificate_chain": None, "external_key_ref": "",
    }


def _b64(data: bytes) -> str | None:  # Go writes a nil []byte as null
    return base64.b64encode(data).decode() if data else None


def entry_json(material: KeyMaterial, facts: EntryFacts) -> dict[str, Any]:
    """Return the ``KeyEntry`` JSON object of one version, in Go's field order (secret: backups only)."""
    out = zero_entry()
    kt = material.key_type
    out["key"] = _b64(material.reveal_key())
    out["hmac_key"] = _b64(material.reveal_hmac_key())
    out["time"] = go_time(facts.created)
    private, public = material.private_key, material.public_key
    if isinstance(public, ec.EllipticCurvePublicKey):
        numbers = public.public_numbers()
        out["ec_x"], out["ec_y"] = numbers.x, numbers.y
        if isinstance(private, ec.EllipticCurvePrivateKey):
            out["ec_d"] = private.private_numbers().private_value
    elif isinstance(private, rsa.RSAPrivateKey):
        n = private.private_numbers()
        out["rsa_key"] = {
            "N": n.public_numbers.n, "E": n.public_numbers.e, "D": n.d, "Primes": [n.p, n.q],
            "Precomputed": {"Dp": n.dmp1, "Dq": n.dmq1, "Qinv": n.iqmp, "CRTValues": []},
        }
    elif isinstance(public, rsa.RSAPublicKey):
        pn = public.public_numbers()
        out["rsa_public_key"] = {"N": pn.n, "E": pn.e}
    # Vault keeps a formatted public key for ECDSA (PEM) and Ed25519 (base64), not for RSA.
    out["public_key"] = "" if kt.rsa else material.public_key_text()
    out["convergent_version"] = facts.convergent_version
    out["creation_time"] = facts.created_unix
    if facts.certificate_chain:
        out["certificate_chain"] = [_b64(der) for der in _pem_blocks(facts.certificate_chain)]
    return out


def is_zero_entry(doc: GoObject) -> bool:
    """Whether an archived entry carries no key at all (version 0, or a trimmed slot)."""
    return not any(doc.doc.get(f) for f in ("key", "hmac_key", "ec_x", "ec_d", "rsa_key", "rsa_public_key", "public_key"))


def parse_entry(doc: GoObject, key_type: KeyType) -> tuple[KeyMaterial, EntryFacts]:
    """Build and validate the material and facts of one ``KeyEntry``.

    Raises:
        InvalidRequest: a wrong field type, a key that does not fit ``key_type`` or is inconsistent, or an
            external (managed) key reference.
    """
    where = doc.where
    if doc.string("external_key_ref"):
        raise InvalidRequest(f"invalid backup: {where} references an external key, which is not supported")
    key, hmac_key = doc.blob("key"), doc.blob("hmac_key")
    if len(hmac_key) > 512:
        raise InvalidRequest(f"invalid backup: {where}.hmac_key is too long")
    try:
        material = _material(doc, key_type, key, hmac_key)
        material.check()
    except (ValueError, TypeError, OverflowError, CorruptRecord, InvalidSignature):  # Overflow: RSA e < 0
        raise InvalidRequest(f"invalid backup: {where} is not a valid {key_type.value} key") from None
    seconds, nanos = parse_time(doc.string("time") or ZERO_TIME, f"{where}.time")
    chain = [_chain_item(c, f"{where}.certificate_chain") for c in doc.array("certificate_chain")]
    facts = EntryFacts(
        created=format_time(seconds, nanos, go=False),
        created_unix=doc.integer("creation_time"),
        convergent_version=doc.integer("convergent_version"),
        certificate_chain="\n".join(_pem("CERTIFICATE", der).strip() for der in chain),
    )
    return material, facts


def _chain_item(value: Any, where: str) -> bytes:
    try:
        if isinstance(value, str):
            return binascii.a2b_base64(value, strict_mode=True)
    except (binascii.Error, ValueError):
        pass
    raise InvalidRequest(f"invalid backup: {where} must hold base64 strings")


def _material(doc: GoObject, kt: KeyType, key: bytes, hmac_key: bytes) -> KeyMaterial:
    """Raises ValueError/TypeError (turned into one message by the caller) for anything inconsistent."""
    if kt.symmetric_aead or kt is KeyType.HMAC:
        return KeyMaterial(kt, key=key, hmac_key=hmac_key)
    if kt is KeyType.ED25519:
        public_text = doc.string("public_key").strip()
        if key:
            if len(key) != 64:
                raise ValueError("ed25519 key length")
            private = ed25519.Ed25519PrivateKey.from_private_bytes(key[:32])
            material = KeyMaterial.from_ed25519(private, hmac_key=hmac_key)
            if material.reveal_key() != key or (public_text and public_text != material.public_key_text()):
                raise ValueError("ed25519 public half does not match")
            return material
        public = ed25519.Ed25519PublicKey.from_public_bytes(base64.b64decode(public_text, validate=True))
        return KeyMaterial(kt, hmac_key=hmac_key, public=public)
    if key:
        raise ValueError("raw key bytes on an asymmetric key")
    if kt.ecdsa:
        x, y, d = doc.bigint("ec_x"), doc.bigint("ec_y"), doc.bigint("ec_d")
        if x is None or y is None:
            raise ValueError("missing ec point")
        point = ec.EllipticCurvePublicNumbers(x, y, curve_of(kt))
        if d is None:
            return KeyMaterial(kt, hmac_key=hmac_key, public=point.public_key())
        return KeyMaterial(kt, hmac_key=hmac_key, private=ec.EllipticCurvePrivateNumbers(d, point).private_key())
    rsa_doc = doc.object("rsa_key")
    if rsa_doc is None:
        pub = doc.object("rsa_public_key")
        if pub is None:
            raise ValueError("no rsa key")
        n, e = pub.bigint("N"), pub.integer("E")
        if n is None:
            raise ValueError("missing modulus")
        return KeyMaterial(kt, hmac_key=hmac_key, public=rsa.RSAPublicNumbers(e, n).public_key())
    return KeyMaterial(kt, hmac_key=hmac_key, private=_rsa_private(rsa_doc))


def _rsa_private(doc: GoObject) -> rsa.RSAPrivateKey:
    n, e, d = doc.bigint("N"), doc.integer("E"), doc.bigint("D")
    primes = doc.array("Primes")
    if n is None or d is None or len(primes) != 2:
        # Go can hold multi-prime keys; nothing else in Vault creates them, and OpenSSL would not load them.
        raise ValueError("rsa key must have two primes")
    p, q = primes
    if not all(isinstance(x, int) and not isinstance(x, bool) and x > 1 for x in primes):
        raise ValueError("rsa primes must be integers")
    # OpenSSL's full check (prime tests) costs ~0.7 s per RSA-4096 version. Cheaper facts suffice: n = p*q,
    # d inverts e mod lcm(p-1, q-1), cryptography's range checks, and a signature that verifies (below).
    if p * q != n or (d * e - 1) % math.lcm(p - 1, q - 1):
        raise ValueError("inconsistent rsa key")
    dp, dq, qinv = rsa.rsa_crt_dmp1(d, p), rsa.rsa_crt_dmq1(d, q), rsa.rsa_crt_iqmp(p, q)
    pre = doc.object("Precomputed")
    if pre is not None:
        # Precomputed values are redundant; when given they must agree (a damaged backup must not load).
        given = (pre.bigint("Dp"), pre.bigint("Dq"), pre.bigint("Qinv"))
        if any(g is not None and g != c for g, c in zip(given, (dp, dq, qinv), strict=True)):
            raise ValueError("rsa precomputed values do not match")
        if pre.array("CRTValues"):
            raise ValueError("multi-prime rsa")
    key = rsa.RSAPrivateNumbers(p, q, d, dp, dq, qinv, rsa.RSAPublicNumbers(e, n)).private_key(
        unsafe_skip_rsa_key_validation=True)
    pad, probe = padding.PKCS1v15(), b"strongroom transit restore"
    key.public_key().verify(key.sign(probe, pad, hashes.SHA256()), probe, pad, hashes.SHA256())  # raises if broken
    return key


# -- export -----------------------------------------------------------------------------------------

EXPORT_TYPES = ("encryption-key", "signing-key", "hmac-key", "public-key", "certificate-chain")
EXPORT_FORMATS = ("", "raw", "der", "pem")
_RAW_ONLY = "unknown format for HMAC key; supported values are `` or `raw`"
_RSA_FORMATS = "unknown key format for rsa key; supported values are ``, `der`, or `pem`"
_EC_FORMATS = "unknown key format for ec key; supported values are ``, `der`, or `pem`"


def _pem(label: str, der: bytes) -> str:
    body = base64.b64encode(der).decode()
    lines = "".join(body[i:i + 64] + "\n" for i in range(0, len(body), 64))
    return f"-----BEGIN {label}-----\n{lines}-----END {label}-----\n"


def _pem_blocks(text: str) -> list[bytes]:
    return [base64.b64decode("".join(b.split())) for b in re.findall(r"-----BEGIN [^-]+-----(.*?)-----END", text, re.S)]


def _encode(der: bytes, label: str, fmt: str, *, trim: bool) -> str:
    return base64.b64encode(der).decode() if fmt == "der" else _pem(label, der).strip() if trim else _pem(label, der)


def _private_der(private: Any, traditional: bool) -> bytes:
    fmt = serialization.PrivateFormat.TraditionalOpenSSL if traditional else serialization.PrivateFormat.PKCS8
    return bytes(private.private_bytes(serialization.Encoding.DER, fmt, serialization.NoEncryption()))


def export_key(material: KeyMaterial, kind: str, fmt: str, *, certificate_chain: str = "") -> str:
    """Return one version's key as Vault's ``export/:kind`` encodes it in format ``fmt``.

    A version imported without its private half exports an empty string for private kinds, as in Vault.
    Secret: the result is key material, for the export endpoint only.

    Raises:
        InvalidRequest: a format or kind that does not apply to the key type (Vault's messages).
    """
    kt = material.key_type
    private = material.private_key
    if kind == "hmac-key" or (kind == "encryption-key" and kt.symmetric_aead):
        if fmt in ("der", "pem"):
            raise InvalidRequest(_RAW_ONLY)
        src = material.reveal_key() if kind == "encryption-key" or kt is KeyType.HMAC else material.reveal_hmac_key()
        return base64.b64encode(src).decode()
    if (kind == "signing-key" and kt.ecdsa) or (kind in ("encryption-key", "signing-key") and kt.rsa):
        if fmt == "raw":
            raise InvalidRequest(_RSA_FORMATS if kt.rsa else _EC_FORMATS)
        if private is None:
            return ""
        # Default: PKCS#1 / SEC 1 PEM; der and pem: PKCS#8. Vault trims EC PEM but not RSA PEM.
        if fmt == "":
            label = "RSA PRIVATE KEY" if kt.rsa else "EC PRIVATE KEY"
            return _encode(_private_der(private, True), label, "pem", trim=not kt.rsa)
        return _encode(_private_der(private, False), "PRIVATE KEY", fmt, trim=not kt.rsa)
    if kind == "signing-key" and kt is KeyType.ED25519:
        if not material.reveal_key():
            return ""
        if fmt in ("", "raw"):
            return base64.b64encode(material.reveal_key()).decode()
        return _encode(_private_der(private, False), "PRIVATE KEY", fmt, trim=True)
    if kind == "public-key" and kt.asymmetric and material.public_key is not None:
        if fmt == "raw" and kt is not KeyType.ED25519:
            raise InvalidRequest(_RSA_FORMATS if kt.rsa else _EC_FORMATS)
        if kt is KeyType.ED25519 and fmt in ("", "raw"):
            return material.public_key_text().strip()
        der = material.public_key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        return _encode(der, "PUBLIC KEY", fmt or "pem", trim=not kt.rsa)
    if kind == "certificate-chain":
        if not certificate_chain:
            raise InvalidRequest("selected key version does not have a certificate chain imported")
        return certificate_chain
    raise InvalidRequest(f"unknown key type {kt.value} for export type {kind}")
