"""Skip-or-fail for external tools and services.

With ``STRONGROOM_REQUIRE_ALL=1`` (set by ``.ci/run``) a missing tool or backend fails the test instead of
skipping it, so CI can never go green by silently testing less.
"""

from __future__ import annotations

import os
import shutil

import pytest


def require_all() -> bool:
    """Whether missing components must fail rather than skip."""
    return os.environ.get("STRONGROOM_REQUIRE_ALL", "") not in ("", "0")


def missing(reason: str) -> None:
    """Fail (under STRONGROOM_REQUIRE_ALL) or skip the current test with ``reason``."""
    if require_all():
        pytest.fail(f"required component missing: {reason}")
    pytest.skip(reason)  # only reached without STRONGROOM_REQUIRE_ALL, which turns this into a failure


def require_binary(name: str, path: str | None = None) -> str:
    """Return the path of executable ``name`` or fail/skip."""
    found = path if path and os.access(path, os.X_OK) else shutil.which(name)
    if not found:
        missing(f"{name} is not installed")
        raise AssertionError("unreachable")
    return found
