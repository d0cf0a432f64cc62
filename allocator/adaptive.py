"""Sampling in rounds: after each round, the agreement among the answers so far decides whether to go on.

An optimal-stopping rule, learnt by backward induction over replays of the training questions (the
Longstaff-Schwartz method). Every outcome is valued as correctness minus λ times the samples spent. At the
last level of the schedule a replay is worth what it got. One level earlier, a regression of that worth on
the vote state estimates the value of going on; the rule goes on where it beats the value of stopping
(the estimated chance that the majority so far is right, minus λ times what was spent); and so on down.
Going on keeps the option to stop later, which a one-step look-ahead would miss.

The same λ prices every question, as in the oracle, so one bisection on λ meets the budget. Vote states are
discrete, so spend jumps at some values of λ; the budget between two jumps is met exactly by serving a fixed
share of queries at the lower λ (a randomised rule, as in the LP).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Self

import numpy as np
from numpy.typing import NDArray
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import PolynomialFeatures, StandardScaler

from allocator.base import Policy, stable_fraction
from allocator.data import Decisions, Outcomes
from allocator.ladder import Ladder, build_ladder, rules_at
from allocator.replay import Replays, answer_counts, replay, vote_state
from oracle.errors import OracleInputError


def schedule(ks: Sequence[int], budget: float, growth: float = 0.25) -> tuple[int, ...]:
    """Cumulative sample counts at which to look: the first is the dearest action of at most half the budget
    (so that half is left to spend where agreement is low); after it, a look whenever the samples drawn have
    grown by `growth` (at least one sample), up to the largest action. A look after every sample would waste
    nothing offline, but each look is one more round trip to the backend when serving; a quarter more
    samples per round keeps a query to about a dozen rounds at most."""
    actions = sorted(int(k) for k in ks)
    affordable = [k for k in actions if k <= budget / 2]
    levels = [affordable[-1] if affordable else actions[0]]
    while levels[-1] < actions[-1]:
        levels.append(min(max(levels[-1] + 1, math.ceil(levels[-1] * (1 + growth))), actions[-1]))
    return tuple(levels)


_SWEEP = 24  # values of λ swept for the ladder of rules serving can move along


@dataclass(frozen=True)
class StoppingRule:
    """At one λ: for each level but the last, a regression of the value of going on on the vote state."""

    lam: float
    going_on: tuple[ValueModel, ...]


class Adaptive(Policy):
    """Draw the schedule's first level, then keep drawing while going on is worth more than stopping."""

    name = "adaptive"
    adaptive = True
    movable = True

    def __init__(
        self, growth: float = 0.25, orders: int = 48, seed: int = 0, levels: Sequence[int] | None = None
    ) -> None:
        self.growth = growth
        self.levels = levels
        self.orders = orders
        self.seed = seed

    def fit(self, data: Outcomes, budget: float) -> Self:
        self._remember(data, budget)
        self.levels_ = tuple(self.levels) if self.levels else schedule(data.ks, budget, self.growth)
        if self.levels_[0] > budget:
            raise OracleInputError(f"budget {budget:g} is below the first round of {self.levels_[0]} samples")
        replays = replay(data.votes[data.models[0]], self.levels_, self.orders, self.seed)
        self.staying_ = tuple(
            _probability_model(replays.states[r], replays.correct[r]) for r in range(len(self.levels_) - 1)
        )
        self.ladder_ = self._ladder(replays, budget)
        self.rule_, self.lower_rule_, self.lower_share_ = rules_at(self.ladder_, budget)
        return self

    def evaluate(self, data: Outcomes, seed: int = 0, budget: float | None = None) -> Decisions:
        groups = data.votes[data.models[0]]
        replays = replay(groups, self.levels_, self.orders, seed + 10_007)  # orders unseen in training
        counts = np.bincount(replays.question, minlength=data.n)
        levels = np.array(self.levels_, dtype=np.float64)
        samples, accuracy = np.zeros(data.n), np.zeros(data.n)
        rule, lower, lower_share = rules_at(self.ladder_, self.budget_ if budget is None else budget)
        for each, share in ((rule, 1 - lower_share), (lower, lower_share)):
            stop = self._stopping_levels(each, replays)
            right = replays.correct[stop, np.arange(stop.size)].astype(np.float64)
            samples += share * np.bincount(replays.question, weights=levels[stop], minlength=data.n) / counts
            accuracy += share * np.bincount(replays.question, weights=right, minlength=data.n) / counts
        unit = data.curves.unit_cost[:, 0]
        return Decisions(samples, accuracy, None, samples * unit, {data.models[0]: samples * unit})

    def next_samples(self, text: str, answers: Sequence[str | None], budget: float | None = None) -> int:
        drawn = len(answers)
        if drawn == 0:
            return self.levels_[0]
        level = int(np.searchsorted(self.levels_, drawn, side="right")) - 1
        if level < 0:  # some of the first round's samples failed: complete the round before deciding
            return self.levels_[0] - drawn
        if level >= len(self.levels_) - 1:
            return 0
        rule, lower_rule, lower_share = (
            (self.rule_, self.lower_rule_, self.lower_share_) if budget is None else rules_at(self.ladder_, budget)
        )
        rule = lower_rule if stable_fraction(text) < lower_share else rule
        state = vote_state(answer_counts(answers), drawn)
        goes = self._goes_on(rule.going_on[level], rule.lam, level, state, float(drawn))[0]
        return self.levels_[level + 1] - drawn if goes else 0

    def lam(self, budget: float | None = None) -> float:
        """The mix's mean λ at `budget`."""
        rule, lower_rule, lower_share = rules_at(self.ladder_, self.budget_ if budget is None else budget)
        return (1 - lower_share) * rule.lam + lower_share * lower_rule.lam

    def spend_range(self) -> tuple[float, float]:
        return self.ladder_[-1][1], self.ladder_[0][1]

    def description(self) -> dict[str, Any]:
        return super().description() | {
            "levels": list(self.levels_),
            "lambda": self.rule_.lam,
            "lower_lambda": self.lower_rule_.lam,
            "lower_share": self.lower_share_,
        }

    def _goes_on(
        self, going_on: ValueModel, lam: float, level: int, states: NDArray[np.float64], spent: float
    ) -> NDArray[np.bool_]:
        """Whether going on is worth more than stopping now, with `spent` samples already paid for."""
        stopping = _predict(self.staying_[level], states) - lam * spent
        return np.asarray(going_on.predict(states) > stopping, dtype=np.bool_)

    def _stopping_levels(self, rule: StoppingRule, replays: Replays) -> NDArray[np.intp]:
        """The level at which each replay stops under `rule`."""
        stop = np.zeros(replays.question.size, dtype=np.intp)
        going = np.arange(replays.question.size)
        for level in range(len(self.levels_) - 1):
            if going.size == 0:
                break
            states = replays.states[level, going]
            going = going[self._goes_on(rule.going_on[level], rule.lam, level, states, self.levels_[level])]
            stop[going] = level + 1
        return stop

    def _backward(self, replays: Replays, lam: float, fixed: _Fixed) -> tuple[StoppingRule, NDArray[np.intp]]:
        """The stopping rule at `lam`, learnt from the last level down, and where each replay stops."""
        last = len(self.levels_) - 1
        worth = replays.correct[last] - lam * self.levels_[last]
        stop = np.full(replays.question.size, last, dtype=np.intp)
        going_on: list[ValueModel] = []
        for level in reversed(range(last)):
            design = fixed.designs[level]
            model = design.fit(worth)
            going_on.insert(0, model)
            goes = design.predict(model) > fixed.staying[level] - lam * self.levels_[level]
            worth = np.where(goes, worth, replays.correct[level] - lam * self.levels_[level])
            stop = np.where(goes, stop, level)
        return StoppingRule(lam, tuple(going_on)), stop

    def _ladder(self, replays: Replays, budget: float) -> Ladder[StoppingRule]:
        """Rules at many values of λ with their spend on the training replays (see `allocator.ladder`)."""
        levels = np.array(self.levels_, dtype=np.float64)
        fixed = _Fixed.of(list(replays.states[:-1]), self.staying_)

        def fit_at(lam: float) -> tuple[StoppingRule, float]:
            rule, stop = self._backward(replays, lam, fixed)
            return rule, float(levels[stop].mean())

        top = 1.0 / float(np.diff(levels).min()) + 1.0 if len(levels) > 1 else 1.0
        return build_ladder(fit_at, budget, top, span=1000, sweep=_SWEEP, bisections=40)


