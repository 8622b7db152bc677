"""ACL check cost: a realistic policy set, side by side with the cost of a bare dict lookup.

Run: ``.venv/bin/python -m bench.acl``. Prints microseconds per ``ACL.check`` and the ratio to a dict
probe measured in the same run (the floor for any lookup structure in Python).
"""

from __future__ import annotations

import time

from strongroom.auth.acl import ACL
from strongroom.auth.default_policies import DEFAULT_POLICY_TEXT
from strongroom.auth.policy import parse_policy

RULES = """
path "secret/data/app/*" { capabilities = ["read", "list"] }
path "secret/data/app/admin" { capabilities = ["deny"] }
path "kv/+/config" { capabilities = ["read"] }
path "transit/encrypt/+" {
  capabilities = ["update"]
  allowed_parameters = { "plaintext" = [], "context" = [] }
}
"""

CALLS = [
    ("read", "secret/data/app/db", None),
    ("update", "transit/encrypt/k", {"plaintext": "aGk="}),
    ("read", "kv/team/config", None),
]


def main(n: int = 50_000) -> None:
    acl = ACL([parse_policy(DEFAULT_POLICY_TEXT, "default"), parse_policy(RULES, "app")])
    table = {path: op for op, path, _ in CALLS}
    start = time.perf_counter()
    for _ in range(n):
        for op, path, params in CALLS:
            acl.check(op, path, params)
    per_check = (time.perf_counter() - start) / (n * len(CALLS))
    start = time.perf_counter()
    for _ in range(n):
        for _op, path, _params in CALLS:
            table.get(path)
    per_probe = (time.perf_counter() - start) / (n * len(CALLS))
    print(
        f"ACL.check: {per_check * 1e6:.2f} µs per call; dict probe {per_probe * 1e6:.3f} µs; "
        f"ratio {per_check / per_probe:.0f}x"
    )


if __name__ == "__main__":
    main()
