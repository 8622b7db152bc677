"""Pure helpers of the KV engine: merge patch, Go durations, weak decoding, subkeys, version window."""

from __future__ import annotations

from typing import Any

import pytest

from strongroom.engines.kv.common import go_duration, int_list, merge_patch, signed_duration, weak_int
from strongroom.engines.kv.v2.model import Config, KeyMeta, deletion_time
from strongroom.engines.kv.v2.subkeys import strip_values
from strongroom.errors import InvalidRequest


@pytest.mark.parametrize(
    ("target", "patch", "expected"),
    [  # RFC 7396 appendix A
        ({"a": "b"}, {"a": "c"}, {"a": "c"}),
        ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
        ({"a": "b"}, {"a": None}, {}),
        ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
        ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
        ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
        ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
        ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
        (["a", "b"], ["c", "d"], ["c", "d"]),
        ({"a": "b"}, ["c"], ["c"]),
        ({"a": "foo"}, None, None),
        ({"a": "foo"}, "bar", "bar"),
        ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
        ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
        ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
    ],
)
def test_merge_patch_rfc7396_examples(target: Any, patch: Any, expected: Any) -> None:
    before = repr(target)
    assert merge_patch(target, patch) == expected
    assert repr(target) == before  # the target is never modified


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (1, "1s"), (59, "59s"), (60, "1m0s"), (90, "1m30s"), (3600, "1h0m0s"),
     (5400, "1h30m0s"), (90061, "25h1m1s"), (-1, "-1s"), (-3600, "-1h0m0s")],
)
def test_go_duration(seconds: int, text: str) -> None:
    assert go_duration(seconds) == text


def test_signed_duration() -> None:
    assert signed_duration("-5s", "d") == -5
    assert signed_duration(-5, "d") == -5
    assert signed_duration("1h", "d") == 3600
    with pytest.raises(InvalidRequest):
        signed_duration("-soon", "d")


def test_weak_int_and_int_list() -> None:
    assert [weak_int(v) for v in (None, True, False, 3, "4", " -2 ")] == [0, 1, 0, 3, 4, -2]
    for bad in (1.5, "x", [1], {}):
        with pytest.raises(ValueError):
            weak_int(bad)
    assert int_list("1, 2,3", "v") == [1, 2, 3]
    assert int_list([1, "2"], "v") == [1, 2]
    assert int_list(7, "v") == [7]
    assert int_list(None, "v") == []
    for bad in (["x"], [None], [True], [1.5]):
        with pytest.raises(InvalidRequest):
            int_list(bad, "v")


def test_strip_values_depth() -> None:
    data = {"a": {"b": {"c": 1}}, "l": [1], "e": {}, "s": "x"}
    assert strip_values(data, 0) == {"a": {"b": {"c": None}}, "l": None, "e": None, "s": None}
    assert strip_values(data, 1) == {"a": None, "l": None, "e": None, "s": None}
    assert strip_values(data, 2) == {"a": {"b": None}, "l": None, "e": None, "s": None}
    assert strip_values(None, 0) is None


def test_deletion_time_smaller_non_zero_wins() -> None:
    meta = KeyMeta(created=0, updated=0)
    assert deletion_time(100, Config(), meta) is None
    assert deletion_time(100, Config(delete_version_after=30), meta) == 130
    meta.delete_version_after = 10
    assert deletion_time(100, Config(delete_version_after=30), meta) == 110
    assert deletion_time(100, Config(), meta) == 110
    assert deletion_time(100, Config(delete_version_after=-1), meta) is None


def test_add_version_window_like_vault() -> None:
    meta = KeyMeta(created=0, updated=0)
    purged: list[int] = []
    for i in range(1, 11):
        purged += list(meta.add_version(float(i), None, 0))
    # Reaching the window of 10 moves oldest_version from 0 to 1 without purging a real version.
    assert (meta.current_version, meta.oldest_version, purged) == (10, 1, [0])
    assert list(meta.add_version(11.0, None, 0)) == [1]
    assert sorted(meta.versions) == list(range(2, 12))
    meta.max_versions = 3
    assert list(meta.add_version(12.0, None, 0)) == list(range(2, 10))
    assert sorted(meta.versions) == [10, 11, 12]
    assert KeyMeta.from_json(meta.to_json()) == meta
