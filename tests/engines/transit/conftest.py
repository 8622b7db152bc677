"""Fixtures for the transit tests: a vault with the transit engine mounted at ``transit/``."""

from __future__ import annotations

import base64

import pytest

from tests.support.vault import InProcessVault


@pytest.fixture
async def transit(vault: InProcessVault) -> InProcessVault:
    """The shared ``vault`` fixture with ``transit/`` mounted."""
    await vault.ok("POST", "sys/mounts/transit", json={"type": "transit"})
    return vault


def b64(data: bytes | str) -> str:
    """Standard base64 of ``data`` (text is UTF-8 encoded first)."""
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()


def unb64(text: str) -> bytes:
    """Decode standard base64."""
    return base64.b64decode(text)
