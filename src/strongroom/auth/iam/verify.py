"""Verifying a biscuit and authorizing one request with it (docs/spec/tokens.md sections 1-4, 6).

:meth:`IamVerifier.verify` checks the text, the signature of every block against the accepted IAM public
keys and the shape of the authority block, and returns the token's facts; it authorizes nothing.
:meth:`IamVerifier.authorize` then decides one request: tenant, expiry, revocation and the Datalog
authorizer (the roles and every check an attenuation block added), on every call.

Every refusal is :class:`~strongroom.errors.PermissionDenied` with no detail, whatever the input: garbage,
a forged or tampered token, an expired, revoked or wrong-tenant one, or a check that failed.

Costs and caches (measured by ``bench/iam_authorize.py``): the accepted keys are parsed once, the
authorizer's Datalog is compiled once and merged into a fresh builder per request, ambient facts that repeat
(namespace, operation, mount, resource, the current second) are parsed once, and signature verification is
cached per exact token text in a bounded LRU. That cache is safe because verification is a pure function
of (token text, accepted keys), both fixed for the verifier's life; everything that depends on time or
state (expiry, revocation, the checks) runs on every request. Failures are not cached.
"""

from __future__ import annotations

import base64
import math
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, TypeVar, cast

import biscuit_auth

from strongroom.auth.iam.admission import check_blocks
from strongroom.auth.iam.policy import (
    AUTHORIZER_CODE,
    MAX_FACTS,
    MAX_ITERATIONS,
    MAX_TIME_MS,
    OPERATIONS,
    Role,
)
from strongroom.auth.iam.revocation import RevocationList
from strongroom.auth.iam.signing import IamPublicKey
from strongroom.auth.iam.text import MAX_BLOCKS, biscuit_text, is_library_failure
from strongroom.errors import PermissionDenied

DEFAULT_CACHE_SIZE = 4096
LIMIT_RETRIES = 3
_LIMITS_REACHED = "Reached Datalog execution limits"  # biscuit-python's message; tests/auth/iam pin it
T = TypeVar("T")
MAX_RESOURCE_CHARS = 4096
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

_AUTHORITY_QUERY = "authority($t, $r, $i, $e) <- tenant($t), role($r), issued($i), expiry($e)"
# The expiry an attenuation block declares beside its time check (spec section 7): display only.
_DECLARED_EXPIRY = re.compile(r"^expiry\((\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)\);$", re.MULTILINE)


@dataclass(frozen=True)
class TokenFacts:
    """What a verified token says. Times are whole seconds since the epoch.

    ``expires_at`` is the authority block's expiry (enforced); ``shown_expires_at`` also counts the
    ``expiry`` facts attenuation blocks declare, for ``lookup-self`` only. ``revocation_ids`` has one id
    per block, the authority block's first.
    """

    tenant: str
    role: Role
    issued_at: int
    expires_at: int
    shown_expires_at: int
    revocation_ids: tuple[str, ...]
    root_key_id: int

    @property
    def policies(self) -> list[str]:
        """``["tenant-admin"]`` or ``["tenant-user"]``."""
        return [self.role.policy_name]

    @property
    def revocation_id(self) -> str:
        """The id of the token's last block: revoking it revokes this token and its descendants only."""
        return self.revocation_ids[-1]

    def ttl_at(self, now: float) -> int:
        """Seconds left at ``now`` by ``shown_expires_at`` (0 once expired)."""
        return max(0, self.shown_expires_at - math.floor(now))


@dataclass(frozen=True)
class IamRequest:
    """The ambient facts of one request (spec section 3).

    ``namespace`` is the addressed namespace, ``resource`` the canonical path including the mount,
    ``operation`` one of :data:`~strongroom.auth.iam.policy.OPERATIONS`, ``now`` the clock's time. The
    mount fields describe the mount the router matched (``mount_path`` as it prefixes ``resource``);
    leave ``mount_path`` empty when no mount matched.
    """

    namespace: str
    resource: str
    operation: str
    now: float
    mount_path: str = ""
    mount_type: str = ""
    mount_version: str = ""


class VerifiedToken:
    """A token whose signatures and authority block are valid. It is authorized for nothing by itself."""

    __slots__ = ("_biscuit", "facts")

    def __init__(self, facts: TokenFacts, token: biscuit_auth.Biscuit) -> None:
        self.facts = facts
        self._biscuit = token

    def __repr__(self) -> str:
        return f"VerifiedToken(tenant={self.facts.tenant!r}, role={self.facts.role.value!r})"


