"""``unseal_expiry`` (file) and ``--unseal-expiry`` (flag): how long an unfinished ceremony is kept."""

from __future__ import annotations

import pytest

from strongroom.cli.config import ServerConfig, merge_flags, parse_config
from strongroom.cli.server import node_settings
from strongroom.errors import InvalidRequest


def test_default_is_never() -> None:
    config = parse_config("", "empty.hcl")
    assert config.unseal_expiry is None
    assert node_settings(config, dev=False).unseal_expiry_seconds is None


@pytest.mark.parametrize(("text", "seconds"), [('unseal_expiry = "10m"', 600), ("unseal_expiry = 90", 90)])
def test_file_durations_reach_the_node(text: str, seconds: int) -> None:
    config = parse_config(text, "x.hcl")
    assert config.unseal_expiry == seconds
    assert node_settings(config, dev=False).unseal_expiry_seconds == float(seconds)


def test_flag_overrides_the_file() -> None:
    config = merge_flags(parse_config('unseal_expiry = "10m"', "x.hcl"), unseal_expiry="30s")
    assert config.unseal_expiry == 30


@pytest.mark.parametrize("value", ['"soon"', '"0s"', '"8d"', "-5"])
def test_bad_values_are_refused(value: str) -> None:
    with pytest.raises(InvalidRequest, match="unseal_expiry"):
        parse_config(f"unseal_expiry = {value}", "x.hcl")


def test_bad_flag_is_refused() -> None:
    with pytest.raises(InvalidRequest, match="--unseal-expiry"):
        merge_flags(ServerConfig(), unseal_expiry="later")
