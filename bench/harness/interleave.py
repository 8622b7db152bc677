"""Interleaved A/B/... runs and median summaries.

On a shared, noisy machine, running all of A and then all of B turns background load drift
into a fake A-vs-B difference. Running A, B, A, B, ... spreads the drift over all variants,
and medians over rounds discard the occasional disturbed run.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from .load import LoadResult
from .stats import median, spread_pct

T = TypeVar("T")


def interleave(
    variants: Mapping[str, Callable[[int], T]],
    rounds: int,
    *,
    on_result: Callable[[str, int, T], None] | None = None,
) -> dict[str, list[T]]:
    """Call every variant once per round, in order (A, B, A, B, ...); return name -> results.

    Each callable receives the round index (0-based). ``on_result(name, round, result)`` is
    called after each run, e.g. to print progress as it happens.
    """
    if rounds < 1:
        raise ValueError("rounds must be >= 1")
    results: dict[str, list[T]] = {name: [] for name in variants}
    for rnd in range(rounds):
        for name, fn in variants.items():
            value = fn(rnd)
            results[name].append(value)
            if on_result is not None:
                on_result(name, rnd, value)
    return results


@dataclass(frozen=True)
class Summary:
    """Medians over rounds of one variant, plus every per-round value for the record."""

    name: str
    rounds: int
    rps: float
    p50_ms: float
    p99_ms: float
    cpu_ms_per_op: float
    errors: int
    client: str
    all_rps: tuple[float, ...]
    all_p50_ms: tuple[float, ...]
    all_p99_ms: tuple[float, ...]
    all_cpu_ms_per_op: tuple[float, ...]

    @property
    def rps_spread_pct(self) -> float:
        """(max - min) / median of req/s over rounds, in percent."""
        return spread_pct(self.all_rps)

    def as_dict(self) -> dict[str, object]:
        """JSON-friendly form."""
        return {
            "name": self.name,
            "rounds": self.rounds,
            "client": self.client,
            "rps": round(self.rps, 1),
            "p50_ms": round(self.p50_ms, 3),
            "p99_ms": round(self.p99_ms, 3),
            "cpu_ms_per_op": None if math.isnan(self.cpu_ms_per_op) else round(self.cpu_ms_per_op, 4),
            "errors": self.errors,
            "all_rps": [round(x, 1) for x in self.all_rps],
            "all_p50_ms": [round(x, 3) for x in self.all_p50_ms],
            "all_p99_ms": [round(x, 3) for x in self.all_p99_ms],
            "all_cpu_ms_per_op": [round(x, 4) for x in self.all_cpu_ms_per_op],
        }


def summarize(name: str, results: Sequence[LoadResult]) -> Summary:
    """Median req/s, p50, p99 and CPU ms/op over ``results`` (each metric's own median)."""
    cpu = [r.cpu_ms_per_op for r in results if r.cpu_ms_per_op is not None]
    clients = sorted({r.client for r in results})
    return Summary(
        name=name,
        rounds=len(results),
        rps=median([r.rps for r in results]),
        p50_ms=median([r.p50_ms for r in results]),
        p99_ms=median([r.p99_ms for r in results]),
        cpu_ms_per_op=median(cpu),
        errors=sum(r.error_count for r in results),
        client="+".join(clients),
        all_rps=tuple(r.rps for r in results),
        all_p50_ms=tuple(r.p50_ms for r in results),
        all_p99_ms=tuple(r.p99_ms for r in results),
        all_cpu_ms_per_op=tuple(cpu),
    )


def _fmt(value: float, digits: int) -> str:
    if math.isnan(value):
        return "n/a"
    return f"{value:,.{digits}f}"


def format_table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A GitHub-markdown table (also readable in a terminal)."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def ratio_table(summaries: Sequence[Summary], baseline: str | None = None) -> str:
    """Side-by-side medians with ratios against ``baseline`` (default: the first summary).

    ``x req/s`` > 1 means faster than the baseline; ``x CPU`` > 1 means more server CPU per
    request. The last column shows every round's req/s, so the noise is visible.
    """
    if not summaries:
        return "(no results)"
    base = next((s for s in summaries if s.name == baseline), summaries[0])
    rows = []
    for s in summaries:
        rps_ratio = s.rps / base.rps if base.rps else math.nan
        cpu_ratio = s.cpu_ms_per_op / base.cpu_ms_per_op if base.cpu_ms_per_op else math.nan
        rows.append(
            [
                s.name,
                _fmt(s.rps, 0),
                _fmt(rps_ratio, 2),
                _fmt(s.p50_ms, 2),
                _fmt(s.p99_ms, 2),
                _fmt(s.cpu_ms_per_op, 3),
                _fmt(cpu_ratio, 2),
                str(s.errors),
                " / ".join(f"{x:,.0f}" for x in s.all_rps),
            ]
        )
    headers = ["variant", "req/s", f"x req/s vs {base.name}", "p50 ms", "p99 ms", "CPU ms/op", "x CPU",
               "errors", "req/s per round"]  # fmt: skip
    return format_table(headers, rows)
