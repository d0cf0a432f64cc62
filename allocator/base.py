"""The policy interface: fitted on outcomes at a budget, then asked how many samples a query gets."""

from __future__ import annotations

import zlib
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar, Self

import numpy as np
from numpy.typing import NDArray

from allocator.data import Decisions, Outcomes, one_shot
from allocator.plans import ActionPlan, Plan, RoundsPlan
from oracle.errors import OracleInputError
from oracle.solver import solve


class Policy(ABC):
    """Decides a sample count per query. `__init__` keeps hyper-parameters; `fit` sets attributes ending in `_`.

    One-shot policies implement `choose` (an action per text, before any sample is drawn). Adaptive ones
    sample in rounds and override `evaluate` (replaying recorded samples) and `next_samples`.
    """

    name: ClassVar[str]
    adaptive: ClassVar[bool] = False
    movable: ClassVar[bool] = False
    """Whether the policy can serve at another budget than it was fitted at (what online control moves)."""

    @abstractmethod
    def fit(self, data: Outcomes, budget: float) -> Self:
        """Learn from `data` so that the mean cost per query is about `budget`."""

    def choose(self, texts: Sequence[str]) -> NDArray[np.intp]:
        """The column of `ks_` to use for each text (one-shot policies)."""
        raise NotImplementedError(f"{self.name} samples in rounds: use next_samples")

    def next_samples(self, text: str, answers: Sequence[str | None], budget: float | None = None) -> int:
        """How many more samples to draw for `text`, given the answers so far (none yet at the start); 0 stops.

        `budget` is the operating budget online control asks for (the fitted one when None or not movable).
        One-shot policies decide everything up front.
        """
        return 0 if answers else self.ks_[self.choose_one(text, budget)]

    def plan(self, text: str, budget: float | None = None) -> Plan:
        """How serving samples `text` at `budget`: rounds of `next_samples` of the one model for an adaptive
        policy, the chosen action for a one-shot one."""
        if self.adaptive:
            return RoundsPlan(self.actions_[0].model, lambda answers: self.next_samples(text, answers, budget))
        return ActionPlan(self.actions_[self.choose_one(text, budget)])

    def models(self) -> list[str]:
        """The models its actions sample, cheapest first as the training data listed them."""
        return list(dict.fromkeys(m for a in self.actions_ for m in (a.model, a.then) if m is not None))

    def choose_one(self, text: str, budget: float | None) -> int:
        """`choose_at` for one text: what serving asks, once per query."""
        return int(self.choose_at([text], budget)[0])

    def choose_at(self, texts: Sequence[str], budget: float | None) -> NDArray[np.intp]:
        """`choose` at an operating budget; policies that are not movable ignore it."""
        return self.choose(texts)

    def lam(self, budget: float | None = None) -> float | None:
        """λ, the accuracy a sample must buy to be drawn, at `budget` (None for policies that have none)."""
        return None

    def spend_range(self) -> tuple[float, float]:
        """The least and most this policy can spend per query on average: the span online control can move."""
        if not self.movable:
            return self.budget_, self.budget_
        return float(min(self.costs_)), float(max(self.costs_))

    def evaluate(self, data: Outcomes, seed: int = 0, budget: float | None = None) -> Decisions:
        """Expected samples, cost and correctness on each question of `data` (held out from fitting), at
        `budget` where the policy can move (its own otherwise)."""
        return one_shot(data, self.choose_at(data.texts, budget))

    def _remember(self, data: Outcomes, budget: float) -> None:
        if data.n == 0:
            raise OracleInputError("there are no questions to learn from")
        check_budget(data.mean_cost, budget)
        self.ks_ = data.ks
        self.actions_ = tuple(data.actions)
        self.costs_ = data.mean_cost
        """Each action's mean cost on the training questions: what a one-shot choice is priced at."""
        self.budget_ = float(budget)
        self.prices_ = dict(data.curves.prices)
        """Each model's price per unit of cost (sample or token), as trained with."""

    def description(self) -> dict[str, Any]:
        """Hyper-parameters and what was learnt, for a model's manifest."""
        return {"policy": self.name, "ks": list(self.ks_), "budget": self.budget_}


def check_budget(costs: Sequence[float] | NDArray[np.float64], budget: float) -> None:
    """A policy needs room for at least the cheapest action on every query."""
    cheapest = float(np.min(costs))
    if not np.isfinite(budget) or budget < cheapest:
        raise OracleInputError(f"budget {budget:g} is below the cheapest action (costing {cheapest:g})")


def oracle_labels(data: Outcomes, budget: float) -> NDArray[np.intp]:
    """The oracle's action for each question at `budget`: what imitation learns to copy."""
    return solve(data.acc, data.cost, budget).actions


def lam_for_budget(
    scores: NDArray[np.float64], cost: NDArray[np.float64], budget: float, *, subsidise: bool = False
) -> float:
    """The smallest λ at which argmax_a scores(a) - λ·cost(a) spends at most `budget` on average.

    λ >= 0 unless `subsidise`, which lets λ go negative to push a scorer that under-spends up to the budget.
    Spend falls as λ rises (the oracle's monotonicity argument holds for any scores), so bisection applies.
    """

    def spend(lam: float) -> float:
        return float(cost[np.argmax(scores - lam * cost, axis=1)].mean())

    steps = np.diff(np.unique(cost))
    bound = float(np.ptp(scores)) / (float(steps.min()) if steps.size else 1.0) + 1.0
    lo, hi = (-bound if subsidise else 0.0), bound
    if spend(lo) <= budget:
        return lo
    for _ in range(100):
        mid = (lo + hi) / 2
        if not lo < mid < hi:
            break
        if spend(mid) <= budget:
            hi = mid
        else:
            lo = mid
    return hi


def stable_fraction(text: str) -> float:
    """A number in [0, 1) fixed by the text: lets a mixed strategy treat the same query the same way twice."""
    return zlib.crc32(text.encode("utf-8")) / 2**32
