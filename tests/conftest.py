"""Fixtures shared by the whole suite."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.support.vault import InProcessVault, start_vault


@pytest.fixture
async def vault() -> AsyncIterator[InProcessVault]:
    """An initialised, unsealed in-process vault (memory store, fake clock, 3 shares / threshold 2)."""
    v = await start_vault()
    try:
        yield v
    finally:
        await v.client.aclose()
        await v.node.close()
