"""Offline attenuation: the server honours every added check, and no block can widen a token."""

from __future__ import annotations

from datetime import UTC, datetime

import biscuit_auth
import pytest

from strongroom.auth.iam import IamKey, IamVerifier, attenuate, inspect, issue_token, root_key_id
from strongroom.auth.iam.text import MAX_BLOCKS, TOKEN_PREFIX
from strongroom.errors import InvalidRequest
from tests.auth.iam.conftest import HOUR, KV2, NOW, SYS, TENANT, TOKEN, TRANSIT, Allowed, at, request


def append(key: IamKey, token: str, code: str, params: dict[str, object] | None = None) -> str:
    """What any biscuit library can do: append a block of arbitrary Datalog."""
    parsed = biscuit_auth.Biscuit.from_base64(token[3:], key.public_key.biscuit_key)
    return TOKEN_PREFIX + parsed.append(biscuit_auth.BlockBuilder(code, params)).to_base64()


def test_path_prefix_is_honoured(key: IamKey, allowed: Allowed, user_token: str) -> None:
    app = attenuate(user_token, key.public_key, paths=["secret/data/app/", "secret/metadata/app/"])
    assert allowed(app, request("secret/data/app/db"))
    assert allowed(app, request("secret/data/app/deep/er", "create"))
    assert allowed(app, request("secret/metadata/app/", "list"))
    assert not allowed(app, request("secret/data/other"))
    assert not allowed(app, request("secret/data/ap"))
    assert not allowed(app, request("secret/metadata/", "list"))
    assert not allowed(app, request("transit/encrypt/orders", "update", TRANSIT))
    assert allowed(user_token, request("secret/data/other"))  # the original is unchanged


def test_operation_is_honoured(key: IamKey, allowed: Allowed, user_token: str) -> None:
    reader = attenuate(user_token, key.public_key, operations=["read", "list"])
    assert allowed(reader, request("secret/data/x", "read"))
    assert allowed(reader, request("secret/metadata/", "list"))
    for op in ("create", "update", "patch", "delete"):
        assert not allowed(reader, request("secret/data/x", op))
    writer = attenuate(user_token, key.public_key, operations=["write"])
    assert allowed(writer, request("secret/data/x", "create"))
    assert allowed(writer, request("secret/data/x", "update"))
    assert not allowed(writer, request("secret/data/x", "patch"))
    assert not allowed(writer, request("secret/data/x", "read"))


def test_ttl_is_honoured(key: IamKey, verifier: IamVerifier, allowed: Allowed, user_token: str) -> None:
    short = attenuate(user_token, key.public_key, ttl=60, now=NOW + 100)
    req = request("secret/data/x")
    assert allowed(short, at(req, NOW + 159))
    assert not allowed(short, at(req, NOW + 160))
    assert allowed(user_token, at(req, NOW + 160))
    facts = verifier.verify(short).facts
    assert (facts.expires_at, facts.shown_expires_at) == (NOW + HOUR, NOW + 160)


def test_a_longer_ttl_cannot_extend_a_token(key: IamKey, allowed: Allowed, user_token: str) -> None:
    longer = attenuate(user_token, key.public_key, ttl=10 * 365 * 86400, now=NOW)
    assert not allowed(longer, request("secret/data/x", now=NOW + HOUR + 1))


def test_restrictions_combine_and_chain(key: IamKey, allowed: Allowed, user_token: str) -> None:
    first = attenuate(user_token, key.public_key, paths=["secret/data/"], operations=["read", "create"])
    second = attenuate(first, key.public_key, paths=["secret/data/app/", "transit/"], operations=["read"])
    assert allowed(second, request("secret/data/app/x", "read"))
    assert not allowed(second, request("secret/data/app/x", "create"))  # second block
    assert not allowed(second, request("transit/keys/orders", "read", TRANSIT))  # first block
    assert allowed(first, request("secret/data/app/x", "create"))


@pytest.mark.parametrize(
    "code",
    [
        'role("admin");',
        'tenant("other");',
        'namespace("acme"); role("admin");',
        "expiry(2999-01-01T00:00:00Z);",
        'mount("sys/", "kv", "1");',
        'operation("read"); resource("secret/data/x");',
        'allowed(true); check if true;',
    ],
)
def test_appended_facts_cannot_widen(key: IamKey, allowed: Allowed, user_token: str, code: str) -> None:
    widened = append(key, user_token, code)
    assert not allowed(widened, request("sys/seal", "update", SYS))
    assert not allowed(widened, request("auth/token/create", "update", TOKEN))
    assert not allowed(widened, request("secret/data/x", "read", namespace="other"))
    assert not allowed(widened, request("secret/data/x", "read", now=NOW + HOUR + 5))
    assert allowed(widened, request("secret/data/x", "read"))


def test_appended_rules_cannot_widen(key: IamKey, allowed: Allowed, user_token: str) -> None:
    widened = append(key, user_token, 'role("admin") <- role("user"); tenant("other") <- tenant("acme");')
    assert not allowed(widened, request("sys/seal", "update", SYS))
    assert not allowed(widened, request("secret/data/x", "read", namespace="other"))


