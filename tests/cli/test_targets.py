"""The fixtures' own contract: a missing ``bao`` skips, or fails under ``STRONGROOM_REQUIRE_ALL=1``."""

from __future__ import annotations

import pytest
from tests.cli import targets


def test_missing_bao_skips_or_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(targets, "bao_binary", lambda: None)
    monkeypatch.delenv("STRONGROOM_REQUIRE_ALL", raising=False)
    with pytest.raises(pytest.skip.Exception):
        targets.require_bao()
    monkeypatch.setenv("STRONGROOM_REQUIRE_ALL", "1")
    with pytest.raises(pytest.fail.Exception):
        targets.require_bao()


def test_free_port_is_bindable() -> None:
    import socket

    port = targets.free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
