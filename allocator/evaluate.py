"""Honest evaluation: every policy fitted on some questions and judged on others, against uniform and the oracle."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray
from sklearn.model_selection import KFold

from allocator.base import Policy, oracle_labels
from allocator.baselines import Uniform
from allocator.data import Decisions, Outcomes


@dataclass(frozen=True)
class Reference:
    """The yardsticks at one budget, on the same questions: uniform allocation and the oracle."""

    budget: float
    uniform: Decisions
    oracle: Decisions

    @classmethod
    def at(cls, data: Outcomes, budget: float) -> Reference:
        actions = oracle_labels(data, budget)
        oracle = Decisions(data.cost[actions], data.acc[np.arange(data.n), actions], actions)
        return cls(float(budget), Uniform().fit(data, budget).evaluate(data), oracle)

    def results(self) -> list[Result]:
        return [Result("oracle", self.oracle, self), Result("uniform", self.uniform, self)]


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
    def uniform_accuracy(self) -> float:
        return self.reference.uniform.mean_accuracy

    @property
    def oracle_accuracy(self) -> float:
        return self.reference.oracle.mean_accuracy

    @property
    def gain_captured(self) -> float:
        """Share of the oracle's gain over uniform that this policy reaches (NaN when the oracle gains nothing)."""
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
    """Each policy at each budget, `folds`-fold cross-validated by question; uniform and the oracle first."""
    splits = list(KFold(min(folds, data.n), shuffle=True, random_state=seed).split(np.arange(data.n)))
    for budget in budgets:
        reference = Reference.at(data, budget)
        yield from reference.results()
        for name, make in policies.items():
            parts = []
            for number, (train, test) in enumerate(splits):
                policy = make().fit(data.subset(train), budget)
                parts.append((test, policy.evaluate(data.subset(test), seed=seed + number)))
            yield Result(name, _reassemble(parts, data.n), reference)


def _reassemble(parts: list[tuple[NDArray[np.intp], Decisions]], n: int) -> Decisions:
    samples, accuracy = np.zeros(n), np.zeros(n)
    one_shot = all(part.actions is not None for _, part in parts)
    actions = np.zeros(n, dtype=np.intp)
    for rows, part in parts:
        samples[rows], accuracy[rows] = part.samples, part.accuracy
        if part.actions is not None:
            actions[rows] = part.actions
    return Decisions(samples, accuracy, actions if one_shot else None)
