"""Declarative endpoints: routes are data, matched by specificity, handlers receive typed fields.

An engine is a :class:`Backend`: a set of :class:`Route` objects. A route declares a pattern, a frozen
dataclass of request fields and one handler per :class:`Operation`. The router picks the most specific
matching pattern, never the first in a list, and :meth:`Backend.ambiguities` lets a test fail when two
patterns of equal rank can match the same path.

Pattern syntax: literal text, ``{name}`` for one path segment (no ``/``), ``{name:*}`` for the rest of
the path (one or more characters, ``/`` allowed) and ``{name:*?}`` for an optional rest.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Generic, TypeVar

from strongroom.engines.fields import parse_fields
from strongroom.errors import UnsupportedOperation, UnsupportedPath

C = TypeVar("C")
F = TypeVar("F")


class Operation(StrEnum):
    """Vault's logical operations; ACL capabilities share these names."""

    READ = "read"
    CREATE = "create"
    UPDATE = "update"
    PATCH = "patch"
    DELETE = "delete"
    LIST = "list"


@dataclass(frozen=True)
class Request:
    """A logical request as an engine sees it: no HTTP, path relative to the mount."""

    operation: Operation
    path: str
    data: Mapping[str, Any]
    mount_point: str = ""
    namespace: str = ""
    client_token: str = ""

    def with_operation(self, operation: Operation) -> Request:
        """Return a copy with another operation (used once the existence check decided create/update)."""
        return dataclasses.replace(self, operation=operation)


@dataclass
class Response:
    """What a handler returns; the API turns it into Vault's response envelope.

    ``raw`` responses (sys/init, sys/seal-status, sys/health) are sent as ``raw_body`` with
    ``raw_status`` and no envelope. ``sys_inject`` copies ``data`` to the top level as Vault's system
    backend does for legacy clients.
    """

    data: dict[str, Any] | None = None
    auth: dict[str, Any] | None = None
    warnings: list[str] = field(default_factory=list)
    lease_duration: int = 0
    renewable: bool = False
    sys_inject: bool = False
    raw_body: Any = None
    raw_status: int | None = None
    status: int = 200
    """Status of an enveloped response: Vault answers a batch with failed items with 400 (or the caller's
    ``partial_failure_response_code``) and still sends the whole envelope."""

    @classmethod
    def raw(cls, body: Any, status: int = 200) -> Response:
        """A response sent as ``body`` without the envelope (``None`` body means no content)."""
        return cls(raw_body=body, raw_status=status)


Handler = Callable[[C, Request, F], Awaitable[Response | None]]
"""``async def handler(ctx, request, fields) -> Response | None``; ``None`` means no content (or 404 on read)."""
ExistenceCheck = Callable[[C, Request, F], Awaitable[bool]]


@dataclass(frozen=True)
class Route(Generic[C, F]):
    """One endpoint family: a pattern, its typed fields and a handler per operation.

    ``sudo`` marks root-protected paths (Vault's ``PathsSpecial.Root``): the caller's policy must grant
    ``sudo`` too. ``self_authorizing`` routes need a valid token but make their own ACL decision (Vault's
    ``sys/internal/ui/mounts``, ``auth/token/lookup-self``-style paths). ``unauthenticated`` paths skip token checks (Vault's ``PathsSpecial.Unauthenticated``).
    With an ``existence`` check, a write to a missing target is a ``create`` and to an existing one an
    ``update``; without one every write is an ``update``.
    """

    pattern: str
    fields: type[F]
    handlers: Mapping[Operation, Handler[C, F]]
    existence: ExistenceCheck[C, F] | None = None
    sudo: bool = False
    unauthenticated: bool = False
    self_authorizing: bool = False
    summary: str = ""

    def __post_init__(self) -> None:
        if Operation.UPDATE in self.handlers and Operation.CREATE not in self.handlers and self.existence:
            raise ValueError(f"{self.pattern}: an existence check needs a create handler")


