"""Pieces every transit endpoint shares: base64 as Go decodes it, the ``vault:vN:`` prefix, batches.

Vault reports errors with Go's own wording (``illegal base64 data at input byte 4``), and clients and
tests match on those strings, so the helpers here reproduce them. Batches follow Vault's rules: each
item fails on its own with an ``error`` string, and the response status is 400 if any item failed with a
user error (500 for an internal one), or the caller's ``partial_failure_response_code`` when some items
succeeded (deliberately only 200..599, where Vault takes 1..599: see :func:`override_status`).
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from strongroom.engines.framework import Response
from strongroom.errors import InvalidRequest, StrongroomError

PREFIX = "vault:v"
MAX_BATCH_ITEMS = 100_000
"""Default cap on ``batch_input`` items; the mount's ``max_batch_items`` tune option lowers or raises it."""

_B64_ALPHABET = re.compile(r"[^A-Za-z0-9+/=\r\n]")
# One optional sign and at most 18 ASCII digits: what int() surely parses (str.isdigit also accepts
# superscripts and other scripts' digits, some of which int() refuses) and what fits Go's int64.
_INT_TEXT = re.compile(r"\s*[+-]?[0-9]{1,18}\s*", re.ASCII)

MIN_OVERRIDE_STATUS = 200
MAX_OVERRIDE_STATUS = 599
"""Bounds of ``partial_failure_response_code``: final HTTP statuses only. Vault accepts 1..599, but a
status below 100 is not HTTP at all (Go's server panics on it; the ASGI server aborts the process) and
a 1xx is an interim response that cannot carry the batch results."""


def _std_b64(text: str) -> bytes:
    """Go's ``StdEncoding.DecodeString``: strict alphabet and padding, but CR and LF skipped anywhere.

    Raises:
        binascii.Error, ValueError: not standard base64.
    """
    try:
        return binascii.a2b_base64(text, strict_mode=True)
    except (binascii.Error, ValueError):
        # Slow path only: a ciphertext read from a file with its trailing newline still decodes, as in Vault.
        if "\n" not in text and "\r" not in text:
            raise
    return binascii.a2b_base64(text.replace("\r", "").replace("\n", ""), strict_mode=True)


def b64decode(text: str) -> bytes:
    """Decode standard base64 (padding required) as Go's ``StdEncoding``.

    Raises:
        InvalidRequest: ``illegal base64 data at input byte N`` as Go reports it.
    """
    try:
        return _std_b64(text)
    except (binascii.Error, ValueError):
        raise InvalidRequest(f"illegal base64 data at input byte {_bad_byte(text)}") from None


def _bad_byte(text: str) -> int:
    """Best effort at the offset Go names: the first byte outside the alphabet, else where padding broke."""
    match = _B64_ALPHABET.search(text)
    if match is not None:
        return match.start()
    pad = text.find("=")
    if pad >= 0:
        return pad
    return len(text) - len(text) % 4


def b64encode(data: bytes) -> str:
    """Standard base64 with padding, no newline."""
    return binascii.b2a_base64(data, newline=False).decode()


def version_prefix(version: int) -> str:
    """``vault:v<N>:``, the prefix of ciphertexts, signatures and HMACs."""
    return f"{PREFIX}{version}:"


def split_versioned(value: str, what: str = "ciphertext") -> tuple[int, str]:
    """Split ``vault:vN:payload`` into ``(N, payload)``.

    Raises:
        InvalidRequest: Vault's ``invalid <what>: ...`` messages for each malformation.
    """
    if not value.startswith(PREFIX):
        raise InvalidRequest(f"invalid {what}: no prefix")
    rest = value[len(PREFIX):]
    sep = rest.find(":")
    if sep < 0:
        raise InvalidRequest(f"invalid {what}: wrong number of fields")
    number = rest[:sep]
    digits = number[1:] if number[:1] in ("+", "-") else number  # Go's Atoi: at most one sign
    if not digits.isascii() or not digits.isdigit() or len(number) > 18:
        raise InvalidRequest(f"invalid {what}: version number could not be decoded")
    return int(number), rest[sep + 1:]


