"""Hidden testing knobs for the background jobs' timing, read from the environment.

Production servers never set these: the runner ticks every 60 s with a lease of three ticks
(:mod:`strongroom.core.background`). Tests that kill a lease holder and wait for another node to take over
would otherwise wait minutes, so ``strongroom server`` applies, when present:

``STRONGROOM_TEST_JOB_INTERVAL``        seconds between ticks (e.g. ``0.2``)
``STRONGROOM_TEST_JOB_LEASE_TTL``       seconds a lease lasts without renewal (default: three intervals)
``STRONGROOM_TEST_TOKEN_CLEANUP_BATCH`` tokens removed per transaction by the token cleanup job

They are environment variables rather than configuration settings so that no configuration file can turn
them on by accident, and they are named ``TEST`` so that nobody mistakes them for tuning. A value that is
not a positive number stops the server at start (:class:`~strongroom.errors.InvalidRequest`) rather than
being ignored. docs/operations/cluster.md documents them.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

from strongroom.core.background import BackgroundRunner
from strongroom.errors import InvalidRequest

__all__ = ["BATCH_ENV", "INTERVAL_ENV", "LEASE_TTL_ENV", "apply_testing_overrides", "batch_override"]

INTERVAL_ENV = "STRONGROOM_TEST_JOB_INTERVAL"
LEASE_TTL_ENV = "STRONGROOM_TEST_JOB_LEASE_TTL"
BATCH_ENV = "STRONGROOM_TEST_TOKEN_CLEANUP_BATCH"

log = logging.getLogger(__name__)


def _positive(environ: Mapping[str, str], name: str) -> float | None:
    raw = environ.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = float(raw)
    except ValueError:
        raise InvalidRequest(f"{name} must be a number of seconds, not {raw!r}") from None
    if not 0 < value < 1e9:
        raise InvalidRequest(f"{name} must be positive")
    return value


def apply_testing_overrides(runner: BackgroundRunner, environ: Mapping[str, str] | None = None) -> None:
    """Set ``runner``'s tick interval and lease TTL from the testing variables, if set (before ``start``).

    Raises:
        InvalidRequest: a variable is set to something other than a positive number.
    """
    env = os.environ if environ is None else environ
    interval = _positive(env, INTERVAL_ENV)
    ttl = _positive(env, LEASE_TTL_ENV)
    batch_override(env)  # refuse a bad value at start, not at the job's first run
    if interval is None and ttl is None:
        return
    if interval is not None:
        runner.interval = interval
    runner.lease_ttl = ttl if ttl is not None else 3 * runner.interval
    log.warning(
        "testing overrides of background jobs in effect: tick every %gs, lease %gs",
        runner.interval,
        runner.lease_ttl,
    )


def batch_override(environ: Mapping[str, str] | None = None) -> int | None:
    """The token cleanup batch size from ``STRONGROOM_TEST_TOKEN_CLEANUP_BATCH``, or ``None`` if unset.

    Raises:
        InvalidRequest: set to something other than a positive whole number.
    """
    env = os.environ if environ is None else environ
    value = _positive(env, BATCH_ENV)
    if value is None:
        return None
    if value != int(value):
        raise InvalidRequest(f"{BATCH_ENV} must be a whole number")
    return int(value)
