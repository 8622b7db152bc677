"""The declarative routing framework: specificity, operations, and no ambiguous route pairs anywhere."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from strongroom.engines.fields import NoFields
from strongroom.engines.framework import Backend, Operation, Request, Response, Route
from strongroom.engines.registry import _backends, open_backend
from strongroom.errors import UnsupportedOperation, UnsupportedPath


async def _h(ctx: Any, req: Request, f: Any) -> Response:
    return Response()


def _route(pattern: str, *ops: Operation) -> Route[Any, Any]:
    return Route(pattern, NoFields, dict.fromkeys(ops or (Operation.READ,), _h))


def test_most_specific_pattern_wins_whatever_the_list_order() -> None:
    routes = [_route("{path:*}"), _route("keys/{name}"), _route("keys/{name}/rotate"), _route("keys")]
    for order in (routes, list(reversed(routes))):
        backend = Backend(order)
        assert backend.match("keys").route.pattern == "keys"
        assert backend.match("keys/a").route.pattern == "keys/{name}"
        assert backend.match("keys/a").params == {"name": "a"}
        assert backend.match("keys/a/rotate").route.pattern == "keys/{name}/rotate"
        assert backend.match("other/deep/path").route.pattern == "{path:*}"
        assert backend.match("other/deep/path").params == {"path": "other/deep/path"}


def test_segment_capture_does_not_cross_slashes_and_rest_needs_one_char() -> None:
    backend = Backend([_route("keys/{name}"), _route("data/{path:*}")])
    with pytest.raises(UnsupportedPath):
        backend.match("keys/a/b")
    with pytest.raises(UnsupportedPath):
        backend.match("data/")
    assert backend.match("data/a/b/c").params == {"path": "a/b/c"}


def test_optional_rest_matches_the_empty_remainder() -> None:
    backend = Backend([_route("metadata/{path:*?}")])
    assert backend.match("metadata/").params == {"path": ""}
    assert backend.match("metadata/x/y").params == {"path": "x/y"}


def test_handler_for_unknown_operation_is_405_and_create_falls_back_to_update() -> None:
    backend = Backend([_route("x", Operation.READ, Operation.UPDATE)])
    match = backend.match("x")
    assert backend.handler_for(match, Operation.CREATE) is _h
    with pytest.raises(UnsupportedOperation):
        backend.handler_for(match, Operation.DELETE)


def test_ambiguities_are_reported() -> None:
    backend = Backend([_route("a/{x}"), _route("{y}/b")])
    assert backend.ambiguities(["a/b"]) != []
    assert Backend([_route("a/{x}"), _route("a/b")]).ambiguities(["a/b"]) == []


def test_existence_check_requires_a_create_handler() -> None:
    async def exists(ctx: Any, req: Request, f: Any) -> bool:
        return True

    with pytest.raises(ValueError, match="existence check"):
        Route("x", NoFields, {Operation.UPDATE: _h}, existence=exists)


@dataclass(frozen=True)
class _Named:
    name: str
    n: int = 0


def test_match_parse_lets_path_captures_win_over_body() -> None:
    backend = Backend([Route("items/{name}", _Named, {Operation.UPDATE: _h})])
    fields = backend.match("items/fromurl").parse({"name": "frombody", "n": "3"})
    assert fields == _Named("fromurl", 3)


def _all_backends() -> dict[str, Backend[Any]]:
    return {"open": open_backend(), **_backends()}


@pytest.mark.parametrize("name", sorted(_all_backends()))
def test_no_real_backend_has_ambiguous_routes(name: str) -> None:
    backend = _all_backends()[name]
    assert backend.routes, name
    assert backend.ambiguities(backend.sample_paths()) == []


def test_every_system_and_open_route_resolves_to_itself() -> None:
    for backend in _all_backends().values():
        for route in backend.routes:
            if "{" in route.pattern:
                continue
            assert backend.match(route.pattern).route is route, route.pattern
