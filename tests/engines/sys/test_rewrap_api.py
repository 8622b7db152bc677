"""``GET sys/rotate/status`` and the ``rewrap`` object of ``sys/key-status``: bodies, authority, namespaces."""

from __future__ import annotations

from strongroom.core.namespaces import registry
from strongroom.core.rewrap import rewrap_pending
from strongroom.core.tenant_seal import TenantVault
from strongroom.engines.bootstrap import create_root_token
from strongroom.storage.base import Transaction, transactional
from tests.support.namespaces import Namespaces
from tests.support.vault import InProcessVault

FIELDS = {
    "state", "phase", "term", "done", "total", "started", "finished", "rewrapped", "failed", "passes",
    "readable_terms", "dropped_terms",
}  # fmt: skip


async def test_idle_running_done_bodies(vault: InProcessVault) -> None:
    idle = (await vault.ok("GET", "sys/rotate/status"))["data"]
    assert idle == {
        "state": "idle", "phase": "", "term": 1, "done": 0, "total": 0, "started": "", "finished": "",
        "rewrapped": 0, "failed": 0, "passes": 0, "readable_terms": [1], "dropped_terms": [],
    }  # fmt: skip
    await vault.ok("PUT", "sys/policies/acl/p", json={"policy": 'path "a" { capabilities = ["read"] }'})
    vault.clock.advance(5)
    await vault.ok("PUT", "sys/rotate")
    running = (await vault.ok("GET", "sys/rotate/status"))["data"]
    assert set(running) == FIELDS
    assert (running["state"], running["phase"], running["term"], running["readable_terms"]) == (
        "running", "counting", 2, [1, 2]
    )
    assert running["started"].endswith("Z") and running["finished"] == ""
    vault.clock.advance(5)
    await rewrap_pending(vault.node)
    done = (await vault.ok("GET", "sys/rotate/status"))["data"]
    assert (done["state"], done["phase"], done["readable_terms"], done["dropped_terms"]) == (
        "done", "complete", [2], [1]
    )
    assert done["finished"] > done["started"] and done["done"] == done["total"] > 0 and done["rewrapped"] > 0
    # sys/key-status carries the same object, in data and (as Vault's sys answers) at the top level.
    status = await vault.ok("GET", "sys/key-status")
    assert status["data"]["rewrap"] == done == status["rewrap"]
    assert status["data"]["term"] == 2
    assert (await vault.ok("GET", "sys/policies/acl/p"))["data"]["name"] == "p"


async def test_reading_the_status_is_an_acl_checked_read(vault: InProcessVault) -> None:
    await vault.ok(
        "PUT", "sys/policies/acl/watch", json={"policy": 'path "sys/rotate/status" { capabilities = ["read"] }'}
    )
    watcher = await vault.token(["watch"])
    assert (await vault.call("GET", "sys/rotate/status", token=watcher)).status_code == 200
    assert (await vault.call("PUT", "sys/rotate", token=watcher)).status_code == 403
    assert (await vault.call("GET", "sys/key-status", token=watcher)).status_code == 403
    nobody = await vault.token(["default"])
    assert (await vault.call("GET", "sys/rotate/status", token=nobody)).status_code == 403
    assert (await vault.call("GET", "sys/rotate/status", token="")).status_code == 403
    assert (await vault.call("PUT", "sys/rotate/status")).status_code == 405
    await vault.ok("PUT", "sys/seal")
    assert (await vault.call("GET", "sys/rotate/status")).status_code == 503


async def _tenant(vault: InProcessVault) -> tuple[Namespaces, str]:
    """Tenant ``acme``, unsealed through core with a root token of its own store (who may run the HTTP
    ceremonies is the IAM's concern, tested with it)."""
    ns = Namespaces(vault)
    seal = 'seal "shamir" { shares = 1 threshold = 1 }'
    share = (await ns.ok("POST", "sys/namespaces/acme", json={"seal": seal}))["data"]["key_shares"][0]

    async def tenant_id(tx: Transaction) -> bytes:
        tree = await registry(tx, await vault.node.root.current_keys(tx))
        return next(i for i, (_, sealable) in tree.items() if sealable)

    tenant = TenantVault(vault.node.root, await transactional(vault.node.store, tenant_id), "acme/")
    await tenant.submit_unseal(share)

    async def issue(tx: Transaction) -> str:
        return await create_root_token(tx, await tenant.current_keys(tx), vault.clock)

    return ns, await transactional(vault.node.store, issue)


async def test_each_keyring_owner_answers_for_its_own_keyring(vault: InProcessVault) -> None:
    ns, token = await _tenant(vault)
    await ns.plain("team")
    await ns.ok("PUT", "sys/rotate", ns="acme", token=token)
    tenant = (await ns.ok("GET", "sys/rotate/status", ns="acme", token=token))["data"]
    assert (tenant["state"], tenant["term"]) == ("running", 2)
    assert (await ns.ok("GET", "sys/rotate/status"))["data"]["state"] == "idle"  # the platform's own
    # Platform tokens carry no authority inside the tenant, here either.
    assert (await ns.call("GET", "sys/rotate/status", ns="acme")).status_code == 403
    # A plain namespace shares its owner's keyring: OpenBao's answer, as for sys/key-status and sys/rotate.
    assert await ns.fails(400, "GET", "sys/rotate/status", ns="team") == ["namespace is not sealable"]
    assert await ns.fails(400, "PUT", "sys/rotate", ns="team") == ["namespace is not sealable"]
    await rewrap_pending(vault.node)
    done = (await ns.ok("GET", "sys/key-status", ns="acme", token=token))["data"]["rewrap"]
    assert (done["state"], done["dropped_terms"], done["readable_terms"]) == ("done", [1], [2])