class IamVerifier:
    """Verifies tokens against a fixed set of IAM public keys and authorizes requests with them."""

    def __init__(
        self,
        public_keys: Iterable[IamPublicKey],
        revocations: RevocationList,
        *,
        cache_size: int = DEFAULT_CACHE_SIZE,
    ) -> None:
        """``revocations`` is the default list; :meth:`authorize` can take a per-request one."""
        self._keys = {k.key_id: k.biscuit_key for k in public_keys}
        self._revocations = revocations
        # Compiled once; each request merges it into a fresh builder (~6 µs, where a snapshot round trip
        # costs ~30 µs and compiling the text ~60 µs). merge copies code but not limits: set them too.
        self._base = _limited_builder(AUTHORIZER_CODE)
        self._limits = self._base.limits()  # type: ignore[attr-defined]
        self._verify_cached = lru_cache(maxsize=cache_size)(self._verify_text)
        self._second = -1
        self._time_fact = biscuit_auth.Fact("time(1970-01-01T00:00:00Z)")

    def verify(self, token: str) -> VerifiedToken:
        """Check ``token``'s text, signatures and authority block; return its facts.

        Raises:
            PermissionDenied: anything wrong with the token (no detail).
        """
        return self._verify_cached(biscuit_text(token))

    def authorize(
        self,
        token: str | VerifiedToken,
        request: IamRequest,
        *,
        revocations: RevocationList | None = None,
    ) -> TokenFacts:
        """Decide ``request`` with ``token``; return the token's facts when it is allowed.

        Raises:
            PermissionDenied: the token is invalid, expired, revoked, for another tenant, or the
                authorizer (roles and attenuation checks) refuses; or the resource is not canonical.
            ValueError: ``request.operation`` is not an operation name (a bug in the caller).
            StorageError: the revocation list could not be read.
        """
        if request.operation not in OPERATIONS:
            raise ValueError(f"unknown operation {request.operation!r}")
        verified = token if isinstance(token, VerifiedToken) else self.verify(token)
        facts = verified.facts
        now = math.floor(request.now)
        namespace = request.namespace.strip("/")
        # The common refusals, decided before the Datalog; the authorizer checks them again.
        if facts.tenant != namespace or now >= facts.expires_at or not _canonical(request.resource):
            raise PermissionDenied()
        if (revocations if revocations is not None else self._revocations).is_revoked(facts.revocation_ids):
            raise PermissionDenied()
        ambient = [
            self._time(now),
            _fact("namespace", namespace),
            _fact("resource", request.resource),
            _fact("operation", request.operation),
        ]
        if request.mount_path:
            ambient.append(_mount_fact(request.mount_path, request.mount_type, request.mount_version))

        def run() -> None:
            builder = biscuit_auth.AuthorizerBuilder()
            builder.merge(cast(Any, self._base))  # the stubs say Authorizer; the library takes a builder
            builder.set_limits(self._limits)  # type: ignore[attr-defined]
            for fact in ambient:
                builder.add_fact(fact)
            builder.build(verified._biscuit).authorize()

        try:
            run_within_limits(run)
        except BaseException as exc:
            if not is_library_failure(exc):
                raise
            raise PermissionDenied() from None
        return facts

    def authorize_any(
        self,
        token: str | VerifiedToken,
        request: IamRequest,
        operations: Iterable[str],
        *,
        revocations: RevocationList | None = None,
    ) -> TokenFacts:
        """Like :meth:`authorize`, allowed when any of ``operations`` is (``request.operation`` ignored).

        For the router's check before a write's existence check decides ``create`` or ``update``.

        Raises:
            PermissionDenied: none is allowed (or no operation was given).
        """
        verified = token if isinstance(token, VerifiedToken) else self.verify(token)
        for operation in operations:
            try:
                return self.authorize(verified, _with_operation(request, operation), revocations=revocations)
            except PermissionDenied:
                continue
        raise PermissionDenied()

    def _time(self, now: int) -> biscuit_auth.Fact:
        if now != self._second:
            self._time_fact = biscuit_auth.Fact("time({t})", {"t": datetime.fromtimestamp(now, tz=UTC)})
            self._second = now
        return self._time_fact

    def _verify_text(self, text: str) -> VerifiedToken:
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            # Structure first (cheap, bounded): the time limit cannot stop one costly check, see admission.
            root_key_id = check_blocks(raw)
            key = self._keys.get(root_key_id) if root_key_id is not None else None
            if key is None or root_key_id is None:
                raise LookupError("unknown root key id")
            token = biscuit_auth.Biscuit.from_bytes(raw, key)
            facts = _authority_facts(token, root_key_id)
        except BaseException as exc:
            if not is_library_failure(exc):
                raise
            raise PermissionDenied() from None
        return VerifiedToken(facts, token)


