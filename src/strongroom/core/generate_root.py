"""Root-token encoding for the generate-root ceremony (Vault's ``roottoken`` package) and the issuer type.

The ceremony itself (a quorum of unseal-key holders creates a new root token; no token needed, the
authority is the quorum) is :class:`~strongroom.core.stored_generate_root.StoredRootGeneration`, with its
progress in storage for the platform as for tenants; ``sys/generate-root`` runs it. The token leaves the
server only encoded: XORed with the OTP (Vault >= 1.10: the OTP is as long as the token, and the result is
unpadded standard base64), or PGP-encrypted to ``pgp_key`` (the token text is the plaintext; standard
base64 of the binary message).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable

from strongroom.core.namespace import NamespaceKeys
from strongroom.errors import InvalidRequest
from strongroom.storage.base import Transaction

TokenIssuer = Callable[[Transaction, NamespaceKeys], Awaitable[str]]
"""Creates a root token in the given transaction and returns its text (engines/bootstrap provides it)."""


def encode_token(token: str, otp: str) -> str:
    """Return unpadded standard base64 of ``token`` XOR ``otp`` (Vault's ``roottoken.EncodeToken``).

    Raises:
        InvalidRequest: the OTP and the token differ in length.
    """
    token_bytes, otp_bytes = token.encode(), otp.encode()
    if len(token_bytes) != len(otp_bytes):
        raise InvalidRequest("OTP string has incorrect length")
    xored = bytes(a ^ b for a, b in zip(token_bytes, otp_bytes, strict=True))
    return base64.b64encode(xored).decode().rstrip("=")


def decode_token(encoded: str, otp: str) -> str:
    """Invert :func:`encode_token` (what ``vault operator generate-root -decode`` does).

    Raises:
        InvalidRequest: not base64, or the lengths differ.
    """
    try:
        xored = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequest("error decoding base64'd token") from None
    otp_bytes = otp.encode()
    if len(xored) != len(otp_bytes):
        raise InvalidRequest("length of byte slices is not equivalent")
    try:
        return bytes(a ^ b for a, b in zip(xored, otp_bytes, strict=True)).decode()
    except UnicodeDecodeError:
        raise InvalidRequest("the decoded token is not text: wrong OTP?") from None
