"""Transit HMACs (Vault's ``hmac/`` and ``verify/`` with ``hmac``): HMAC over the version's HMAC key.

Every transit key version has an HMAC key: for keys of type ``hmac`` it is the key itself, for every other
type it is the separate per-version ``hmac_key`` Vault generates with the version (so HMACs never use the
encryption or signing key). The MAC is plain RFC 2104 HMAC with one of Vault's hash algorithms; the engine
formats it as ``vault:vN:<base64>``. Verification compares in constant time.
"""

from __future__ import annotations

import hmac

from strongroom.crypto.transit.digest import HashAlgorithm
from strongroom.crypto.transit.keytypes import KeyType
from strongroom.crypto.transit.material import KeyMaterial
from strongroom.errors import InvalidRequest


def hmac_key(material: KeyMaterial) -> bytes:
    """Return the key ``hmac/`` uses for this version (the key itself for type ``hmac``).

    Raises:
        InvalidRequest: the version has no HMAC key (Vault's ``no HMAC key exists for that key version``).
    """
    key = material.reveal_key() if material.key_type is KeyType.HMAC else material.reveal_hmac_key()
    if not key:
        raise InvalidRequest("no HMAC key exists for that key version")
    return key


def compute(key: bytes, algorithm: HashAlgorithm, data: bytes) -> bytes:
    """Return ``HMAC(key, data)`` with ``algorithm``.

    Raises:
        InvalidRequest: ``algorithm`` is ``none`` (Vault: ``algorithm cannot be none``).
    """
    if algorithm.is_none:
        raise InvalidRequest("algorithm cannot be none")
    # One call into OpenSSL's one-shot HMAC: no Python-level hash objects on the hot path.
    return hmac.digest(key, data, algorithm.hashlib_name)


def verify(key: bytes, algorithm: HashAlgorithm, data: bytes, mac: bytes) -> bool:
    """Return whether ``mac`` is ``HMAC(key, data)``, compared in constant time.

    Raises:
        InvalidRequest: ``algorithm`` is ``none``.
    """
    return hmac.compare_digest(compute(key, algorithm, data), mac)