@dataclass(frozen=True)
class _Fixed:
    """What does not change with λ while a ladder is built: a ridge design and P(right) per level's states."""

    designs: tuple[RidgeDesign, ...]
    staying: tuple[NDArray[np.float64], ...]

    @classmethod
    def of(cls, states: Sequence[NDArray[np.float64]], staying: Sequence[Pipeline | float]) -> _Fixed:
        return cls(
            tuple(RidgeDesign(s) for s in states), tuple(_predict(m, s) for m, s in zip(staying, states, strict=True))
        )


class ValueModel:
    """E[worth | state]: ridge regression on the standardised state and its pairwise products."""

    mean_: NDArray[np.float64]
    scale_: NDArray[np.float64]
    coef_: NDArray[np.float64]
    intercept_: float

    def __init__(self, states: NDArray[np.float64], worth: NDArray[np.float64], alpha: float = 1.0) -> None:
        fitted = RidgeDesign(states, alpha).fit(worth)
        self.mean_, self.scale_, self.coef_, self.intercept_ = (
            fitted.mean_,
            fitted.scale_,
            fitted.coef_,
            fitted.intercept_,
        )

    @classmethod
    def of(
        cls, mean: NDArray[np.float64], scale: NDArray[np.float64], coef: NDArray[np.float64], intercept: float
    ) -> ValueModel:
        model = cls.__new__(cls)
        model.mean_, model.scale_, model.coef_, model.intercept_ = mean, scale, coef, intercept
        return model

    def predict(self, states: NDArray[np.float64]) -> NDArray[np.float64]:
        return np.asarray(((_with_products(states) - self.mean_) / self.scale_) @ self.coef_ + self.intercept_)


