"""Honest evaluation: every policy fitted on some questions and judged on others, against the yardsticks.

With one model the yardsticks are uniform allocation (every query the same k, mixed to the budget) and the
oracle. With several they are every model alone at each k, random routing (the baseline gains are measured
from), the best fixed cascade (fitted in-fold, as a policy), and the oracle over every action and cascade.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray
from sklearn.model_selection import KFold

from allocator.base import Policy, oracle_labels
from allocator.baselines import Uniform
from allocator.data import Decisions, Outcomes, one_shot
from allocator.routing import RandomRouting


@dataclass(frozen=True)
class Reference:
    """The yardsticks at one budget, on the same questions: the baseline (uniform, or random routing between
    models) and the oracle."""

    budget: float
    baseline: Decisions
    oracle: Decisions
    baseline_name: str = "uniform"

    @classmethod
    def at(cls, data: Outcomes, budget: float) -> Reference:
        oracle = one_shot(data, oracle_labels(data, budget))
        if len(data.models) == 1:
            return cls(float(budget), Uniform().fit(data, budget).evaluate(data), oracle)
        routed = RandomRouting().fit(data, budget).evaluate(data)
        return cls(float(budget), routed, oracle, "random-routing")

    def results(self) -> list[Result]:
        return [Result("oracle", self.oracle, self), Result(self.baseline_name, self.baseline, self)]


@dataclass(frozen=True)
class Result:
    """One policy at one budget, over every question (each judged by a model that never saw it)."""

    policy: str
    decisions: Decisions
    reference: Reference = field(repr=False)

    @property
    def budget(self) -> float:
        return self.reference.budget

    @property
    def accuracy(self) -> float:
        return self.decisions.mean_accuracy

    @property
    def samples(self) -> float:
        return self.decisions.mean_samples

    @property
    def cost(self) -> float:
        return self.decisions.mean_cost

    @property
    def spend_shares(self) -> dict[str, float]:
        """Each model's share of the policy's spend."""
        total = sum(float(spend.sum()) for spend in self.decisions.spend.values())
        return {model: float(spend.sum()) / total if total else 0.0 for model, spend in self.decisions.spend.items()}

    @property
    def uniform_accuracy(self) -> float:
        """The baseline's accuracy (uniform allocation, or random routing between models)."""
        return self.reference.baseline.mean_accuracy

    @property
    def oracle_accuracy(self) -> float:
        return self.reference.oracle.mean_accuracy

    @property
    def gain_captured(self) -> float:
        """Share of the oracle's gain over the baseline that this policy reaches (NaN when the oracle gains
        nothing)."""
        gain = self.oracle_accuracy - self.uniform_accuracy
        return (self.accuracy - self.uniform_accuracy) / gain if gain > 1e-12 else float("nan")

    @property
    def regret(self) -> float:
        return self.oracle_accuracy - self.accuracy

    @property
    def imitation_accuracy(self) -> float | None:
        """How often the policy took the oracle's action (one-shot policies only)."""
        actions = self.decisions.actions
        return None if actions is None else float(np.mean(actions == self.reference.oracle.actions))


def cross_validate(
    data: Outcomes,
    policies: dict[str, Callable[[], Policy]],
    budgets: Sequence[float],
    folds: int = 5,
    seed: int = 0,
) -> Iterator[Result]:
    """Each policy at each budget, `folds`-fold cross-validated by question; the yardsticks first (and, with
    several models, every model alone at each k)."""
    splits = fold_splits(data, folds, seed)
    for budget in budgets:
        reference = Reference.at(data, budget)
        yield from reference.results()
        if len(data.models) > 1:
            for column in data.plain():
                action = data.actions[column]
                yield Result(
                    f"always-{action.model}-{action.samples}", one_shot(data, np.full(data.n, column)), reference
                )
        for name, make in policies.items():
            parts = []
            for number, (train, test) in enumerate(splits):
                policy = make().fit(data.subset(train), budget)
                parts.append((test, policy.evaluate(data.subset(test), seed=seed + number)))
            yield Result(name, reassemble(parts, data.n), reference)


def fold_splits(data: Outcomes, folds: int, seed: int) -> list[tuple[NDArray[np.intp], NDArray[np.intp]]]:
    return list(KFold(min(folds, data.n), shuffle=True, random_state=seed).split(np.arange(data.n)))


def cost_to_reach(
    data: Outcomes,
    policies: dict[str, Callable[[], Policy]],
    target: float,
    grid: Sequence[float],
    folds: int = 5,
    seed: int = 0,
) -> dict[str, float | None]:
    """The least mean cost at which each policy's cross-validated accuracy reaches `target`, over budgets in
    `grid` (None: not within it). A policy that can move its budget is fitted once per fold and judged at
    every budget; the others are fitted at each."""
    splits = fold_splits(data, folds, seed)
    reached: dict[str, float | None] = {}
    for name, make in policies.items():
        fitted: list[Policy] = []
        reached[name] = None
        for budget in grid:
            parts = []
            for number, (train, test) in enumerate(splits):
                if make().movable and len(fitted) > number:
                    policy = fitted[number]
                else:
                    policy = make().fit(data.subset(train), budget)
                    if policy.movable:
                        fitted.append(policy)
                parts.append((test, policy.evaluate(data.subset(test), seed=seed + number, budget=budget)))
            decisions = reassemble(parts, data.n)
            if decisions.mean_accuracy >= target:
                reached[name] = decisions.mean_cost
                break
    for budget in grid:
        oracle = one_shot(data, oracle_labels(data, budget))
        if oracle.mean_accuracy >= target:
            reached["oracle"] = oracle.mean_cost
            break
    return reached


def reassemble(parts: list[tuple[NDArray[np.intp], Decisions]], n: int) -> Decisions:
    samples, accuracy, cost = np.zeros(n), np.zeros(n), np.zeros(n)
    one_shot_ = all(part.actions is not None for _, part in parts)
    actions = np.zeros(n, dtype=np.intp)
    models = {model for _, part in parts for model in part.spend}
    spend = {model: np.zeros(n) for model in models}
    for rows, part in parts:
        samples[rows], accuracy[rows] = part.samples, part.accuracy
        cost[rows] = part.samples if part.cost is None else part.cost
        for model in models:
            spend[model][rows] = part.spend.get(model, 0.0)
        if part.actions is not None:
            actions[rows] = part.actions
    return Decisions(samples, accuracy, actions if one_shot_ else None, cost, spend)
