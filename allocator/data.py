"""What a policy learns from: question texts, accuracy and cost of every action, and the recorded votes of
each model to replay."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from oracle.action_curves import ActionCurves, fleet_curves, single_model_curves
from oracle.actions import Action, parse_prices
from oracle.costs import CostUnit
from oracle.curves import accuracy_curves
from oracle.fleet import Fleet
from oracle.outcomes import Question
from oracle.votes import VoteGroups


@dataclass(frozen=True)
class Outcomes:
    """Questions of one outcome file, or of several models' files matched by question (no sample texts kept)."""

    ids: list[str]
    texts: list[str]
    curves: ActionCurves
    votes: dict[str, list[VoteGroups]]
    """Each model's recorded answers per question, replayed by adaptive policies."""

    @property
    def n(self) -> int:
        return len(self.ids)

    @property
    def acc(self) -> NDArray[np.float64]:
        """(n, K) expected accuracy of each action."""
        return self.curves.acc

    @property
    def cost(self) -> NDArray[np.float64]:
        """(K,) or (n, K) expected cost of each action (samples of one model: k)."""
        return self.curves.cost

    @property
    def mean_cost(self) -> NDArray[np.float64]:
        """(K,) each action's mean cost over the questions."""
        return np.asarray(np.broadcast_to(self.cost, self.acc.shape).mean(axis=0), dtype=np.float64)

    @property
    def actions(self) -> list[Action]:
        return self.curves.actions

    @property
    def models(self) -> tuple[str, ...]:
        return self.curves.models

    @property
    def ks(self) -> tuple[int, ...]:
        """Samples of each action's first model: the sample counts themselves when there is one model."""
        return tuple(action.samples for action in self.actions)

    @classmethod
    def read(
        cls,
        questions: Iterable[Question],
        ks: Sequence[int],
        model: str | None = None,
        prices: Mapping[str, float] | None = None,
        unit: CostUnit = "samples",
    ) -> Outcomes:
        """One model's questions in one pass, keeping their texts and votes but not their samples' texts. The
        model is named `model`, else by its records' `model` field; it costs its price (1 unless in `prices`)."""
        ids: list[str] = []
        texts: list[str] = []
        votes: list[VoteGroups] = []
        named: list[str] = []

        def remember(stream: Iterable[Question]) -> Iterator[Question]:
            for question in stream:
                if not named:
                    named.append(model or question.model or "model")
                ids.append(question.id)
                texts.append(question.question)
                votes.append(VoteGroups.of(question))
                yield question

        curves = accuracy_curves(remember(questions), ks)
        name = named[0] if named else model or "model"
        price = parse_prices(list((prices or {}).items()), [name])[name]
        return cls(ids, texts, single_model_curves(curves, name, price, unit), {name: votes})

    @classmethod
    def of_fleet(cls, fleet: Fleet, ks: Sequence[int], prices: Mapping[str, float], unit: CostUnit) -> Outcomes:
        """Several models' questions, matched by id (`oracle.fleet`), with every action and cascade."""
        votes = {model: [VoteGroups.of(q) for q in fleet.of(model)] for model in fleet.models}
        return cls(fleet.ids, fleet.texts, fleet_curves(fleet, ks, prices, unit), votes)

    def subset(self, rows: NDArray[np.intp] | Sequence[int]) -> Outcomes:
        rows = np.asarray(rows, dtype=np.intp)
        return Outcomes(
            ids=[self.ids[i] for i in rows],
            texts=[self.texts[i] for i in rows],
            curves=self.curves.subset(rows),
            votes={model: [groups[i] for i in rows] for model, groups in self.votes.items()},
        )

    def plain(self) -> list[int]:
        """The columns of the actions that draw from one model (no cascade)."""
        return [column for column, action in enumerate(self.actions) if not action.cascade]


@dataclass(frozen=True)
class Decisions:
    """What a policy did on each question: expected samples, cost and correctness, and the action if one-shot."""

    samples: NDArray[np.float64]
    accuracy: NDArray[np.float64]
    actions: NDArray[np.intp] | None
    """Column of the chosen action per question for one-shot policies; None for adaptive ones."""
    cost: NDArray[np.float64] | None = None
    """Expected cost per question in the run's units (None: the samples, one model at price 1)."""
    spend: dict[str, NDArray[np.float64]] = field(default_factory=dict)
    """Expected cost per question on each model (empty: all on the only model)."""

    @property
    def mean_samples(self) -> float:
        return float(self.samples.mean())

    @property
    def mean_cost(self) -> float:
        return float((self.samples if self.cost is None else self.cost).mean())

    @property
    def mean_accuracy(self) -> float:
        return float(self.accuracy.mean())


def one_shot(data: Outcomes, columns: NDArray[np.intp]) -> Decisions:
    """The decisions of taking action `columns[i]` on question i: what every one-shot policy reports."""
    rows = np.arange(data.n)
    cost = np.broadcast_to(data.cost, data.acc.shape)[rows, columns]
    spend = {model: data.curves.spend_on(model)[rows, columns] for model in data.models}
    samples = data.curves.samples[rows, columns]
    return Decisions(samples, data.acc[rows, columns], columns, cost, spend)


def mix(low: Decisions, high: Decisions, share: float) -> Decisions:
    """Expected decisions of giving `high` to a `share` of queries and `low` to the rest."""

    def blend(a: NDArray[np.float64], b: NDArray[np.float64]) -> NDArray[np.float64]:
        return np.asarray((1 - share) * a + share * b)

    spend = {model: blend(low.spend[model], high.spend[model]) for model in low.spend}
    cost = None if low.cost is None or high.cost is None else blend(low.cost, high.cost)
    return Decisions(blend(low.samples, high.samples), blend(low.accuracy, high.accuracy), None, cost, spend)