def decode_payload(payload: str, what: str = "ciphertext") -> bytes:
    """Base64-decode the part after the prefix.

    Raises:
        InvalidRequest: ``invalid <what>: could not decode base64``.
    """
    try:
        return _std_b64(payload)
    except (binascii.Error, ValueError):
        raise InvalidRequest(f"invalid {what}: could not decode base64") from None


def batch_items(raw: Any, limit: int = MAX_BATCH_ITEMS) -> list[Mapping[str, Any]] | None:
    """Return ``batch_input`` as a list of objects, or ``None`` when the request has none.

    Raises:
        InvalidRequest: not a list of objects, empty, or more than ``limit`` items.
    """
    if raw is None:
        return None
    if not isinstance(raw, list) or not all(isinstance(item, Mapping) for item in raw):
        raise InvalidRequest("failed to parse batch input: batch_input must be a list of objects")
    if not raw:
        raise InvalidRequest("missing batch input to process")
    check_batch_size(len(raw), limit)
    return raw


def check_batch_size(count: int, limit: int) -> None:
    """Refuse a batch of ``count`` items above ``limit``.

    Raises:
        InvalidRequest: ``count > limit``.
    """
    if count > limit:
        raise InvalidRequest(f"batch_input has {count} items; the limit on this mount is {limit}")


def item_str(item: Mapping[str, Any], name: str) -> str:
    """A string field of a batch item (missing or null: empty).

    Raises:
        InvalidRequest: the field has another type.
    """
    value = item.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidRequest(f"failed to parse batch input: '{name}' must be a string")
    return value


def item_int(item: Mapping[str, Any], name: str) -> int:
    """An integer field of a batch item (numbers or numeric strings; missing or null: 0).

    Raises:
        InvalidRequest: the field is not an integer.
    """
    value = item.get(name)
    if value is None or value == "":
        return 0
    if isinstance(value, bool):
        raise InvalidRequest(f"failed to parse batch input: '{name}' must be an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and _INT_TEXT.fullmatch(value):
        return int(value)
    raise InvalidRequest(f"failed to parse batch input: '{name}' must be an integer")


@dataclass
class BatchResult:
    """Per-item results of a batch and whether any item failed."""

    results: list[dict[str, Any]]
    user_error: bool = False
    internal_error: bool = False
    success: bool = False

    @classmethod
    def sized(cls, n: int) -> BatchResult:
        """``n`` empty result objects."""
        return cls([{} for _ in range(n)])

    def fail(self, i: int, exc: StrongroomError | str) -> None:
        """Record a user error for item ``i``."""
        self.results[i] = {"error": exc if isinstance(exc, str) else exc.message}
        self.user_error = True

    def ok(self, i: int, values: dict[str, Any]) -> None:
        """Record a successful item ``i``."""
        self.results[i] = values
        self.success = True

    def references(self, items: Sequence[Mapping[str, Any]]) -> None:
        """Echo each item's ``reference`` (Vault always includes it in batch results)."""
        for result, item in zip(self.results, items, strict=True):
            ref = item.get("reference")
            if isinstance(ref, bool) or not isinstance(ref, (str, int)):
                ref = ""
            # Vault decodes weakly: a numeric reference comes back as its decimal string.
            result["reference"] = str(ref)

    def response(self, partial_failure_code: int | None) -> Response:
        """Return the envelope with ``batch_results`` and Vault's status rules."""
        resp = Response(data={"batch_results": self.results})
        if self.user_error or self.internal_error:
            code = 400 if self.user_error else 500
            if partial_failure_code is not None and self.success:
                code = override_status(resp, partial_failure_code, code)
            resp.status = code
        return resp


def override_status(resp: Response, wanted: int, default: int) -> int:
    """Return ``wanted`` if it is an acceptable ``partial_failure_response_code``, else ``default``.

    An unacceptable code adds Vault's warning to ``resp``. Deliberate difference from Vault, which
    accepts 1..599: only final statuses (200..599) are taken; anything else could not be sent as an
    HTTP response at all (see :data:`MIN_OVERRIDE_STATUS`).
    """
    if MIN_OVERRIDE_STATUS <= wanted <= MAX_OVERRIDE_STATUS:
        return wanted
    resp.warnings.append(
        f"invalid HTTP response code override from partial_failure_response_code, reverting to {default}"
    )
    return default