def test_hand_written_blocks_are_honoured(key: IamKey, allowed: Allowed, admin_token: str) -> None:
    """Checks from any biscuit library, not only the helper's shape."""
    sys_only = append(key, admin_token, 'check if resource($r), $r.starts_with("sys/");')
    assert allowed(sys_only, request("sys/rotate", "update", SYS))
    assert not allowed(sys_only, request("secret/data/x"))
    assert not allowed(sys_only, request("auth/token/lookup-self", "read", TOKEN))  # no exemption written
    no_delete = append(key, admin_token, 'reject if operation("delete");')
    assert not allowed(no_delete, request("secret/data/x", "delete"))
    assert allowed(no_delete, request("secret/data/x", "update"))
    until = append(key, admin_token, "check if time($t), $t < {t};",
                   {"t": datetime.fromtimestamp(NOW + 10, UTC)})
    assert allowed(until, request("sys/seal", "update", SYS, now=NOW + 9))
    assert not allowed(until, request("sys/seal", "update", SYS, now=NOW + 10))


def test_third_party_blocks_are_honoured(key: IamKey, allowed: Allowed, user_token: str) -> None:
    parsed = biscuit_auth.Biscuit.from_base64(user_token[3:], key.public_key.biscuit_key)
    service = biscuit_auth.KeyPair()
    block = parsed.third_party_request().create_block(
        service.private_key, biscuit_auth.BlockBuilder('check if operation("read");')
    )
    token = TOKEN_PREFIX + parsed.append_third_party(service.public_key, block).to_base64()
    assert allowed(token, request("secret/data/x", "read"))
    assert not allowed(token, request("secret/data/x", "update"))


def test_self_service_and_discovery_stay_usable(key: IamKey, allowed: Allowed, user_token: str) -> None:
    narrow = attenuate(user_token, key.public_key, paths=["transit/encrypt/orders"], operations=["update"])
    assert allowed(narrow, request("auth/token/lookup-self", "read", TOKEN))
    assert allowed(narrow, request("auth/token/revoke-self", "update", TOKEN))
    assert allowed(narrow, request("sys/internal/ui/mounts/secret/app", "read", SYS))
    assert allowed(narrow, request("transit/encrypt/orders", "update", TRANSIT))
    assert not allowed(narrow, request("transit/decrypt/orders", "update", TRANSIT))
    # The exemption cannot grant what the role lacks: a User still cannot read sys/ or create tokens.
    assert not allowed(narrow, request("auth/token/create", "update", TOKEN))
    assert not allowed(narrow, request("sys/internal/ui/resultant-acl", "read", SYS))


def test_attenuating_an_admin_token_for_administration_only(
    key: IamKey, allowed: Allowed, admin_token: str
) -> None:
    ops = attenuate(admin_token, key.public_key, paths=["sys/", "auth/"])
    assert allowed(ops, request("sys/mounts/kv2", "update", SYS))
    assert allowed(ops, request("auth/token/create", "update", TOKEN))
    assert not allowed(ops, request("secret/data/x", "read", KV2))


def test_paths_and_operations_are_parameters_not_code(key: IamKey, allowed: Allowed, user_token: str) -> None:
    tricky = 'secret/data/") or true; check if true; '
    token = attenuate(user_token, key.public_key, paths=[tricky])
    assert allowed(token, request(tricky + "x"))
    assert not allowed(token, request("secret/data/x"))


def test_attenuate_rejects_bad_input(key: IamKey, user_token: str) -> None:
    bad: list[dict[str, object]] = [
        {"operations": ["frobnicate"]},
        {"operations": ["sudo"]},
        {"paths": [""]},
        {"paths": ["/secret/"]},
        {"paths": ["secret/\x00"]},
        {"ttl": 0, "now": NOW},
        {"ttl": -1, "now": NOW},
        {"ttl": 60},  # no now
    ]
    for kwargs in bad:
        with pytest.raises(InvalidRequest):
            attenuate(user_token, key.public_key, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(InvalidRequest, match="verifies with this public key"):
        attenuate(user_token, IamKey.generate(1).public_key, operations=["read"])
    for garbage in ("sb.AAAA", "hvs.abc", "", "sb.!"):
        with pytest.raises(InvalidRequest):
            attenuate(garbage, key.public_key, operations=["read"])


def test_block_limit(key: IamKey, verifier: IamVerifier) -> None:
    token = issue_token(key, tenant=TENANT, role="user", ttl=HOUR, now=NOW)
    for _ in range(MAX_BLOCKS - 1):
        token = attenuate(token, key.public_key)
    verifier.authorize(token, request("secret/data/x"))
    with pytest.raises(InvalidRequest, match="blocks"):
        attenuate(token, key.public_key)


def test_inspect_and_root_key_id(key: IamKey, user_token: str) -> None:
    token = attenuate(user_token, key.public_key, paths=["secret/data/app/"], operations=["read"], ttl=60, now=NOW)
    shown = inspect(token)
    assert shown["verified"] is False and shown["root_key_id"] == key.key_id == root_key_id(token)
    assert [b["index"] for b in shown["blocks"]] == [0, 1]
    assert 'tenant("acme");' in shown["blocks"][0]["source"]
    assert '"secret/data/app/"' in shown["blocks"][1]["source"]
    for garbage in ("sb.AAAA", "nope"):
        with pytest.raises(InvalidRequest):
            inspect(garbage)
        with pytest.raises(InvalidRequest):
            root_key_id(garbage)