@dataclass(frozen=True)
class Match(Generic[C, F]):
    """A route that matched a path, with the captured parameters."""

    route: Route[C, F]
    params: dict[str, str]

    def parse(self, data: Mapping[str, Any]) -> F:
        """Parse request data plus path captures (captures win) into the route's field dataclass."""
        if self.params:
            merged = dict(data)
            merged.update(self.params)
            return parse_fields(self.route.fields, merged)
        return parse_fields(self.route.fields, data)


_TOKEN = re.compile(r"\{(\w+)(:\*\??)?\}")


def _compile(pattern: str) -> tuple[re.Pattern[str], tuple[int, int, int]]:
    """Compile a pattern to a regex and a rank; higher ranks are more specific."""
    out = []
    pos = 0
    literal = 0
    rest = 0
    segs = 0
    for m in _TOKEN.finditer(pattern):
        text = pattern[pos : m.start()]
        out.append(re.escape(text))
        literal += len(text)
        name, kind = m.group(1), m.group(2)
        if kind == ":*":
            out.append(f"(?P<{name}>.+)")
            rest += 1
        elif kind == ":*?":
            out.append(f"(?P<{name}>.*)")
            rest += 1
        else:
            out.append(f"(?P<{name}>[^/]+)")
            segs += 1
        pos = m.end()
    tail = pattern[pos:]
    out.append(re.escape(tail))
    literal += len(tail)
    return re.compile("".join(out) + r"\Z"), (literal, -rest, -segs)


class Backend(Generic[C]):
    """A collection of routes with specificity-ordered matching."""

    def __init__(self, routes: list[Route[C, Any]]) -> None:
        compiled = [(_compile(r.pattern), r) for r in routes]
        # Most specific first; the order of the source list never matters.
        compiled.sort(key=lambda item: item[0][1], reverse=True)
        self._routes: list[tuple[re.Pattern[str], tuple[int, int, int], Route[C, Any]]] = [
            (regex, rank, route) for (regex, rank), route in compiled
        ]

    @property
    def routes(self) -> list[Route[C, Any]]:
        """The routes, most specific first."""
        return [r for _, _, r in self._routes]

    def match(self, path: str, *, listing: bool = False) -> Match[C, Any]:
        """Return the most specific route matching ``path`` (``listing``: the request is a LIST).

        Raises:
            UnsupportedPath: no route matches.
        """
        for candidate in (path, path[:-1]) if listing and path.endswith("/") else (path,):
            # A LIST always carries a trailing slash; it may name the route without it. Only for LIST:
            # for other operations "x/" would reach the handler of "x" while the ACL judged "x/".
            for regex, _, route in self._routes:
                m = regex.match(candidate)
                if m is not None:
                    return Match(route, {k: v for k, v in m.groupdict().items() if v is not None})
        raise UnsupportedPath()

    def handler_for(self, match: Match[C, Any], operation: Operation) -> Handler[C, Any]:
        """Return the handler of ``operation`` on a matched route.

        Raises:
            UnsupportedOperation: the route does not support the operation.
        """
        handler = match.route.handlers.get(operation)
        if handler is None and operation is Operation.CREATE:
            handler = match.route.handlers.get(Operation.UPDATE)
        if handler is None:
            raise UnsupportedOperation()
        return handler

    def ambiguities(self, samples: list[str]) -> list[tuple[str, str, str]]:
        """Return ``(path, pattern_a, pattern_b)`` for sample paths matched by two equal-rank routes."""
        found = []
        for path in samples:
            hits = [(rank, r.pattern) for regex, rank, r in self._routes if regex.match(path)]
            for i in range(len(hits) - 1):
                if hits[i][0] == hits[i + 1][0]:
                    found.append((path, hits[i][1], hits[i + 1][1]))
        return found

    def sample_paths(self) -> list[str]:
        """Concrete paths derived from every pattern, for :meth:`ambiguities`."""
        out = []
        for r in self.routes:
            out.append(_TOKEN.sub(lambda m: "a/b" if m.group(2) else "x", r.pattern))
            out.append(_TOKEN.sub(lambda m: "" if m.group(2) == ":*?" else "x", r.pattern))
        return out
