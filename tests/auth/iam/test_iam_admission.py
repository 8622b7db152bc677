"""Attenuation blocks that could make authorization expensive are refused before any evaluation, and a
time limit hit only because the thread was not running is retried (verify.run_within_limits)."""

from __future__ import annotations

import contextlib
import time

import biscuit_auth
import pytest

from strongroom.auth.iam import IamKey, IamVerifier, attenuate
from strongroom.auth.iam.admission import COST_BUDGET, Refused, check_blocks
from strongroom.auth.iam.policy import MAX_TIME_MS
from strongroom.auth.iam.text import TOKEN_PREFIX
from strongroom.auth.iam.verify import _LIMITS_REACHED, LIMIT_RETRIES, _limited_builder, run_within_limits
from strongroom.errors import InvalidRequest, PermissionDenied
from tests.auth.iam.conftest import KV2, request

READ = request("secret/data/x", "read", KV2)


def appended(key: IamKey, token: str, code: str) -> biscuit_auth.Biscuit:
    parsed = biscuit_auth.Biscuit.from_base64(token[3:], key.public_key.biscuit_key)
    return parsed.append(biscuit_auth.BlockBuilder(code))


def facts(n: int, name: str = "a") -> str:
    return " ".join(f"{name}({i});" for i in range(n))


@pytest.mark.parametrize(
    "code",
    [
        # 40^3 = 64,000 combinations (and 40^5, ~100 s of CPU, when this was found)
        facts(40) + " check if a($x), a($y), a($z), $x + $y + $z == -1;",
        facts(12) + " check if a($x), a($y), a($z), a($w), $x == -1;",
        facts(40) + " reject if a($x), a($y), a($z) or a($x), $x == -1;",
        'check if [1, 2, 3].any($x -> [1, 2].any($y -> $x == $y));',
        'check if resource($r), ["a"].all($p -> $r.starts_with($p));',
        'role("admin") <- role("user");',
        'p($x) <- resource($x); check if p($x);',
    ],
)
def test_costly_blocks_are_refused(key: IamKey, verifier: IamVerifier, user_token: str, code: str) -> None:
    token = appended(key, user_token, code)
    with pytest.raises(Refused):
        check_blocks(bytes(token.to_bytes()))
    started = time.process_time()
    with pytest.raises(PermissionDenied):
        verifier.authorize(TOKEN_PREFIX + token.to_base64(), READ)
    assert time.process_time() - started < 5  # refused before evaluation (the first case took minutes)


def test_costly_third_party_block_is_refused(key: IamKey, verifier: IamVerifier, user_token: str) -> None:
    parsed = biscuit_auth.Biscuit.from_base64(user_token[3:], key.public_key.biscuit_key)
    service = biscuit_auth.KeyPair()
    block = parsed.third_party_request().create_block(
        service.private_key, biscuit_auth.BlockBuilder(facts(30, "g") + " check if g($x), g($y), g($z);")
    )
    token = parsed.append_third_party(service.public_key, block)
    with pytest.raises(Refused):
        check_blocks(bytes(token.to_bytes()))
    with pytest.raises(PermissionDenied):
        verifier.authorize(TOKEN_PREFIX + token.to_base64(), READ)


@pytest.mark.parametrize(
    "code",
    [
        facts(40) + " check if a($x), $x == 3;",  # one predicate: 42 combinations
        facts(5) + " check if a($x), a($y), $x < $y;",  # 7 x 7
        'check if resource($r), operation($op), time($t), $r.starts_with("secret/");',
        'group("ops"); check if group("ops") or resource($r), $r.matches("^secret/data/[a-z]+$");',
    ],
)
def test_ordinary_blocks_are_admitted(key: IamKey, verifier: IamVerifier, user_token: str, code: str) -> None:
    token = appended(key, user_token, code)
    check_blocks(bytes(token.to_bytes()))
    with contextlib.suppress(PermissionDenied):  # some of these checks fail for READ; admission is tested
        verifier.authorize(TOKEN_PREFIX + token.to_base64(), READ)


def test_the_helpers_longest_tokens_stay_within_budget(key: IamKey, verifier: IamVerifier, user_token: str) -> None:
    """Attenuate with the helper until the token is as long as the server accepts: still admitted."""
    token, blocks, refusal = user_token, 1, ""
    while not refusal:
        try:
            token = attenuate(token, key.public_key, paths=["secret/data/", "secret/metadata/", f"kv{blocks}/"],
                              operations=["read", "list", "write"], ttl=3600, now=1_700_000_000)
            blocks += 1
        except InvalidRequest as exc:
            refusal = exc.message
    assert "longer than" in refusal or "blocks" in refusal
    assert blocks > 5
    check_blocks(bytes(biscuit_auth.Biscuit.from_base64(token[3:], key.public_key.biscuit_key).to_bytes()))
    verifier.authorize(token, READ)
    assert COST_BUDGET >= 1024


def test_biscuit_still_reports_limits_with_the_message_the_retry_looks_for(
    key: IamKey, user_token: str
) -> None:
    """Rules producing more than 1,000 facts stop at the facts limit (evaluated here directly, bypassing
    admission): the message is the one run_within_limits matches."""
    token = appended(key, user_token, facts(40) + " p($x, $y) <- a($x), a($y);")
    with pytest.raises(biscuit_auth.AuthorizationError, match=_LIMITS_REACHED):
        _limited_builder("allow if true;").build(token).authorize()


def test_run_within_limits_retries_only_when_the_cpu_was_not_used() -> None:
    calls: list[int] = []

    def preempted() -> None:
        calls.append(1)
        raise biscuit_auth.AuthorizationError(_LIMITS_REACHED)

    with pytest.raises(biscuit_auth.AuthorizationError):
        run_within_limits(preempted)
    assert len(calls) == LIMIT_RETRIES + 1

    calls.clear()

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise biscuit_auth.AuthorizationError(_LIMITS_REACHED)
        return "ok"

    assert run_within_limits(flaky) == "ok" and len(calls) == 3

    calls.clear()

    def denied() -> None:
        calls.append(1)
        raise biscuit_auth.AuthorizationError("authorization failed: a deny policy matched")

    with pytest.raises(biscuit_auth.AuthorizationError):
        run_within_limits(denied)
    assert len(calls) == 1

    calls.clear()

    def busy() -> None:
        calls.append(1)
        started = time.thread_time()
        while time.thread_time() - started < MAX_TIME_MS / 1000:
            pass
        raise biscuit_auth.AuthorizationError(_LIMITS_REACHED)

    with pytest.raises(biscuit_auth.AuthorizationError):
        run_within_limits(busy)
    assert len(calls) == 1
