"""A tenant's ceremonies and the Administrator biscuit (engines/sys/iam_ceremony.py).

* init, unseal and unseal reset need the tenant's Administrator biscuit, which works while the tenant is
  sealed or uninitialised; seal takes it or a tenant token with ``sudo``;
* without it, an unknown namespace, a sealed tenant and an uninitialised tenant answer every ceremony
  route identically (status and body), so nobody can probe which tenants exist;
* a refused call changes nothing (the tenant stays uninitialised, the progress stays where it was).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.namespaces import Namespaces
from tests.support.vault import InProcessVault

INIT = {"secret_shares": 1, "secret_threshold": 1}
# Every open route of a tenant with a body it accepts: (method, path, body).
CEREMONIES: list[tuple[str, str, dict[str, Any] | None]] = [
    ("GET", "sys/seal-status", None),
    ("GET", "sys/init", None),
    ("PUT", "sys/init", INIT),
    ("PUT", "sys/unseal", {"key": "ab" * 33}),
    ("PUT", "sys/unseal", {"reset": True}),
    ("PUT", "sys/seal", None),
    ("GET", "sys/rekey/init", None),
    ("PUT", "sys/rekey/init", {"secret_shares": 1, "secret_threshold": 1}),
    ("PUT", "sys/rekey/update", {"key": "ab" * 33, "nonce": "x"}),
    ("GET", "sys/rotate/root/init", None),
    ("GET", "sys/generate-root/attempt", None),
    ("PUT", "sys/generate-root/attempt", {}),
    ("PUT", "sys/generate-root/update", {"key": "ab" * 33, "nonce": "x"}),
    ("DELETE", "sys/generate-root/attempt", None),
    ("GET", "sys/generate-root-token/attempt", None),
]


@pytest.fixture
def ns(vault: InProcessVault) -> Namespaces:
    return Namespaces(vault)


async def _answers(ns: Namespaces, name: str, token: str) -> list[tuple[int, str]]:
    out = []
    for method, path, body in CEREMONIES:
        r = await ns.call(method, path, ns=name, token=token, json=body)
        out.append((r.status_code, r.text))
    return out


async def test_unknown_sealed_and_uninitialised_tenants_look_the_same(ns: Namespaces) -> None:
    await ns.ok("POST", "sys/iam/tenants/fresh")  # uninitialised
    sealed = await ns.tenant("vault", unseal=False)  # initialised, sealed
    bank = await ns.tenant("bank")  # unsealed: a store token can be checked there
    foreign = (await ns.ok("POST", "sys/iam/tokens", json={"tenant": "bank", "role": "admin"}))["data"][
        "token"
    ]
    user = (await ns.ok("POST", "sys/iam/tokens", json={"tenant": "bank", "role": "user"}))["data"]["token"]
    for token in ("", "hvs.garbage", ns.vault.root_token, "sb.garbage", foreign, user, bank.root_token):
        unknown = await _answers(ns, "nope", token)
        assert await _answers(ns, "fresh", token) == unknown, token[:12]
        assert await _answers(ns, "vault", token) == unknown, token[:12]
        # Never a 2xx but a sealed vault's seal (204 for anyone, as Vault), never a hint.
        for (method, path, _), (status, text) in zip(CEREMONIES, unknown, strict=True):
            if (method, path) == ("PUT", "sys/seal"):
                assert status in (204, 403), (token[:12], text)
            else:
                assert (status, text) in ((403, '{"errors":["permission denied"]}'), (503, '{"errors":["Vault is sealed"]}')), (
                    token[:12], path, status, text)  # fmt: skip
    # Nothing changed: still uninitialised, still sealed with no progress.
    assert (await ns.ok("GET", "sys/iam/tenants/fresh"))["data"]["initialized"] is False
    status = (await ns.ok("GET", "sys/namespaces/vault/seal-status"))["data"]
    assert (status["sealed"], status["progress"]) == (True, 0)
    assert sealed.path == "vault/"


async def test_init_needs_the_tenants_administrator(ns: Namespaces) -> None:
    data = (await ns.ok("POST", "sys/iam/tenants/acme"))["data"]
    bank = (await ns.ok("POST", "sys/iam/tenants/bank"))["data"]
    for token in ("", ns.vault.root_token, data["user_token"], bank["admin_token"]):
        await ns.fails(403, "PUT", "sys/init", ns="acme", token=token, json=INIT)
    assert (await ns.ok("GET", "sys/iam/tenants/acme"))["data"]["initialized"] is False
    # Unseal on an uninitialised tenant: a clear 400 for the Administrator.
    assert await ns.fails(
        400, "PUT", "sys/unseal", ns="acme", token=data["admin_token"], json={"key": "ab" * 33}
    ) == ["Vault is not initialized"]
    init = await ns.ok("PUT", "sys/init", ns="acme", token=data["admin_token"], json=INIT)
    assert init["root_token"].startswith("hvs.") and len(init["keys"]) == 1
    assert (await ns.fails(400, "PUT", "sys/init", ns="acme", token=data["admin_token"], json=INIT)) == [
        "Vault is already initialized"
    ]


async def test_revoked_administrator_cannot_run_ceremonies(ns: Namespaces) -> None:
    data = (await ns.ok("POST", "sys/iam/tenants/acme"))["data"]
    await ns.ok("POST", "sys/iam/revoke", json={"token": data["admin_token"]})
    await ns.fails(403, "PUT", "sys/init", ns="acme", token=data["admin_token"], json=INIT)
    await ns.fails(403, "GET", "sys/seal-status", token=data["admin_token"])
    assert (await ns.ok("GET", "sys/iam/tenants/acme"))["data"]["initialized"] is False


async def test_unseal_and_reset_need_the_administrator(ns: Namespaces) -> None:
    t = await ns.tenant("acme", unseal=False)
    await ns.ok("PUT", "sys/unseal", ns="acme", token=t.admin_token, json={"key": t.keys[0]})
    for token in ("", ns.vault.root_token, "hvs.x"):
        await ns.fails(403, "PUT", "sys/unseal", ns="acme", token=token, json={"reset": True})
        await ns.fails(403, "PUT", "sys/unseal", ns="acme", token=token, json={"key": t.keys[1]})
    assert (await ns.ok("GET", "sys/seal-status", ns="acme", token=t.admin_token))["progress"] == 1
    reset = await ns.ok("PUT", "sys/unseal", ns="acme", token=t.admin_token, json={"reset": True})
    assert reset["progress"] == 0
    # The OpenBao way stays open to the parent's token: sys/namespaces/NAME/unseal (shares are the authority).
    for key in t.keys[:2]:
        body = (await ns.ok("PUT", "sys/namespaces/acme/unseal", json={"key": key}))["data"]
    assert body["sealed"] is False


async def test_seal_takes_the_administrator_or_a_tenant_sudo_token(ns: Namespaces) -> None:
    t = await ns.tenant("acme")
    reader = await ns.token_in("acme", t.root_token, ["default"])
    for token in ("", ns.vault.root_token, reader):
        await ns.fails(403, "PUT", "sys/seal", ns="acme", token=token)
    user = (await ns.ok("POST", "sys/iam/tokens", json={"tenant": "acme", "role": "user"}))["data"]["token"]
    await ns.fails(403, "PUT", "sys/seal", ns="acme", token=user)
    assert (await ns.ok("GET", "sys/seal-status", ns="acme", token=reader))[
        "sealed"
    ] is False  # any tenant token
    await ns.ok("PUT", "sys/seal", ns="acme", token=t.admin_token)
    assert (await ns.ok("GET", "sys/seal-status", ns="acme", token=t.admin_token))["sealed"] is True
    # While sealed, tenant tokens cannot be checked: the same 403 as anywhere.
    await ns.fails(403, "GET", "sys/seal-status", ns="acme", token=t.root_token)
    await ns.unseal(t)
    await ns.ok("PUT", "sys/seal", ns="acme", token=t.root_token)


async def test_generate_root_and_rekey_with_the_administrator(ns: Namespaces) -> None:
    t = await ns.tenant("acme")  # its root token came from generate-root with the Administrator biscuit
    assert (await ns.ok("GET", "auth/token/lookup-self", ns="acme", token=t.root_token))["data"][
        "policies"
    ] == ["root"]
    await ns.fails(403, "PUT", "sys/generate-root/attempt", ns="acme", token=t.root_token, json={})
    started = await ns.ok(
        "PUT",
        "sys/rekey/init",
        ns="acme",
        token=t.admin_token,
        json={"secret_shares": 1, "secret_threshold": 1},
    )
    body: dict[str, Any] = {}
    for key in t.keys[:2]:
        body = await ns.ok(
            "PUT",
            "sys/rekey/update",
            ns="acme",
            token=t.admin_token,
            json={"key": key, "nonce": started["nonce"]},
        )
    assert body["complete"] is True and len(body["keys"]) == 1
    user = (await ns.ok("POST", "sys/iam/tokens", json={"tenant": "acme", "role": "user"}))["data"]["token"]
    await ns.fails(403, "GET", "sys/rekey/init", ns="acme", token=user)
    # decode-token is a pure function of its input: open to anyone.
    await ns.fails(400, "PUT", "sys/decode-token", ns="acme", token="", json={"encoded_token": "", "otp": ""})