def _authority_facts(token: biscuit_auth.Biscuit, root_key_id: int) -> TokenFacts:
    """Read the authority block's facts; anything but exactly one of each is refused."""
    blocks = token.block_count()
    if not 1 <= blocks <= MAX_BLOCKS:
        raise ValueError("block count")
    found = run_within_limits(
        lambda: _limited_builder("").build(token).query(biscuit_auth.Rule(_AUTHORITY_QUERY))
    )
    if len(found) != 1:
        raise ValueError("authority facts")
    tenant, role, issued, expiry = found[0].terms
    if not (isinstance(tenant, str) and isinstance(issued, datetime) and isinstance(expiry, datetime)):
        raise ValueError("authority fact types")
    expires_at = int(expiry.timestamp())
    shown = expires_at
    for index in range(1, blocks):
        for match in _DECLARED_EXPIRY.finditer(token.block_source(index)):
            declared = datetime.strptime(match[1], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
            shown = min(shown, int(declared.timestamp()))
    revocation_ids = tuple(token.revocation_ids)
    if len(revocation_ids) != blocks:
        raise ValueError("revocation ids")
    return TokenFacts(tenant, Role(role), int(issued.timestamp()), expires_at, shown, revocation_ids, root_key_id)


def _limited_builder(code: str) -> biscuit_auth.AuthorizerBuilder:
    builder = biscuit_auth.AuthorizerBuilder(code) if code else biscuit_auth.AuthorizerBuilder()
    # biscuit-python 0.4.0 has limits()/set_limits() but its stubs omit them; without them the 1 ms default
    # would deny at random under load, so a library without them fails here, loudly, not per request.
    limits = builder.limits()  # type: ignore[attr-defined]
    limits.max_facts = MAX_FACTS
    limits.max_iterations = MAX_ITERATIONS
    limits.max_time = timedelta(milliseconds=MAX_TIME_MS)
    builder.set_limits(limits)  # type: ignore[attr-defined]
    return builder


def run_within_limits(run: Callable[[], T]) -> T:
    """Run a Datalog evaluation, again when it hit the time limit only because the thread was not running.

    Biscuit's time limit is wall-clock time. On a loaded machine a thread can wait longer than the limit
    for a CPU, and a valid request would be denied at random. So an evaluation that stopped at the limits
    after using less than half of the time limit in CPU is run again (up to ``LIMIT_RETRIES`` times); one
    that really computed for that long (a hostile attenuation block) is not, so it costs at most the
    limit in CPU per request. Other failures are raised at once.
    """
    for attempt in range(LIMIT_RETRIES + 1):
        started = time.thread_time()
        try:
            return run()
        except Exception as exc:
            preempted = time.thread_time() - started < MAX_TIME_MS / 2000
            if attempt == LIMIT_RETRIES or not preempted or _LIMITS_REACHED not in str(exc):
                raise
    raise AssertionError("unreachable")


@lru_cache(maxsize=4096)
def _fact(name: str, value: str) -> biscuit_auth.Fact:
    # Parsed facts are immutable and reusable; paths, namespaces and operations repeat across requests.
    return biscuit_auth.Fact(name + "({v})", {"v": value})


@lru_cache(maxsize=256)
def _mount_fact(path: str, kind: str, version: str) -> biscuit_auth.Fact:
    return biscuit_auth.Fact("mount({p}, {k}, {v})", {"p": path, "k": kind, "v": version})


def _canonical(resource: str) -> bool:
    """A path a prefix check cannot be escaped from: no empty (but a trailing), ``.`` or ``..`` segment,
    no control character."""
    if not resource or len(resource) > MAX_RESOURCE_CHARS:
        return False
    if _CONTROL.search(resource):  # a regex: a character loop in Python cost ~15 us per request
        return False
    parts = resource.split("/")
    if resource.endswith("/"):
        parts.pop()
    return not any(part in ("", ".", "..") for part in parts)


def _with_operation(request: IamRequest, operation: str) -> IamRequest:
    return IamRequest(request.namespace, request.resource, operation, request.now,
                      request.mount_path, request.mount_type, request.mount_version)
