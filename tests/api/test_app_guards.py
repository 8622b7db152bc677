"""Guards at the HTTP boundary that protect the server process itself."""

from __future__ import annotations

from typing import Any

import pytest

from strongroom.engines.framework import Response
from tests.support.vault import InProcessVault


@pytest.mark.parametrize("status", [0, 99, 100, 199, 600, 1000])
async def test_out_of_range_status_is_an_internal_error(vault: InProcessVault, status: int) -> None:
    async def handle(incoming: Any) -> Response:
        return Response(data={"x": 1}, status=status)

    vault.app.router.handle = handle  # type: ignore[method-assign]
    r = await vault.call("GET", "secret/data/x")
    assert r.status_code == 500 and r.json() == {"errors": ["internal error"]}


async def test_field_conversion_errors_do_not_echo_huge_values(vault: InProcessVault) -> None:
    await vault.ok("POST", "sys/mounts/transit", json={"type": "transit"})
    r = await vault.call("POST", "transit/encrypt/k", json={"plaintext": ["A" * 100_000]})
    assert r.status_code == 400 and len(r.text) < 400
