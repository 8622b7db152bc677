"""Roles, operations and the authorizer's Datalog: the server side of docs/spec/tokens.md sections 3-4.

``AUTHORIZER_CODE`` is the exact Datalog the spec shows (a test compares the two), compiled once per
:class:`~strongroom.auth.iam.verify.IamVerifier`.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    """The two roles the platform IAM issues."""

    ADMIN = "admin"
    USER = "user"

    @property
    def policy_name(self) -> str:
        """The policy name ``lookup-self`` reports (a name only: the authorizer decides)."""
        return f"tenant-{self.value}"

    def can_see_mount(self, mount_type: str) -> bool:
        """Whether mount discovery (``sys/internal/ui/mounts``) shows a mount of this type to the role."""
        return self is Role.ADMIN or mount_type in USER_MOUNT_TYPES


USER_MOUNT_TYPES = frozenset({"kv", "transit"})

OPERATIONS = ("read", "create", "update", "patch", "delete", "list")
"""The values of the ``operation`` fact: Vault's ACL capabilities that name operations."""

SELF_SERVICE_PATHS = ("auth/token/lookup-self", "auth/token/renew-self", "auth/token/revoke-self")
"""Token self-service, answered from the biscuit itself for both roles (spec section 7)."""

DISCOVERY_PATH = "sys/internal/ui/mounts"
"""Mount discovery, read by the Vault CLI before every ``vault kv`` command."""

AUTHORIZER_CODE = """\
// The token speaks for the tenant the request addresses, and only until its expiry.
check if tenant($tenant), namespace($tenant);
check if expiry($expiry), time($time), $time < $expiry;

// Self-service endpoints of the token itself, for both roles (section 7).
allow if role($role), ["admin", "user"].contains($role), resource($r),
    ["auth/token/lookup-self", "auth/token/renew-self", "auth/token/revoke-self"].contains($r);

// Administrator: everything inside its tenant.
allow if role("admin");

// User, KV mounts: every data operation; the KV v2 mount configuration only for reading.
allow if role("user"), mount($m, "kv", $v), resource($r), operation($op),
    !($v == "2" && $r == $m + "config" && $op != "read");

// User, transit mounts: the data-plane operations and reading key metadata (public keys).
allow if role("user"), mount($m, "transit", $v), resource($r), operation("update"),
    $r.starts_with($m + "encrypt/") || $r.starts_with($m + "decrypt/") || $r.starts_with($m + "rewrap/")
    || $r.starts_with($m + "datakey/") || $r.starts_with($m + "sign/") || $r.starts_with($m + "verify/")
    || $r.starts_with($m + "hmac/") || $r == $m + "hash" || $r.starts_with($m + "hash/")
    || $r == $m + "random" || $r.starts_with($m + "random/");
allow if role("user"), mount($m, "transit", $v), resource($r), operation($op), ["read", "list"].contains($op),
    $r.starts_with($m + "keys/");

// User: mount discovery, which the Vault CLI calls before every `vault kv` command.
allow if role("user"), operation("read"), resource($r),
    $r == "sys/internal/ui/mounts" || $r.starts_with("sys/internal/ui/mounts/");

deny if true;
"""

# Biscuit's defaults are 1,000 facts, 100 iterations and 1 ms; the time limit alone is raised, because
# 1 ms is within scheduling noise on a loaded 2-core machine and would deny valid requests at random.
MAX_FACTS = 1000
MAX_ITERATIONS = 100
MAX_TIME_MS = 20
