"""Injectable wall-clock time.

Behaviour that depends on time (token TTLs, unseal progress expiry, KV ``delete_version_after``) reads a
:class:`Clock` instead of calling :func:`time.time`, so tests move time forward without sleeping.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
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
    # Every KV read formats its version's times (and metadata reads up to one per version): a memo of
    # recent timestamps (not secrets) and time.gmtime instead of datetime.strftime make it ~10x cheaper.
    text = _RFC3339_MEMO.get(ts)
    if text is None:
        seconds = math.floor(ts)
        nanos = round((ts - seconds) * 1_000_000_000)
        if nanos >= 1_000_000_000:
            seconds, nanos = seconds + 1, nanos - 1_000_000_000
        t = time.gmtime(seconds)
        text = (
            f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}"
            f".{nanos:09d}Z"
        )
        if len(_RFC3339_MEMO) >= 4096:
            _RFC3339_MEMO.clear()
        _RFC3339_MEMO[ts] = text
    return text


_RFC3339_MEMO: dict[float, str] = {}
