"""The text form of a biscuit token in ``X-Vault-Token``: ``sb.`` + biscuit base64url (docs/spec/tokens.md s. 1).

Vault's tokens start with ``hvs.``/``hvb.``/``hvr.`` (``s.``/``b.``/``r.`` before Vault 1.10), strongroom's
store tokens with ``hvs.``, and a custom store-token id may not contain a ``.``; base64url never does. So the
prefix classifies a header by its first three bytes, with no parse attempt on either kind of token.
"""

from __future__ import annotations

from strongroom.errors import PermissionDenied

TOKEN_PREFIX = "sb."
MAX_TOKEN_CHARS = 8192
"""Longest biscuit text accepted after the prefix; checked before any decoding."""
MAX_BLOCKS = 32
"""Most blocks accepted in one token: verification costs one signature check per block."""

_BASE64URL = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=")


def is_biscuit_token(token: str) -> bool:
    """Whether ``token`` is meant as a biscuit (by its prefix only; nothing is verified)."""
    return token.startswith(TOKEN_PREFIX)


def biscuit_text(token: str) -> str:
    """Return the base64url biscuit inside ``token``.

    Raises:
        PermissionDenied: no ``sb.`` prefix, too long, empty, or a character outside base64url. The
            exception carries no detail, as every IAM refusal.
    """
    if not isinstance(token, str) or not token.startswith(TOKEN_PREFIX):
        raise PermissionDenied()
    body = token[len(TOKEN_PREFIX):]
    if not body or len(body) > MAX_TOKEN_CHARS or not _BASE64URL.issuperset(body):
        raise PermissionDenied()
    return body


def is_library_failure(exc: BaseException) -> bool:
    """Whether ``exc`` is a failure the biscuit library raised (or bad input caused), not the interpreter's.

    pyo3 turns a Rust panic into ``PanicException``, a ``BaseException``: a malformed token must not reach
    a client as a 500 or crash the CLI with a traceback, so it counts as a library failure.
    """
    return isinstance(exc, Exception) or type(exc).__name__ == "PanicException"


def token_from_biscuit(base64url: str) -> str:
    """Return the ``X-Vault-Token`` text for a biscuit serialised by ``to_base64``."""
    return TOKEN_PREFIX + base64url
