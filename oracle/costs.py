"""What an action costs: samples drawn, or the tokens those samples generate."""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from oracle.curves import Curves
from oracle.errors import OracleInputError

CostUnit = Literal["samples", "tokens"]
COST_UNITS: tuple[CostUnit, ...] = ("samples", "tokens")


def action_costs(curves: Curves, unit: CostUnit = "samples") -> NDArray[np.float64]:
    """(K,) costs k for `samples`; (n, K) costs k × the question's mean tokens per sample for `tokens`.

    A question without sample texts is charged the mean over the questions that have them.
    """
    ks = np.array(curves.ks, dtype=np.float64)
    if unit == "samples":
        return ks
    if unit != "tokens":
        raise OracleInputError(f"unknown cost unit {unit!r}: choose from {', '.join(COST_UNITS)}")
    known = np.isfinite(curves.tokens) & (curves.tokens > 0)
    if not known.any():
        raise OracleInputError("cost in tokens needs sample texts, and no sample has one")
    per_sample = np.where(known, curves.tokens, curves.tokens[known].mean())
    return per_sample[:, None] * ks[None, :]


def uniform_mix(cost: Sequence[float] | NDArray[np.float64], budget: float) -> tuple[int, int, float]:
    """Uniform allocation at a budget: the columns of the two neighbouring actions around it (by cost) and the
    share of the dearer one that makes the mean cost the budget (0 when one action fits exactly; a budget
    below the cheapest or above the dearest action gets that action alone).

    Plain Python: a handful of actions, asked once per query while serving, where numpy's call overhead
    would cost more than the work."""
    values = [float(c) for c in cost]
    order = sorted(range(len(values)), key=values.__getitem__)  # stable, as ties must be
    ranked = [values[i] for i in order]
    if budget >= ranked[-1]:
        return order[-1], order[-1], 0.0
    above = bisect.bisect_left(ranked, budget)
    if above == 0 or ranked[above] == budget:
        return order[above], order[above], 0.0
    low, high = order[above - 1], order[above]
    return low, high, (budget - values[low]) / (values[high] - values[low])


def uniform_accuracy(acc: NDArray[np.float64], cost: NDArray[np.float64], budget: float) -> float:
    """Mean accuracy of uniform allocation at `budget` (NaN below the cheapest action's mean cost)."""
    mean_cost = np.broadcast_to(cost, acc.shape).mean(axis=0)
    if budget < mean_cost.min():
        return float("nan")
    low, high, share = uniform_mix(mean_cost, budget)
    mean_acc = acc.mean(axis=0)
    return float((1 - share) * mean_acc[low] + share * mean_acc[high])
