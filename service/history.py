"""What the dashboard draws: the last queries this gateway served, and one snapshot of the budget per tick.

Kept in the process, in bounded buffers (minutes of history, not a time-series database: Prometheus and the
Grafana dashboard in `deploy/` are for that). With several replicas, each draws its own traffic beside the
ledger they share.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

AGREEMENT_BINS = (0.0, 0.2, 0.4, 0.6, 0.8, 0.999, 1.0)
AGREEMENT_LABELS = ("<0.2", "0.2-0.4", "0.4-0.6", "0.6-0.8", "0.8-1", "1")


@dataclass(frozen=True)
class Served:
    """One answered query: when, how long (in all and waiting on backends), how many samples, how much agreement,
    and what each model it asked cost."""

    at: float
    seconds: float
    backend_seconds: float
    samples: int
    agreement: float
    costs: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Point:
    """The budget and the traffic at one tick."""

    t: float
    target: float
    realized: float
    """Mean cost per query over the ledger's window (all replicas)."""
    recent: float | None
    """Mean cost per query this gateway served since the last tick."""
    operating_budget: float
    lam: float | None
    rate: float
    """Queries per second this gateway answered since the last tick."""
    latency_ms: float | None
    backend_ms: float | None
    escalated: float | None = None
    """Share of this tick's queries that more than one model answered."""
    by_model: dict[str, float] = field(default_factory=dict)
    """Cost per second per model since the last tick."""


class History:
    def __init__(self, points: int = 900, recent: int = 2000, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.points: deque[Point] = deque(maxlen=points)
        self.served: deque[Served] = deque(maxlen=recent)
        self.since_tick: list[Served] = []
        self.last_tick = clock()

    def record(self, served: Served) -> None:
        self.served.append(served)
        self.since_tick.append(served)

    def tick(self, target: float, realized: float, operating_budget: float, lam: float | None) -> Point:
        """Close the interval since the last tick into one point."""
        now = self.clock()
        batch, self.since_tick = self.since_tick, []
        elapsed = max(now - self.last_tick, 1e-9)
        self.last_tick = now
        point = Point(
            t=now,
            target=target,
            realized=realized,
            recent=float(np.mean([sum(s.costs.values()) for s in batch])) if batch else None,
            operating_budget=operating_budget,
            lam=lam,
            rate=len(batch) / elapsed,
            latency_ms=_median_ms([s.seconds for s in batch]),
            backend_ms=_median_ms([s.backend_seconds for s in batch]),
            escalated=float(np.mean([len(s.costs) > 1 for s in batch])) if batch else None,
            by_model=_per_model(batch, elapsed),
        )
        self.points.append(point)
        return point

    def snapshot(self) -> dict[str, Any]:
        """Columns for the charts, and histograms of the recent queries' samples and agreement."""
        columns: dict[str, list[Any]] = {name: [] for name in Point.__dataclass_fields__ if name != "by_model"}
        models = sorted({model for point in self.points for model in point.by_model})
        by_model: dict[str, list[float]] = {model: [] for model in models}
        for point in self.points:
            for name, value in asdict(point).items():
                if name != "by_model":
                    columns[name].append(value)
            for model in models:
                by_model[model].append(point.by_model.get(model, 0.0))
        samples = [s.samples for s in self.served]
        counts = np.bincount(samples) if samples else np.zeros(1, dtype=np.int64)
        drawn = [int(k) for k in np.nonzero(counts)[0]]
        agreement, _ = np.histogram([s.agreement for s in self.served], bins=AGREEMENT_BINS)
        return {
            "series": columns,
            "cost_by_model": by_model,
            "samples_histogram": {"samples": drawn, "queries": [int(counts[k]) for k in drawn]},
            "agreement_histogram": {"bins": list(AGREEMENT_LABELS), "queries": [int(c) for c in agreement]},
            "recent_queries": len(self.served),
        }


def _per_model(batch: list[Served], elapsed: float) -> dict[str, float]:
    totals: dict[str, float] = {}
    for served in batch:
        for model, cost in served.costs.items():
            totals[model] = totals.get(model, 0.0) + cost
    return {model: total / elapsed for model, total in totals.items()}


def _median_ms(seconds: list[float]) -> float | None:
    return float(np.median(seconds) * 1e3) if seconds else None
