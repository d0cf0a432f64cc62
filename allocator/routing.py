"""Choosing a model without looking at its answers: random routing, the best fixed cascade (Mixture-of-Thoughts,
Yue et al. 2024), and a router that learns from the question's text which queries the strong model wins
(RouteLLM, Ong et al. 2024). Each sends a query to the cheapest or the dearest model's single sample, or to one
cascade, and none ever samples a model more than once unless the cascade does."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Self

import numpy as np
from numpy.typing import NDArray
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline

from allocator.base import Policy, stable_fraction
from allocator.data import Decisions, Outcomes, mix, one_shot
from allocator.learned import held_out_splits
from features.text import query_features
from oracle.errors import OracleInputError


def weak_and_strong(data: Outcomes) -> tuple[int, int]:
    """The columns of the cheapest model's and the dearest model's smallest single-model actions."""
    weak, strong = data.curves.single_sample_ends()
    if data.actions[weak].model == data.actions[strong].model:
        raise OracleInputError("routing chooses between models: give at least two outcome files")
    return weak, strong


class RandomRouting(Policy):
    """A fixed share of queries, chosen at random, goes to the strong model; the rest to the weak one."""

    name = "random-routing"
    movable = True

    def fit(self, data: Outcomes, budget: float) -> Self:
        self._remember(data, budget)
        self.weak_, self.strong_ = weak_and_strong(data)
        return self

    def share(self, budget: float) -> float:
        low, high = self.costs_[self.weak_], self.costs_[self.strong_]
        return float(np.clip((budget - low) / (high - low), 0.0, 1.0))

    def choose_at(self, texts: Sequence[str], budget: float | None) -> NDArray[np.intp]:
        share = self.share(self.budget_ if budget is None else budget)
        return np.array([self.strong_ if stable_fraction(t) < share else self.weak_ for t in texts], dtype=np.intp)

    def choose(self, texts: Sequence[str]) -> NDArray[np.intp]:
        return self.choose_at(texts, None)

    def evaluate(self, data: Outcomes, seed: int = 0, budget: float | None = None) -> Decisions:
        """In expectation over the random choice, so it spends exactly the budget whatever the sample."""
        share = self.share(self.budget_ if budget is None else budget)
        return mix(one_shot(data, np.full(data.n, self.weak_)), one_shot(data, np.full(data.n, self.strong_)), share)

    def spend_range(self) -> tuple[float, float]:
        return float(self.costs_[self.weak_]), float(self.costs_[self.strong_])


class FixedCascade(Policy):
    """The cascade (cheap model × k, then the dear one when the top answer's share is below t) that is most
    accurate on the training questions within the budget: one configuration for every query."""

    name = "fixed-cascade"

    def fit(self, data: Outcomes, budget: float) -> Self:
        self._remember(data, budget)
        accuracy = data.acc.mean(axis=0)
        within = [c for c, action in enumerate(data.actions) if action.cascade and self.costs_[c] <= budget]
        if not within:  # no cascade fits: the cheap model alone, as a cascade that never escalates would
            within = [weak_and_strong(data)[0]]
        self.column_ = max(within, key=lambda c: (accuracy[c], -self.costs_[c]))
        return self

    def choose(self, texts: Sequence[str]) -> NDArray[np.intp]:
        return np.full(len(texts), self.column_, dtype=np.intp)

    def description(self) -> dict[str, Any]:
        return super().description() | {"action": self.actions_[self.column_].record()}


class Router(Policy):
    """RouteLLM's matrix: a classifier of the question's text estimates the chance that the strong model's
    single sample is right where the weak model's is wrong; queries above a threshold go to the strong model.
    The threshold is a quantile of out-of-fold scores, so any budget is one lookup (it moves at serve time)."""

    name = "router"
    movable = True

    def __init__(self, folds: int = 3, seed: int = 0) -> None:
        self.folds = folds
        self.seed = seed

    def fit(self, data: Outcomes, budget: float) -> Self:
        self._remember(data, budget)
        self.weak_, self.strong_ = weak_and_strong(data)
        wins = data.acc[:, self.strong_] - data.acc[:, self.weak_] > 0.5  # strong right, weak wrong (mostly)
        scores = np.zeros(data.n)
        for train, test in held_out_splits(data.n, self.folds, self.seed):
            model = self._classifier([data.texts[i] for i in train], wins[train])
            scores[test] = _win_chance(model, [data.texts[i] for i in test])
        self.scores_ = np.sort(scores)
        self.model_ = self._classifier(data.texts, wins)
        return self

    def threshold(self, budget: float) -> float:
        """The score above which the budget's share of queries (by the training scores) goes to the strong model."""
        low, high = self.costs_[self.weak_], self.costs_[self.strong_]
        share = float(np.clip((budget - low) / (high - low), 0.0, 1.0))
        if share <= 0:
            return float("inf")
        return float(np.quantile(self.scores_, 1.0 - share, method="higher"))

    def choose_at(self, texts: Sequence[str], budget: float | None) -> NDArray[np.intp]:
        cut = self.threshold(self.budget_ if budget is None else budget)
        return np.where(_win_chance(self.model_, texts) >= cut, self.strong_, self.weak_).astype(np.intp)

    def choose(self, texts: Sequence[str]) -> NDArray[np.intp]:
        return self.choose_at(texts, None)

    def evaluate(self, data: Outcomes, seed: int = 0, budget: float | None = None) -> Decisions:
        return one_shot(data, self.choose_at(data.texts, budget))

    def spend_range(self) -> tuple[float, float]:
        return float(self.costs_[self.weak_]), float(self.costs_[self.strong_])

    def _classifier(self, texts: Sequence[str], wins: NDArray[np.bool_]) -> Pipeline | float:
        if wins.all() or not wins.any():
            return float(wins.mean())
        return make_pipeline(query_features(), LogisticRegression(C=1.0, max_iter=1000)).fit(list(texts), wins)


def _win_chance(model: Pipeline | float, texts: Sequence[str]) -> NDArray[np.float64]:
    if isinstance(model, float):
        return np.full(len(texts), model)
    return np.asarray(model.predict_proba(list(texts))[:, 1], dtype=np.float64)
