"""Accuracy and cost of every action on every question, over one model's samples or several models'.

An action is (model, k) or a cascade (`oracle.actions`). Its accuracy is exact: the majority-vote curve of its
model, or for a cascade, P(the first model's top answer has the share and is right) + P(it has not) × the
second model's accuracy at its k (the two models' samples are independent). Its cost is in samples or tokens,
times the model's price; a cascade's is the first model's plus the chance of escalating times the second's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from oracle.actions import CASCADE_THRESHOLDS, Action, menu
from oracle.costs import CostUnit
from oracle.curves import Aggregator, Curves, accuracy_curves, agreement_split
from oracle.errors import OracleInputError
from oracle.fleet import Fleet


@dataclass(frozen=True)
class ActionCurves:
    """What the oracle solves over: `acc` (n, K) and `cost` (K,) or (n, K), one column per action."""

    ids: list[str]
    models: tuple[str, ...]
    prices: dict[str, float]
    actions: list[Action]
    acc: NDArray[np.float64]
    stderr: NDArray[np.float64]
    """(n, K): zero when exact, the Monte-Carlo error when subsampled (one model only)."""
    unit_cost: NDArray[np.float64]
    """(n, M) cost of one sample of each model on each question: its price, times its tokens in tokens."""
    escalation: NDArray[np.float64]
    """(n, K) chance a cascade escalates (0 for plain actions)."""
    short: int
    """Questions with fewer samples of some model than its largest k."""

    @property
    def n(self) -> int:
        return len(self.ids)

    def subset(self, rows: NDArray[np.intp]) -> ActionCurves:
        return ActionCurves(
            ids=[self.ids[i] for i in rows],
            models=self.models,
            prices=self.prices,
            actions=self.actions,
            acc=self.acc[rows],
            stderr=self.stderr[rows],
            unit_cost=self.unit_cost[rows],
            escalation=self.escalation[rows],
            short=0,
        )

    @property
    def cost(self) -> NDArray[np.float64]:
        """(K,) when every question costs the same, else (n, K)."""
        spend = sum(self.spend_on(model) for model in self.models)
        assert isinstance(spend, np.ndarray)
        return spend[0] if np.all(spend == spend[0]) else spend

    def spend_on(self, model: str) -> NDArray[np.float64]:
        """(n, K) each action's expected cost on `model`."""
        index = self.models.index(model)
        out = np.zeros((self.n, len(self.actions)))
        for column, action in enumerate(self.actions):
            if action.model == model:
                out[:, column] = action.samples * self.unit_cost[:, index]
            if action.then == model:
                out[:, column] += self.escalation[:, column] * action.then_samples * self.unit_cost[:, index]
        return out

    def single_sample_ends(self) -> tuple[int, int]:
        """The columns of the cheapest model's and the dearest model's smallest one-model actions: the two
        that random routing mixes (the same column twice with one model)."""
        cheap, dear = min(self.models, key=self.prices.__getitem__), max(self.models, key=self.prices.__getitem__)

        def smallest(model: str) -> int:
            own = (c for c, action in enumerate(self.actions) if action.model == model and not action.cascade)
            return min(own, key=lambda c: self.actions[c].samples)

        return smallest(cheap), smallest(dear)

    @property
    def samples(self) -> NDArray[np.float64]:
        """(n, K) each action's expected samples, all models together."""
        out = np.zeros((self.n, len(self.actions)))
        for column, action in enumerate(self.actions):
            out[:, column] = action.samples + self.escalation[:, column] * action.then_samples
        return out


def single_model_curves(curves: Curves, model: str, price: float = 1.0, unit: CostUnit = "samples") -> ActionCurves:
    """One model's curves (streamed from its file) as actions (model, k)."""
    return ActionCurves(
        ids=curves.ids,
        models=(model,),
        prices={model: price},
        actions=[Action(model, k) for k in curves.ks],
        acc=curves.acc,
        stderr=curves.stderr,
        unit_cost=price * _per_sample(curves, unit)[:, None],
        escalation=np.zeros_like(curves.acc),
        short=int(np.sum(curves.recorded < max(curves.ks))),
    )


def fleet_curves(
    fleet: Fleet,
    ks: Sequence[int],
    prices: Mapping[str, float],
    unit: CostUnit = "samples",
    aggregator: Aggregator = "majority",
    cascades: bool = True,
) -> ActionCurves:
    """Every model at each k it has samples for, and cascades between them (majority vote only)."""
    recorded = {model: max(len(q.samples) for q in fleet.of(model)) for model in fleet.models}
    actions = menu(recorded, ks, prices, cascades and aggregator == "majority")
    per_model = {
        model: accuracy_curves(fleet.of(model), [k for k in ks if k <= recorded[model]], aggregator)
        for model in fleet.models
    }
    unit_cost = np.column_stack([prices[m] * _per_sample(per_model[m], unit) for m in fleet.models])
    acc = np.zeros((fleet.n, len(actions)))
    escalation = np.zeros_like(acc)
    for column, action in enumerate(actions):
        if action.then is None:
            curves = per_model[action.model]
            acc[:, column] = curves.acc[:, curves.ks.index(action.samples)]
    _cascades(fleet, actions, per_model, acc, escalation)
    short = sum(int(np.sum(c.recorded < max(c.ks))) for c in per_model.values())
    return ActionCurves(
        fleet.ids, fleet.models, dict(prices), actions, acc, np.zeros_like(acc), unit_cost, escalation, short
    )


def _cascades(
    fleet: Fleet,
    actions: list[Action],
    per_model: Mapping[str, Curves],
    acc: NDArray[np.float64],
    escalation: NDArray[np.float64],
) -> None:
    """Fill the cascade columns: exact agreement splits of the first model, one pass per question."""
    columns = [c for c, action in enumerate(actions) if action.then is not None]
    if not columns:
        return
    for model in {actions[c].model for c in columns}:
        mine = [c for c in columns if actions[c].model == model]
        ks = sorted({actions[c].samples for c in mine})
        for row, question in enumerate(fleet.of(model)):
            right, agree = agreement_split(question, ks, CASCADE_THRESHOLDS)
            for column in mine:
                action = actions[column]
                place = (ks.index(action.samples), CASCADE_THRESHOLDS.index(action.below))
                then = per_model[action.then or ""]
                later = then.acc[row, then.ks.index(action.then_samples)]
                escalation[row, column] = 1.0 - agree[place]
                acc[row, column] = right[place] + escalation[row, column] * later


def _per_sample(curves: Curves, unit: CostUnit) -> NDArray[np.float64]:
    """(n,) what one sample costs before its price: 1, or the question's mean tokens per sample (a question
    without a count or text gets the mean of those with one)."""
    if unit == "samples":
        return np.ones(len(curves.ids))
    known = np.isfinite(curves.tokens) & (curves.tokens > 0)
    if not known.any():
        raise OracleInputError("cost in tokens needs sample texts or token counts, and no sample has either")
    return np.where(known, curves.tokens, curves.tokens[known].mean())
