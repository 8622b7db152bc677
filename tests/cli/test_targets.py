"""The fixtures' own contract: a missing ``bao`` skips, or fails under ``STRONGROOM_REQUIRE_ALL=1``, and
never stops the strongroom half of the suite."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.cli import conftest, targets


@pytest.mark.parametrize("value", ["1", "true"])
def test_missing_bao_skips_or_fails(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, value: str) -> None:
    monkeypatch.setattr(targets, "bao_binary", lambda: None)
    monkeypatch.delenv("STRONGROOM_REQUIRE_ALL", raising=False)
    with pytest.raises(pytest.skip.Exception):
        targets.require_bao()
    monkeypatch.setenv("STRONGROOM_REQUIRE_ALL", value)
    with pytest.raises(pytest.fail.Exception, match="bao"):
        targets.require_bao()
    # What the openbao-parametrized fixtures call: the same failure, before any process starts.
    with pytest.raises(pytest.fail.Exception, match="bao"):
        conftest._start("openbao", True, tmp_path)


@pytest.mark.slow
def test_strongroom_targets_need_no_bao(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(targets, "bao_binary", lambda: None)
    monkeypatch.setenv("STRONGROOM_REQUIRE_ALL", "1")
    target, stop_it = conftest._start("strongroom", False, tmp_path)
    try:
        assert target.kind == "strongroom"
        status = httpx.get(f"{target.addr}/v1/sys/seal-status").json()
        assert (status["initialized"], status["sealed"]) == (False, True)
    finally:
        stop_it()


def test_free_port_is_bindable() -> None:
    import socket

    port = targets.free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
