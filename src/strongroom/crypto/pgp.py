"""OpenPGP encryption of unseal/rekey key shares, as Vault does for ``pgp_keys``.

What Vault does (``helper/pgpkeys`` and ``vault/init.go``/``rekey.go``, confirmed against OpenBao 2.7.2
with gpg): each ``pgp_keys`` entry is standard base64 of a binary (transferable) public key; the plaintext
encrypted to it is the lowercase HEX TEXT of the share; sys/init and sys/rekey then return the encrypted
message's bytes as hex in ``keys`` and as base64 in ``keys_base64``; fingerprints are the primary key's
fingerprint in lowercase hex. :func:`encrypt_shares` returns exactly those messages and fingerprints.

Where we differ, on purpose: ASCII-armored public keys are accepted too (Vault's CLI converts armored files
to base64 before sending, its server does not); a key block holding a secret key is refused (a server has
no business receiving private keys); a keyring of several keys is refused instead of silently using the
first; a key that cannot encrypt is refused when parsed, not at encryption time. ``keybase:`` entries are
expanded by Vault's CLI, never by the server; we reject them with a message that says so.
"""

from __future__ import annotations

import binascii
from collections.abc import Sequence
from typing import Final

import pysequoia

from strongroom.errors import CryptoError, InvalidRequest

__all__ = ["PgpPublicKey", "encrypt", "encrypt_armored", "encrypt_shares", "parse_public_key"]

_ARMOR_BEGIN: Final = "-----BEGIN PGP "
_PUBLIC_KEY_PACKET: Final = 6
_SECRET_PACKETS: Final = frozenset({5, 7})  # secret key, secret subkey
_MAX_DETAIL: Final = 160


class PgpPublicKey:
    """A parsed OpenPGP certificate that can receive encrypted messages. Public data only.

    ``fingerprint`` is the primary key's fingerprint, lowercase hex, as Vault reports ``pgp_fingerprints``.
    Build instances with :func:`parse_public_key`.
    """

    __slots__ = ("_cert", "fingerprint")

    def __init__(self, cert: pysequoia.Cert) -> None:
        self._cert = cert
        self.fingerprint: str = str(cert.fingerprint).lower()

    def __repr__(self) -> str:
        return f"PgpPublicKey(fingerprint={self.fingerprint!r})"


def _first_line(error: Exception) -> str:
    # pysequoia's messages carry a multi-line Rust backtrace; the first line is the useful part.
    return str(error).strip().splitlines()[0][:_MAX_DETAIL] if str(error).strip() else "unknown error"


def _packet_tags(data: bytes) -> list[int] | None:
    """Return the tags of the packets in ``data`` (RFC 4880 section 4.2), or None if framing is broken.

    Only the framing is read, never the contents: enough to refuse secret-key packets and keyrings before
    the parser sees them (sequoia warns, and would keep the secret, when given secret keys).
    """
    tags: list[int] = []
    pos = 0
    while pos < len(data):
        header = data[pos]
        if not header & 0x80:
            return None
        if header & 0x40:  # new-format header: 1-, 2- or 5-octet length
            tag = header & 0x3F
            first = data[pos + 1] if pos + 1 < len(data) else 256
            if first < 192:
                length, pos = first, pos + 2
            elif first < 224 and pos + 2 < len(data):
                length, pos = ((first - 192) << 8) + data[pos + 2] + 192, pos + 3
            elif first == 255 and pos + 6 <= len(data):
                length, pos = int.from_bytes(data[pos + 2 : pos + 6], "big"), pos + 6
            else:  # truncated, or a partial body length, which never frames key packets
                return None
        else:  # old-format header: the low two bits give a 1-, 2- or 4-octet length
            tag = (header >> 2) & 0x0F
            size = 1 << (header & 0x03)
            if size == 8 or pos + 1 + size > len(data):  # 8 = "indeterminate length", not used for keys
                return None
            length, pos = int.from_bytes(data[pos + 1 : pos + 1 + size], "big"), pos + 1 + size
        pos += length
        if pos > len(data):
            return None
        tags.append(tag)
    return tags


def _decode_base64(text: str) -> bytes:
    # Go's base64.StdEncoding (what Vault uses) skips CR and LF; anything else stray is an error.
    compact = text.replace("\r", "").replace("\n", "")
    try:
        return binascii.a2b_base64(compact.encode("ascii", errors="replace"), strict_mode=True)
    except binascii.Error:
        raise InvalidRequest("error decoding given PGP key: not valid base64") from None


