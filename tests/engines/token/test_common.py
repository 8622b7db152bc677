"""Unit tests of the token helpers that reproduce Vault's small rules."""

from __future__ import annotations

import pytest

from strongroom.engines.token.common import (
    display_name,
    glob_match,
    go_quote_list,
    human_duration,
    parse_seconds,
    sanitize_policies,
)
from strongroom.errors import InvalidRequest


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (45, "45s"), (90, "1m30s"), (600, "10m"), (3600, "1h"), (5400, "1h30m"), (3605, "1h5s"),
     (2764800, "768h")],
)  # fmt: skip
def test_human_duration(seconds: int, text: str) -> None:
    assert human_duration(seconds) == text


def test_sanitize_policies() -> None:
    assert sanitize_policies(["B", " a ", "", "b"], False) == ["a", "b"]
    assert sanitize_policies(["a"], True) == ["a", "default"]
    assert sanitize_policies([], True) == ["default"]
    assert sanitize_policies(["a", "Root"], True) == ["root"]


def test_display_name() -> None:
    assert display_name("My App!!") == "token-My-App-"
    assert display_name("x") == "token-x"
    assert display_name("a_b") == "token-a-b"


def test_glob_and_quote() -> None:
    assert glob_match("team-*", "team-a") and not glob_match("team-*", "xteam-a")
    assert glob_match("*", "") and glob_match("a*c*", "abcd") and not glob_match("a.c", "abc")
    assert go_quote_list(["a", 'b"c']) == '["a" "b\\"c"]'
    assert go_quote_list([]) == "[]"


def test_parse_seconds() -> None:
    assert (
        parse_seconds("1h", "ttl") == 3600
        and parse_seconds(90, "ttl") == 90
        and parse_seconds("-5m", "t") == -300
    )
    with pytest.raises(InvalidRequest, match='time: invalid duration "abc"'):
        parse_seconds("abc", "ttl")
