"""Baselines: the same sample count for everyone, and more samples for longer questions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Self

import numpy as np
from numpy.typing import NDArray

from allocator.base import Policy, stable_fraction
from allocator.data import Decisions, Outcomes, mix, one_shot
from oracle.costs import uniform_mix


class Uniform(Policy):
    """Every query gets k samples; a budget between two actions mixes them (each query's draw fixed by its text)."""

    name = "uniform"
    movable = True

    def fit(self, data: Outcomes, budget: float) -> Self:
        self._remember(data, budget)
        self.low_, self.high_, self.share_ = uniform_mix(self.costs_, budget)
        return self

    def choose(self, texts: Sequence[str]) -> NDArray[np.intp]:
        return self._mix(texts, self.low_, self.high_, self.share_)

    def choose_at(self, texts: Sequence[str], budget: float | None) -> NDArray[np.intp]:
        if budget is None:
            return self.choose(texts)
        return self._mix(texts, *uniform_mix(self.costs_, budget))

    def choose_one(self, text: str, budget: float | None) -> int:
        low, high, share = (self.low_, self.high_, self.share_) if budget is None else uniform_mix(self.costs_, budget)
        return high if stable_fraction(text) < share else low

    @staticmethod
    def _mix(texts: Sequence[str], low: int, high: int, share: float) -> NDArray[np.intp]:
        return np.array([high if stable_fraction(text) < share else low for text in texts], dtype=np.intp)

    def evaluate(self, data: Outcomes, seed: int = 0, budget: float | None = None) -> Decisions:
        """The mix's expectation, so the baseline spends exactly the budget whatever the sample of questions."""
        low, high, share = (self.low_, self.high_, self.share_) if budget is None else uniform_mix(self.costs_, budget)
        if share == 0.0:
            return one_shot(data, np.full(data.n, low))
        return mix(one_shot(data, np.full(data.n, low)), one_shot(data, np.full(data.n, high)), share)


class LongerGetsMore(Policy):
    """A simple baseline: the longest questions get the dearer of two actions, the rest the cheaper one.

    The dearer action is the cheapest one of at least twice the budget, the cheaper the dearest of at most
    half of it; the share of questions that get the dearer one meets the budget on the training texts.
    """

    name = "heuristic"

    def fit(self, data: Outcomes, budget: float) -> Self:
        self._remember(data, budget)
        cost = self.costs_
        cheaper = cost <= budget / 2
        dearer = cost >= budget * 2
        self.low_ = int(np.argmax(np.where(cheaper, cost, -np.inf))) if cheaper.any() else int(np.argmin(cost))
        self.high_ = int(np.argmin(np.where(dearer, cost, np.inf))) if dearer.any() else int(np.argmax(cost))
        gap = cost[self.high_] - cost[self.low_]
        share = float(np.clip((budget - cost[self.low_]) / gap, 0.0, 1.0)) if gap > 0 else 0.0
        lengths = np.array([len(text) for text in data.texts], dtype=np.float64)
        self.min_length_ = float(np.quantile(lengths, 1 - share)) if share > 0 else np.inf
        return self

    def choose(self, texts: Sequence[str]) -> NDArray[np.intp]:
        longer = np.array([len(text) > self.min_length_ for text in texts], dtype=bool)
        return np.where(longer, self.high_, self.low_).astype(np.intp)
