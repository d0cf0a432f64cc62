"""What an action costs: samples drawn, or the tokens those samples generate."""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import NDArray

from oracle.curves import Curves
from oracle.errors import OracleInputError
from oracle.frontier import frontier

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


def uniform_accuracy(acc: NDArray[np.float64], cost: NDArray[np.float64], budget: float) -> float:
    """Best accuracy of giving every question the same action, mixing two neighbouring actions to fit a budget.

    Uniform allocation is the Lagrangian oracle for one "average question", so its frontier gives the answer.
    """
    mean_cost = np.broadcast_to(cost, acc.shape).mean(axis=0)
    curve = frontier(acc.mean(axis=0, keepdims=True), mean_cost)
    if budget < curve.avg_cost[0]:
        return float("nan")
    return curve.lp_bound_at(budget)
