"""Small statistics helpers with no dependencies beyond the stdlib.

Percentiles use linear interpolation between closest ranks (the same definition as
``numpy.percentile(..., method="linear")``), so results are comparable with other tools.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence


def percentile(values: Sequence[float], q: float) -> float:
    """Return the ``q``-th percentile (0 <= q <= 100) of ``values`` by linear interpolation.

    Raises ``ValueError`` on an empty sequence or an out-of-range ``q``, because silently
    returning 0 would make a broken run look like an infinitely fast one.
    """
    if not values:
        raise ValueError("percentile of an empty sequence")
    if not 0.0 <= q <= 100.0 or math.isnan(q):
        raise ValueError(f"percentile q must be within [0, 100], got {q}")
    ordered = sorted(values)
    if len(ordered) == 1:
        return float(ordered[0])
    rank = (len(ordered) - 1) * q / 100.0
    lo = math.floor(rank)
    hi = math.ceil(rank)
    if lo == hi:
        return float(ordered[lo])
    frac = rank - lo
    return float(ordered[lo] + (ordered[hi] - ordered[lo]) * frac)


def median(values: Sequence[float]) -> float:
    """Median of ``values``; ``nan`` for an empty sequence so tables still print."""
    if not values:
        return math.nan
    return float(statistics.median(values))


def spread_pct(values: Sequence[float]) -> float:
    """(max - min) / median in percent: a quick, honest noise indicator for a handful of rounds."""
    if len(values) < 2:
        return 0.0
    mid = median(values)
    if mid == 0 or math.isnan(mid):
        return math.nan
    return (max(values) - min(values)) / mid * 100.0
