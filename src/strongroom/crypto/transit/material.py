"""The secret material of one transit key version, its generation and its storage encoding.

A :class:`KeyMaterial` holds what Vault's ``KeyEntry`` holds: the symmetric or HMAC key bytes, the
version's own HMAC key (Vault gives every version one; it keys ``hmac`` and convergent nonces), and for
asymmetric types the private key (or only the public key after a public-key import). Ed25519 keys keep
Go's 64-byte form (seed followed by public key) because Vault derives per-context Ed25519 keys from all
64 bytes.

Material never appears in a repr and refuses pickling. :meth:`KeyMaterial.serialize` is the form the
engine wraps with the namespace KEK before it is stored: JSON with base64 fields, asymmetric keys as
PKCS#8 / SubjectPublicKeyInfo DER.
"""

from __future__ import annotations

import base64
from typing import Any, NoReturn

import orjson
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from strongroom.crypto.random import random_bytes
from strongroom.crypto.transit.keytypes import HMAC_MAX_KEY_BYTES, HMAC_MIN_KEY_BYTES, KeyType
from strongroom.errors import CorruptRecord, InvalidRequest

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey

_CURVES: dict[KeyType, ec.EllipticCurve] = {
    KeyType.ECDSA_P256: ec.SECP256R1(),
    KeyType.ECDSA_P384: ec.SECP384R1(),
    KeyType.ECDSA_P521: ec.SECP521R1(),
}


def curve_of(key_type: KeyType) -> ec.EllipticCurve:
    """Return the curve of an ECDSA key type.

    Raises:
        KeyError: ``key_type`` is not an ECDSA type.
    """
    return _CURVES[key_type]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(text: Any) -> bytes:
    if not isinstance(text, str):
        raise CorruptRecord("transit key material field is not a string")
    return base64.b64decode(text, validate=True)