def _dearmor(text: str) -> bytes:
    """Decode an ASCII-armored block (RFC 4880 section 6.2) to binary; the CRC line is ignored."""
    lines = [line.strip() for line in text.splitlines()]
    if "PRIVATE KEY BLOCK" in lines[0]:
        raise InvalidRequest("given PGP key is a secret key; send the public key only")
    end = next((i for i, line in enumerate(lines) if line.startswith("-----END PGP ")), None)
    if end is None:
        raise InvalidRequest("error parsing given PGP key: armor has no END line")
    body = lines[1:end]
    # Armor headers ("Comment: ...") end at the first blank line.
    if "" in body:
        body = body[body.index("") + 1 :]
    body = [line for line in body if line and not (line.startswith("=") and len(line) == 5)]
    return _decode_base64("".join(body))


def parse_public_key(entry: str) -> PgpPublicKey:
    """Parse one ``pgp_keys`` entry: base64 of a binary public key, or an ASCII-armored public key block.

    Raises ``InvalidRequest`` for ``keybase:`` entries, undecodable base64 or armor, anything that is not
    exactly one OpenPGP public key, secret key material, and keys with no usable encryption (sub)key.
    Messages never echo the entry.
    """
    text = entry.strip()
    if text.startswith("keybase:"):
        raise InvalidRequest(
            "keybase: PGP keys are not supported by the server; "
            "send the base64-encoded public key (Vault's CLI fetches keybase keys itself)"
        )
    data = _dearmor(text) if text.startswith(_ARMOR_BEGIN) else _decode_base64(text)
    tags = _packet_tags(data)
    if tags and _SECRET_PACKETS & set(tags):
        raise InvalidRequest("given PGP key is a secret key; send the public key only")
    if not tags or tags[0] != _PUBLIC_KEY_PACKET:
        raise InvalidRequest("error parsing given PGP key: not an OpenPGP public key")
    if tags.count(_PUBLIC_KEY_PACKET) > 1:
        raise InvalidRequest("given PGP key holds more than one key; send exactly one public key")
    try:
        cert = pysequoia.Cert.from_bytes(data)
    except (RuntimeError, ValueError) as error:
        raise InvalidRequest(f"error parsing given PGP key: {_first_line(error)}") from None
    key = PgpPublicKey(cert)
    try:
        # A trial encryption is the one reliable test that sequoia finds a valid, unexpired, unrevoked
        # encryption-capable key; failing here gives a 400 at request time instead of a 500 mid-init.
        pysequoia.encrypt(b"", recipients=[cert], armor=False)
    except (RuntimeError, ValueError) as error:
        raise InvalidRequest(
            f"PGP key {key.fingerprint} cannot be used for encryption: {_first_line(error)}"
        ) from None
    return key


def encrypt(data: bytes, key: PgpPublicKey) -> bytes:
    """Encrypt ``data`` to ``key`` and return a binary (unarmored) OpenPGP message.

    Raises ``CryptoError`` if encryption fails, which after a successful :func:`parse_public_key` means the
    key became unusable (for example it expired) in between.
    """
    try:
        message: bytes = pysequoia.encrypt(data, recipients=[key._cert], armor=False)
    except (RuntimeError, ValueError):
        raise CryptoError(f"PGP encryption to key {key.fingerprint} failed") from None
    return message


def encrypt_armored(data: bytes, keys: Sequence[PgpPublicKey]) -> bytes:
    """Encrypt ``data`` in ONE ASCII-armored OpenPGP message that each of ``keys`` can decrypt alone.

    For files handed to people (the offline platform ceremony): ``gpg --decrypt FILE`` prints ``data``.
    Raises ``ValueError`` for an empty ``keys`` and ``CryptoError`` if encryption fails (see
    :func:`encrypt`).
    """
    if not keys:
        raise ValueError("encrypt_armored needs at least one recipient")
    try:
        message: bytes = pysequoia.encrypt(data, recipients=[key._cert for key in keys], armor=True)
    except (RuntimeError, ValueError):
        names = ", ".join(key.fingerprint for key in keys)
        raise CryptoError(f"PGP encryption to key(s) {names} failed") from None
    return message


def encrypt_shares(shares: Sequence[bytes], keys: Sequence[str]) -> tuple[list[bytes], list[str]]:
    """Encrypt ``shares[i]`` to ``keys[i]`` as Vault does and return (messages, fingerprints).

    The plaintext of each message is the share's lowercase hex text, so that ``gpg -d`` prints what a
    custodian pastes into ``vault operator unseal``. Put ``message.hex()`` in ``keys`` and base64 of it in
    ``keys_base64``. Raises ``InvalidRequest`` if the counts differ or a key does not parse (see
    :func:`parse_public_key`), ``CryptoError`` if encryption fails.
    """
    if len(shares) != len(keys):
        raise InvalidRequest("mismatch between number items to encrypt and number of PGP keys")
    # Parse every key before encrypting anything, so a bad last key fails before any work is done.
    parsed = [parse_public_key(entry) for entry in keys]
    messages = [encrypt(share.hex().encode("ascii"), key) for share, key in zip(shares, parsed, strict=True)]
    return messages, [key.fingerprint for key in parsed]
