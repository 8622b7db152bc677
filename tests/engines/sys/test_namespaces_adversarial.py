"""Adversarial regressions of the namespace tree (issue 4 security review).

Each test failed before its fix:

* nesting depth was unbounded: a tenant administrator could build a chain of thousands of plain
  namespaces, and every request addressed into it (header or path prefix) then read two records per level
  and every token lookup walked the chain, a cost any tenant could impose on the shared node. A namespace
  path has at most :data:`~strongroom.core.namespaces.MAX_DEPTH` segments, at creation and in resolution
  (a longer header is refused before its segments are checked one by one, like an unknown namespace).
"""

from __future__ import annotations

import pytest

from strongroom.core.namespaces import MAX_DEPTH, split_path
from strongroom.errors import InvalidRequest
from tests.support.namespaces import Namespaces
from tests.support.vault import InProcessVault


async def test_namespace_nesting_is_bounded(vault: InProcessVault) -> None:
    ns = Namespaces(vault)
    t = await ns.tenant("t")
    path = "t"
    for depth in range(2, MAX_DEPTH + 1):
        await ns.plain(f"n{depth}", ns=path, token=t.root_token)
        path += f"/n{depth}"
    assert len(split_path(path)) == MAX_DEPTH
    errors = await ns.fails(400, "POST", "sys/namespaces/deeper", ns=path, token=t.root_token, json={})
    assert errors == [f"namespaces cannot be nested more than {MAX_DEPTH} deep"]
    # The deepest namespace works, by header and by path prefix.
    await ns.ok("GET", "auth/token/lookup-self", ns=path, token=t.root_token)
    await ns.ok("GET", path + "/auth/token/lookup-self", token=t.root_token)


async def test_overlong_namespace_header_is_an_unknown_namespace(vault: InProcessVault) -> None:
    ns = Namespaces(vault)
    header = "/".join(["x"] * (MAX_DEPTH + 1))
    with pytest.raises(InvalidRequest):
        split_path(header)
    r = await ns.call("GET", "sys/mounts", ns=header, token="")
    unknown = await ns.call("GET", "sys/mounts", ns="x", token="")
    assert (
        (r.status_code, r.json())
        == (unknown.status_code, unknown.json())
        == (503, {"errors": ["Vault is sealed"]})
    )
