"""``random[/:source][/:bytes]`` and ``hash[/:algorithm]``: key-less tools of the transit engine.

Both follow OpenBao's ``path_random.go`` (with its shared ``HandleRandomAPI``) and ``path_hash.go``,
including how the optional path parts are read. Vault's pattern is
``random(/<name>)?(/<anything>)?``: the first part counts as a source only if it is a valid name, and
the byte count in the path is only read when a source part exists; ``random/24`` is 24 bytes because a
first part that is not a known source is parsed as the count. Body parameters named like the path parts
(``source``, ``urlbytes``, ``urlalgorithm``) are ignored with OpenBao's warning: the path decides, so
path-based ACLs can restrict both the source and the size.

Sources: ``platform``, ``seal`` and ``all`` all read the OS CSPRNG (this server has no entropy
augmentation); ``seal`` carries OpenBao's warning saying so, as OpenBao does without augmentation.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from strongroom.crypto.transit import digest, random_data
from strongroom.engines.context import Context
from strongroom.engines.framework import Operation, Request, Response, Route
from strongroom.engines.transit.common import b64decode
from strongroom.errors import InvalidRequest

_NAME = r"\w(?:[\w\-.]*\w)?"
# Vault's regexes, matched against the path inside the mount (Go's \w is ASCII-only, hence re.ASCII).
_RANDOM_PATH = re.compile(rf"random(?:/(?P<source>{_NAME}))?(?:/(?P<urlbytes>.+))?\Z", re.ASCII)
_HASH_PATH = re.compile(r"hash(?:/(?P<urlalgorithm>.+))?\Z", re.ASCII)

_SOURCES = ("", "platform", "seal", "all")
_NO_AUGMENTATION = "no seal/entropy augmentation available, using platform entropy source"
_INT64 = 2**63


def _go_quote(text: str) -> str:
    """Approximately Go's ``%q`` (a double-quoted, escaped string) for error messages."""
    return json.dumps(text[:100], ensure_ascii=False)


def _atoi(text: str) -> int:
    """Parse a byte count from the path as Go's ``strconv.Atoi`` does (optional sign, ASCII digits).

    Raises:
        InvalidRequest: OpenBao's ``error parsing url-set byte count: strconv.Atoi: ...`` message.
    """
    body = text[1:] if text[:1] in ("+", "-") else text
    if not body or not body.isascii() or not body.isdigit():
        reason = "invalid syntax"
    elif len(body) > 19 or not -_INT64 <= int(text) < _INT64:
        reason = "value out of range"
    else:
        return int(text)
    raise InvalidRequest(f"error parsing url-set byte count: strconv.Atoi: parsing {_go_quote(text)}: {reason}")


def _replaced(req: Request, names: tuple[str, ...]) -> list[str]:
    """OpenBao's warning when body parameters are overridden by the route's own path parameters."""
    given = sorted(n for n in names if n in req.data)
    if not given:
        return []
    return [
        "Endpoint replaced the value of these parameters with the values captured from the endpoint's "
        f"path: [{' '.join(given)}]"
    ]


@dataclass(frozen=True)
class RandomFields:
    """``random`` body parameters; the source and a byte count in the path come from ``Request.path``."""

    bytes: int = 32
    format: str = "base64"


async def random(ctx: Context, req: Request, f: RandomFields) -> Response:
    """Return ``bytes`` random bytes, hex or base64 encoded.

    Raises:
        InvalidRequest: OpenBao's messages for an unparsable count, a count outside 1..131072, an
            unknown format or an unknown source.
    """
    m = _RANDOM_PATH.match(req.path)
    maybe_source = (m.group("source") if m else None) or ""
    maybe_bytes = (m.group("urlbytes") if m else None) or ""
    source = "platform"
    if maybe_source == "":
        count = f.bytes
    elif maybe_bytes == "" and maybe_source in _SOURCES:
        source, count = maybe_source, f.bytes
    elif maybe_bytes == "":
        count = _atoi(maybe_source)
    else:
        source, count = maybe_source, _atoi(maybe_bytes)
    if count < 1:
        raise InvalidRequest("'bytes' cannot be less than 1")
    if count > random_data.MAX_RANDOM_BYTES:
        raise InvalidRequest(f"'bytes' should be less than {random_data.MAX_RANDOM_BYTES}")
    if f.format not in random_data.FORMATS:
        raise InvalidRequest(f'unsupported encoding format {_go_quote(f.format)}; must be "hex" or "base64"')
    if source not in _SOURCES:
        raise InvalidRequest(
            f'unsupported entropy source {_go_quote(source)}; must be "platform" or "seal", or "all"'
        )
    resp = Response(data={"random_bytes": random_data.encode(random_data.generate(count), f.format)})
    if source == "seal":
        resp.warnings.append(_NO_AUGMENTATION)
    resp.warnings.extend(_replaced(req, ("source", "urlbytes")))
    return resp


@dataclass(frozen=True)
class HashFields:
    """``hash`` body parameters; an algorithm in the path (``hash/sha3-256``) wins over ``algorithm``."""

    input: str | None = None
    algorithm: str = digest.DEFAULT
    format: str = "hex"


async def hash_input(ctx: Context, req: Request, f: HashFields) -> Response:
    """Return the SHA-2 or SHA-3 digest of the base64 ``input``, hex (default) or base64 encoded.

    Raises:
        InvalidRequest: OpenBao's messages for a missing input, bad base64, an unknown format or an
            algorithm outside SHA-2/SHA-3.
    """
    m = _HASH_PATH.match(req.path)
    algorithm = (m.group("urlalgorithm") if m else None) or f.algorithm
    # An explicit JSON null counts as given (an empty input), as Vault's GetOkErr sees it.
    if f.input is None and "input" not in req.data:
        raise InvalidRequest("input missing")
    try:
        data = b64decode(f.input or "")
    except InvalidRequest as exc:
        raise InvalidRequest(f"unable to decode input as base64: {exc.message}") from None
    if f.format not in random_data.FORMATS:
        raise InvalidRequest(f'unsupported encoding format {f.format[:100]}; must be "hex" or "base64"')
    try:
        value = digest.digest(algorithm, data)
    except KeyError:
        raise InvalidRequest(f"unsupported algorithm {algorithm[:100]}") from None
    resp = Response(data={"sum": random_data.encode(value, f.format)})
    resp.warnings.extend(_replaced(req, ("urlalgorithm",)))
    return resp


ROUTES: list[Route[Context, Any]] = [
    Route("random", RandomFields, {Operation.UPDATE: random}, summary="Generate random bytes."),
    Route("random/{source}", RandomFields, {Operation.UPDATE: random}, summary="Generate random bytes."),
    Route(
        "random/{source}/{urlbytes:*}", RandomFields, {Operation.UPDATE: random},
        summary="Generate random bytes.",
    ),
    Route("hash", HashFields, {Operation.UPDATE: hash_input}, summary="Hash data (SHA-2, SHA-3)."),
    Route("hash/{urlalgorithm:*}", HashFields, {Operation.UPDATE: hash_input}, summary="Hash data (SHA-2, SHA-3)."),
]
