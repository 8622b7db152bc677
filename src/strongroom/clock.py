"""Injectable wall-clock time.

Behaviour that depends on time (token TTLs, unseal progress expiry, KV ``delete_version_after``) reads a
:class:`Clock` instead of calling :func:`time.time`, so tests move time forward without sleeping.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    """A source of the current time in seconds since the epoch (UTC)."""

    def now(self) -> float:
        """Return the current time."""
        ...


class SystemClock:
    """The real wall clock."""

    def now(self) -> float:
        """Return :func:`time.time`."""
        return time.time()


@dataclass
class FakeClock:
    """A clock that only moves when told to; for tests and simulations."""

    current: float = field(default=1_700_000_000.0)

    def now(self) -> float:
        """Return the fixed current time."""
        return self.current

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``."""
        self.current += seconds


def rfc3339(ts: float) -> str:
    """Format ``ts`` the way Vault does (RFC 3339 with nanoseconds, UTC, ``Z`` suffix)."""
    dt = datetime.fromtimestamp(ts, tz=UTC)
    nanos = round((ts - int(ts)) * 1_000_000_000) % 1_000_000_000
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + f".{nanos:09d}Z"
