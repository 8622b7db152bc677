"""Field coercion: Vault's loose request typing turned into frozen dataclasses, bad input into 400s."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from strongroom.engines.fields import Duration, NoFields, parse_duration, parse_fields
from strongroom.errors import InvalidRequest


@dataclass(frozen=True)
class F:
    name: str
    count: int = 1
    flag: bool = False
    ttl: Duration = 0  # type: ignore[assignment]  # NewType of int; the default needs no call
    ratio: float = 0.5
    tags: list[str] = field(default_factory=list)
    ids: list[int] = field(default_factory=list)
    meta: dict[str, str] = field(default_factory=dict)
    blob: dict[str, Any] = field(default_factory=dict)
    maybe: int | None = None
    anything: Any = None


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        (3600, 3600),
        ("3600", 3600),
        ("90s", 90),
        ("1h30m", 5400),
        ("2d", 172800),
        ("1.5h", 5400),
        ("500ms", 0),
        ("", 0),
        (60.0, 60),
        ("-5", -5),
    ],
)
def test_durations(text: Any, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["abc", "1x", "h", "5m3", True, 1.5, [1], {"a": 1}, "1h 30m"])
def test_bad_durations(bad: Any) -> None:
    with pytest.raises(InvalidRequest):
        parse_duration(bad, "ttl")


def test_coercions_from_strings_like_form_data() -> None:
    got = parse_fields(
        F,
        {
            "name": 5,
            "count": "7",
            "flag": "true",
            "ttl": "1m",
            "ratio": "2",
            "tags": "a, b,c",
            "ids": "1,2",
            "maybe": "3",
        },
    )
    assert got == F("5", 7, True, Duration(60), 2.0, ["a", "b", "c"], [1, 2], maybe=3)


def test_native_json_types() -> None:
    got = parse_fields(
        F,
        {
            "name": "n",
            "count": 2.0,
            "flag": 1,
            "tags": ["x"],
            "meta": {"k": "v"},
            "blob": {"k": [1]},
            "anything": [1, {"a": None}],
        },
    )
    assert got.count == 2 and got.flag is True and got.tags == ["x"]
    assert got.meta == {"k": "v"} and got.blob == {"k": [1]} and got.anything == [1, {"a": None}]


def test_nulls_mean_not_given_and_unknown_keys_are_ignored() -> None:
    got = parse_fields(F, {"name": "n", "count": None, "tags": None, "maybe": None, "unknown": 1})
    assert got == F("n")


def test_empty_string_list_and_map() -> None:
    assert parse_fields(F, {"name": "n", "tags": "", "meta": ""}) == F("n")


def test_missing_required_field() -> None:
    with pytest.raises(InvalidRequest, match="name"):
        parse_fields(F, {})
    with pytest.raises(InvalidRequest, match="name"):
        parse_fields(F, {"name": None})


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("count", "seven"),
        ("count", 1.5),
        ("count", True),
        ("flag", "maybe"),
        ("flag", 2),
        ("ratio", "x"),
        ("tags", 5),
        ("tags", {"a": 1}),
        ("ids", "1,x"),
        ("meta", [1]),
        ("meta", "k=v"),
        ("name", [1]),
        ("name", {"a": 1}),
        ("maybe", "x"),
        ("ttl", "soon"),
    ],
)
def test_bad_types_are_invalid_requests(key: str, value: Any) -> None:
    with pytest.raises(InvalidRequest) as info:
        parse_fields(F, {"name": "n", key: value})
    assert key in info.value.message


def test_no_fields() -> None:
    assert parse_fields(NoFields, {"x": 1}) == NoFields()
