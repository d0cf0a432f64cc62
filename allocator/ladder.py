"""The ladder of rules a policy keeps so that serving can move its budget without refitting: rules fitted at
many values of λ, each with its mean spend on the training replays, and the mix of two neighbouring rungs
that spends a budget exactly (a randomised rule, as in the LP)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import numpy as np

Rule = TypeVar("Rule")
Ladder = tuple[tuple[Rule, float], ...]


def build_ladder(
    fit_at: Callable[[float], tuple[Rule, float]],
    budget: float,
    top: float,
    span: float,
    sweep: int,
    bisections: int,
) -> Ladder[Rule]:
    """Rules at λ = 0 and `sweep` values from `top / span` to `top`, plus a bisection onto `budget` (widening
    past `top` while the spend is still over it: a regression's error may tempt a replay on). Sorted by λ,
    keeping only rungs whose spend falls as λ rises."""
    rungs: dict[float, tuple[Rule, float]] = {}

    def spend(lam: float) -> float:
        rungs[lam] = fit_at(lam)
        return rungs[lam][1]

    for lam in (0.0, *np.geomspace(top / span, top, sweep)):
        spend(float(lam))
    lo, hi = 0.0, top
    if spend(lo) > budget:
        while spend(hi) > budget and hi < 1e9:
            lo, hi = hi, hi * 4
        for _ in range(bisections):
            mid = (lo + hi) / 2
            lo, hi = (lo, mid) if spend(mid) <= budget else (mid, hi)
    ladder: list[tuple[Rule, float]] = []
    for lam in sorted(rungs):
        if not ladder or rungs[lam][1] < ladder[-1][1]:
            ladder.append(rungs[lam])
    return tuple(ladder)


def rules_at(ladder: Ladder[Rule], budget: float) -> tuple[Rule, Rule, float]:
    """The cheapest rung whose spend fits `budget`, the rung below it, and the share of queries to give the
    lower one so that the mix spends the budget."""
    spends = np.array([spend for _, spend in ladder])
    fits = int(np.argmax(spends <= budget)) if (spends <= budget).any() else len(spends) - 1
    rule, spend = ladder[fits]
    if fits == 0 or spend > budget:
        return rule, rule, 0.0
    lower, lower_spend = ladder[fits - 1]
    return rule, lower, float(np.clip((budget - spend) / (lower_spend - spend), 0.0, 1.0))