class RidgeDesign:
    """What every value model over the same states shares: their standardised products and the inverted Gram
    matrix. A ladder refits the rule at every λ on the same replays: each fit is then one product, not a solve
    of the whole regression."""

    def __init__(self, states: NDArray[np.float64], alpha: float = 1.0) -> None:
        expanded = _with_products(states)
        self.mean = expanded.mean(axis=0)
        self.scale = expanded.std(axis=0) + 1e-9
        self.z = (expanded - self.mean) / self.scale
        self.inverse = np.linalg.inv(self.z.T @ self.z + alpha * np.eye(self.z.shape[1]))

    def fit(self, worth: NDArray[np.float64]) -> ValueModel:
        intercept = float(worth.mean())
        return ValueModel.of(self.mean, self.scale, self.inverse @ (self.z.T @ (worth - intercept)), intercept)

    def predict(self, model: ValueModel) -> NDArray[np.float64]:
        """`model.predict` on the states this design was built from, without expanding them again."""
        return np.asarray(self.z @ model.coef_ + model.intercept_)


def _with_products(states: NDArray[np.float64]) -> NDArray[np.float64]:
    first, second = np.triu_indices(states.shape[1])
    return np.hstack([states, states[:, first] * states[:, second]])


def _probability_model(states: NDArray[np.float64], right: NDArray[np.bool_]) -> Pipeline | float:
    """P(right | state): a logistic regression on the state and its pairwise products, or a constant."""
    if right.all() or not right.any():
        return float(right.mean())
    model = make_pipeline(
        PolynomialFeatures(2, include_bias=False), StandardScaler(), LogisticRegression(C=1.0, max_iter=1000)
    )
    return model.fit(states, right)


def _predict(model: Pipeline | float, states: NDArray[np.float64]) -> NDArray[np.float64]:
    if isinstance(model, float):
        return np.full(states.shape[0], model)
    return np.asarray(model.predict_proba(states)[:, 1], dtype=np.float64)