class KeyMaterial:
    """Secret material of one key version (immutable once built; safe to cache and share)."""

    __slots__ = ("_hmac_key", "_key", "_private", "_public", "cache", "key_type")

    def __init__(
        self,
        key_type: KeyType,
        *,
        key: bytes = b"",
        hmac_key: bytes = b"",
        private: PrivateKey | None = None,
        public: PublicKey | None = None,
    ) -> None:
        self.key_type = key_type
        self._key = key
        self._hmac_key = hmac_key
        self._private = private
        if public is None and private is not None:
            public = private.public_key()
        self._public = public
        # Primitive objects built from this material (AEAD instances, derived keys): pure functions of
        # the material, so they live and die with it.
        self.cache: dict[Any, Any] = {}

    def __repr__(self) -> str:
        return f"KeyMaterial({self.key_type.value}, <redacted>)"

    def __reduce__(self) -> NoReturn:
        raise TypeError("key material cannot be pickled")

    def __reduce_ex__(self, protocol: object) -> NoReturn:
        raise TypeError("key material cannot be pickled")

    # -- generation ---------------------------------------------------------------------------------

    @classmethod
    def generate(cls, key_type: KeyType, key_size: int = 0) -> KeyMaterial:
        """Return fresh material of ``key_type`` (``key_size``: bytes of an hmac key, default 32).

        Raises:
            InvalidRequest: an hmac ``key_size`` outside Vault's 32..512 bytes.
        """
        hmac_key = random_bytes(32)
        if key_type.symmetric_aead:
            return cls(key_type, key=random_bytes(key_type.symmetric_key_bytes), hmac_key=hmac_key)
        if key_type is KeyType.HMAC:
            size = key_size or 32
            if not HMAC_MIN_KEY_BYTES <= size <= HMAC_MAX_KEY_BYTES:
                raise InvalidRequest(
                    f"invalid key size for HMAC key, must be between {HMAC_MIN_KEY_BYTES} and "
                    f"{HMAC_MAX_KEY_BYTES} bytes"
                )
            key = random_bytes(size)
            # Vault keeps the version's HMAC key equal to the key itself for hmac keys.
            return cls(key_type, key=key, hmac_key=key)
        if key_type is KeyType.ED25519:
            private = ed25519.Ed25519PrivateKey.generate()
            return cls.from_ed25519(private, hmac_key=hmac_key)
        if key_type.ecdsa:
            return cls(key_type, hmac_key=hmac_key, private=ec.generate_private_key(_CURVES[key_type]))
        return cls(
            key_type,
            hmac_key=hmac_key,
            private=rsa.generate_private_key(public_exponent=65537, key_size=key_type.rsa_bits),
        )

    @classmethod
    def from_ed25519(cls, private: ed25519.Ed25519PrivateKey, *, hmac_key: bytes) -> KeyMaterial:
        """Material for an Ed25519 private key, kept in Go's 64-byte seed-plus-public form."""
        seed = private.private_bytes_raw()
        public = private.public_key().public_bytes_raw()
        return cls(KeyType.ED25519, key=seed + public, hmac_key=hmac_key, private=private)

    # -- accessors ------------------------------------------------------------------------------------

    @property
    def has_private(self) -> bool:
        """False for a version imported as a public key only (it can verify and encrypt, not sign)."""
        if self.key_type.asymmetric:
            return self._private is not None
        return bool(self._key)

    def reveal_key(self) -> bytes:
        """The symmetric, HMAC or 64-byte Ed25519 key bytes (empty for RSA/ECDSA)."""
        return self._key

    def reveal_hmac_key(self) -> bytes:
        """The version's HMAC key (keys ``hmac`` operations and convergent nonces)."""
        return self._hmac_key

    @property
    def private_key(self) -> PrivateKey | None:
        """The asymmetric private key, if this version has one."""
        return self._private

    @property
    def public_key(self) -> PublicKey | None:
        """The asymmetric public key (``None`` for symmetric types)."""
        return self._public

    def public_key_text(self) -> str:
        """The public key as Vault shows it: base64 raw key for Ed25519, PEM SubjectPublicKeyInfo else."""
        public = self._public
        if public is None:
            return ""
        if isinstance(public, ed25519.Ed25519PublicKey):
            return _b64(public.public_bytes_raw())
        return public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()

    # -- storage encoding -----------------------------------------------------------------------------

    def serialize(self) -> bytes:
        """Return the storage encoding (secret: the engine wraps it with the KEK before storing it)."""
        doc: dict[str, str] = {"t": self.key_type.value, "h": _b64(self._hmac_key)}
        if self._key:
            doc["k"] = _b64(self._key)
        if self._private is not None and not isinstance(self._private, ed25519.Ed25519PrivateKey):
            doc["p"] = _b64(
                self._private.private_bytes(
                    serialization.Encoding.DER,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
            )
        elif self._private is None and self._public is not None:
            doc["u"] = _b64(
                self._public.public_bytes(
                    serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
                )
            )
        return orjson.dumps(doc)

    @classmethod
    def deserialize(cls, data: bytes) -> KeyMaterial:
        """Rebuild material from :meth:`serialize` output (only for authenticated, self-written data).

        Raises:
            CorruptRecord: the encoding is damaged or names another type than its key.
        """
        try:
            doc = orjson.loads(data)
            key_type = KeyType(doc["t"])
            key = _unb64(doc["k"]) if "k" in doc else b""
            hmac_key = _unb64(doc["h"])
            private: Any = None
            public: Any = None
            if key_type is KeyType.ED25519 and key:
                private = ed25519.Ed25519PrivateKey.from_private_bytes(key[:32])
            elif "p" in doc:
                # Our own stored material, authenticated by the KEK's AEAD before it gets here: OpenSSL's
                # full RSA consistency check would cost ~0.7 s per RSA-4096 cache miss for nothing.
                private = serialization.load_der_private_key(
                    _unb64(doc["p"]), password=None, unsafe_skip_rsa_key_validation=True
                )
            if "u" in doc:
                public = serialization.load_der_public_key(_unb64(doc["u"]))
        except (ValueError, KeyError, TypeError, orjson.JSONDecodeError) as exc:
            raise CorruptRecord("transit key material is damaged") from exc
        material = cls(key_type, key=key, hmac_key=hmac_key, private=private, public=public)
        material.check()
        return material

    def check(self) -> None:
        """Verify the key objects match the type (a swapped or damaged record must not be used).

        Raises:
            CorruptRecord: the material does not fit its type.
        """
        kt = self.key_type
        public = self._public
        ok = True
        if kt.symmetric_aead:
            ok = len(self._key) == kt.symmetric_key_bytes
        elif kt is KeyType.HMAC:
            ok = HMAC_MIN_KEY_BYTES <= len(self._key) <= HMAC_MAX_KEY_BYTES
        elif kt is KeyType.ED25519:
            ok = isinstance(public, ed25519.Ed25519PublicKey) and (not self._key or len(self._key) == 64)
        elif kt.ecdsa:
            ok = isinstance(public, ec.EllipticCurvePublicKey) and public.curve.name == _CURVES[kt].name
        elif kt.rsa:
            ok = isinstance(public, rsa.RSAPublicKey) and public.key_size == kt.rsa_bits
        if not ok:
            raise CorruptRecord("transit key material does not match its key type")
