"""Typed request fields: turn Vault's loosely typed request data into frozen dataclasses.

Vault accepts the same parameter as a JSON number, a numeric string, a duration string ("5m"), a
comma-separated string for lists, and explicit ``null`` for "not given" (hvac sends nulls). Each endpoint
declares a frozen dataclass; :func:`parse_fields` fills it from the request data with those coercions, so
handlers never see untyped maps.

Supported annotations: ``str``, ``int``, ``bool``, ``float``, :data:`Duration`, ``list[str]``,
``list[int]``, ``dict[str, str]``, ``dict[str, Any]``, ``Any`` and ``X | None`` of those.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from collections.abc import Mapping
from typing import Any, NewType, TypeVar, Union

from strongroom.errors import InvalidRequest

Duration = NewType("Duration", int)
"""Seconds; parsed from an integer, a numeric string or a Go-style duration such as ``"1h30m"``."""

T = TypeVar("T")

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h|d)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600, "d": 86400}


_INT64 = 2**63
"""Vault parses numbers into Go's int64: anything outside it is an error, never a crash or a wrap."""


def _int64(value: int, name: str) -> int:
    if not -_INT64 <= value < _INT64:
        raise InvalidRequest(f"error converting input for field {name!r}: value out of range")
    return value


def _digits(text: str, name: str) -> int:
    # int() of thousands of digits is slow, and refused by Python beyond 4300: bound it first.
    if len(text.strip().lstrip("-")) > 19:
        raise InvalidRequest(f"error converting input for field {name!r}: value out of range")
    return _int64(int(text), name)


def parse_duration(value: Any, name: str = "duration") -> int:
    """Parse a Vault duration into whole seconds.

    Accepts ints, integral floats, numeric strings and Go durations (``"90s"``, ``"1h30m"``, ``"2d"``).

    Raises:
        InvalidRequest: the value is not a duration.
    """
    if isinstance(value, bool):
        raise InvalidRequest(f"error converting input {value} for field {name!r}")
    if isinstance(value, int):
        return _int64(value, name)
    if isinstance(value, float) and value.is_integer():
        return _int64(int(value), name)
    if isinstance(value, str):
        text = value.strip()
        if text == "":
            return 0
        if len(text) > 64:
            raise InvalidRequest(f"error converting input for field {name!r}: invalid duration")
        if re.fullmatch(r"-?\d+", text):
            return _digits(text, name)
        pos = 0
        total = 0.0
        for match in _DURATION_PART.finditer(text):
            if match.start() != pos:
                break
            total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
            pos = match.end()
        if pos == len(text) and pos > 0:
            if not total < _INT64:  # also catches infinity
                raise InvalidRequest(f"error converting input for field {name!r}: duration out of range")
            return int(total)
    raise InvalidRequest(f"error converting input {value!r:.64} for field {name!r}: invalid duration")


def _to_bool(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        low = value.strip().lower()
        if low in ("true", "1", "t"):
            return True
        if low in ("false", "0", "f", ""):
            return False
    raise InvalidRequest(f"error converting input {value!r:.64} for field {name!r}: expected a boolean")


def _to_int(value: Any, name: str) -> int:
    if isinstance(value, bool):
        raise InvalidRequest(f"error converting input {value!r:.64} for field {name!r}: expected an integer")
    if isinstance(value, int):
        return _int64(value, name)
    if isinstance(value, float) and value.is_integer():
        return _int64(int(value), name)
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
        return _digits(value, name)
    raise InvalidRequest(f"error converting input {value!r:.64} for field {name!r}: expected an integer")


def _to_str(value: Any, name: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    raise InvalidRequest(f"error converting input {value!r:.64} for field {name!r}: expected a string")


def _to_list(value: Any, name: str, item: Any) -> list[Any]:
    if isinstance(value, str):
        parts = [p.strip() for p in value.split(",")] if value.strip() else []
    elif isinstance(value, list):
        parts = list(value)
    else:
        raise InvalidRequest(f"error converting input {value!r:.64} for field {name!r}: expected a list")
    return [_coerce(p, item, name) for p in parts]


def _to_map(value: Any, name: str, item: Any) -> dict[str, Any]:
    if isinstance(value, str) and value.strip() == "":
        return {}
    if not isinstance(value, dict):
        raise InvalidRequest(f"error converting input {value!r:.64} for field {name!r}: expected a map")
    if item is Any:
        return dict(value)
    return {str(k): _coerce(v, item, name) for k, v in value.items()}


def _coerce(value: Any, annotation: Any, name: str) -> Any:
    if annotation is Any:
        return value
    if annotation is Duration:
        return Duration(parse_duration(value, name))
    if annotation is bool:
        return _to_bool(value, name)
    if annotation is int:
        return _to_int(value, name)
    if annotation is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        try:
            return float(value)
        except (TypeError, ValueError):
            raise InvalidRequest(f"error converting input {value!r:.64} for field {name!r}") from None
    if annotation is str:
        return _to_str(value, name)
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        if value is None:
            return None
        return _coerce(value, inner[0], name)
    if origin is list:
        return _to_list(value, name, args[0] if args else Any)
    if origin is dict:
        return _to_map(value, name, args[1] if len(args) == 2 else Any)
    raise TypeError(f"unsupported field annotation {annotation!r}")


_SPECS: dict[type[Any], tuple[tuple[str, Any, bool], ...]] = {}


def _field_specs(cls: type[Any]) -> tuple[tuple[str, Any, bool], ...]:
    cached = _SPECS.get(cls)
    if cached is not None:
        return cached
    hints = typing.get_type_hints(cls)
    specs = []
    for f in dataclasses.fields(cls):
        has_default = f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
        specs.append((f.name, hints[f.name], has_default))
    _SPECS[cls] = tuple(specs)
    return _SPECS[cls]


def parse_fields(cls: type[T], data: Mapping[str, Any]) -> T:
    """Build ``cls`` (a dataclass) from request ``data``.

    Missing keys and explicit ``null`` take the dataclass default; keys the dataclass does not declare
    are ignored, as Vault ignores unknown parameters.

    Raises:
        InvalidRequest: a value cannot be converted, or a field without default is missing.
    """
    kwargs: dict[str, Any] = {}
    for name, annotation, has_default in _field_specs(cls):
        value = data.get(name)
        if value is None:
            if not has_default:
                raise InvalidRequest(f"missing required field {name!r}")
            continue
        kwargs[name] = _coerce(value, annotation, name)
    return cls(**kwargs)


@dataclasses.dataclass(frozen=True)
class NoFields:
    """The request schema of an endpoint that takes no parameters."""
