"""Sampling in rounds across two models: draw the cheap model's samples a few at a time and, after each round,
stop, draw more of it, or escalate to the dear model, which answers in rounds too; the two models' answers are
then voted on together, the dear model's votes weighted by what the training data says they are worth. At a
λ where even the first cheap round is worth less than it costs (the mean over the training replays), every
query skips the cheap model and asks the dear one straight away.

The same optimal stopping as `allocator.adaptive`, learnt by backward induction over replays, with one more
action: escalation is valued by a regression of what escalating realised on the training replays. Every
outcome is valued as correctness minus λ times its cost (both models' samples at their prices), one λ for
every question, so one bisection meets the budget; a ladder of rules over λ lets serving move the budget, and
two neighbouring rungs are mixed to meet it exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Self

import numpy as np
from numpy.typing import NDArray

from allocator.adaptive import RidgeDesign, ValueModel, _predict, _probability_model
from allocator.base import Policy, stable_fraction
from allocator.cascade_replay import (
    CascadeReplays,
    cascade_replay,
    combined_answer,
    combined_state,
    weighted_tally,
)
from allocator.data import Decisions, Outcomes
from allocator.ladder import Ladder, build_ladder, rules_at
from allocator.plans import Drawn, Plan, Step
from allocator.replay import answer_counts, vote_state
from oracle.errors import OracleInputError

STOP, ESCALATE, CONTINUE = 0, 1, 2
_WEIGHTS = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0)  # the dear model's vote against the cheap one's, chosen on training data
_SWEEP = 32


@dataclass(frozen=True)
class _Fixed:
    """What does not change with λ while the ladder is built: ridge designs and P(right) at every level."""

    first: tuple[RidgeDesign, ...]
    first_staying: tuple[NDArray[np.float64], ...]
    then: tuple[RidgeDesign, ...]
    then_staying: tuple[NDArray[np.float64], ...]


@dataclass(frozen=True)
class CascadeRule:
    """At one λ: per level of the cheap model, regressions of escalating and of going on; per level of the dear
    one, of going on."""

    lam: float
    escalate: tuple[ValueModel, ...]
    go_on: tuple[ValueModel, ...]
    then_go_on: tuple[ValueModel, ...]
    direct: bool
    """Whether to skip the cheap model and ask the dear one straight away: before any sample every query
    looks alike, so this is all or nothing at one λ (the mix of two rungs shares it out)."""


class CascadingAdaptive(Policy):
    name = "adaptive"
    adaptive = True
    movable = True

    def __init__(self, orders: int = 32, seed: int = 0) -> None:
        self.orders = orders
        self.seed = seed

    def fit(self, data: Outcomes, budget: float) -> Self:
        self._remember(data, budget)
        if len(data.models) != 2:
            raise OracleInputError("the cascading policy chains two models: give two outcome files")
        self.models_ = tuple(sorted(data.models, key=lambda m: data.curves.prices[m]))
        self.levels_ = (_first_levels(data, self.models_[0]), _then_levels(data, self.models_[1]))
        self.unit_costs_ = tuple(float(data.curves.unit_cost[:, data.models.index(m)].mean()) for m in self.models_)
        """Each model's mean cost per sample on the training questions: its price, times its mean tokens per
        sample when cost is in tokens. Serving prices what a query has drawn so far with it."""
        self.weight_ = self._weight(data)
        replays = self._replays(data, self.seed)
        i_levels, j_levels = len(self.levels_[0]), len(self.levels_[1])
        self.stay_first_ = tuple(
            _probability_model(replays.first_states[i], replays.first_right[i]) for i in range(i_levels)
        )
        self.stay_then_ = tuple(
            _probability_model(_stack(replays.then_states[:, j]), replays.then_right[:, j].ravel())
            for j in range(j_levels)
        )
        self.ladder_ = self._ladder(replays, budget)
        self.rule_, self.lower_rule_, self.lower_share_ = rules_at(self.ladder_, budget)
        return self

    # --- serving ------------------------------------------------------------------------------------------

    def next_draw(
        self, text: str, first: Sequence[str | None], then: Sequence[str | None], budget: float | None = None
    ) -> tuple[str, int] | None:
        """What to draw next, given each model's answers so far: (model, samples), or None to stop."""
        rule = self._rule_for(text, self.budget_ if budget is None else budget)
        cheap, dear = self.levels_
        if not first and not then:
            return (self.models_[1], dear[0]) if rule.direct else (self.models_[0], cheap[0])
        i = int(np.searchsorted(cheap, len(first), side="right")) - 1
        if 0 < len(first) < cheap[0] and not then:
            return self.models_[0], cheap[0] - len(first)
        if then:
            j = int(np.searchsorted(dear, len(then), side="right")) - 1
            if j < 0:
                return self.models_[1], dear[0] - len(then)
            if j >= len(dear) - 1:
                return None
            votes, total = _combined(first, then, self.weight_)
            state = combined_state(votes, total, float(len(first)))
            cost = self._cost(len(first), len(then))
            stop = _predict(self.stay_then_[j], state)[0] - rule.lam * cost
            return (self.models_[1], dear[j + 1] - len(then)) if rule.then_go_on[j].predict(state)[0] > stop else None
        state = vote_state(answer_counts(first), len(first))
        choice = self._choose(rule, i, state, np.array([self._cost(len(first), 0)]))[0]
        if choice == ESCALATE:
            return self.models_[1], dear[0]
        return (self.models_[0], cheap[i + 1] - len(first)) if choice == CONTINUE else None

    def answer(self, first: Sequence[str | None], then: Sequence[str | None]) -> str | None:
        """The combined vote's winner."""
        return combined_answer(first, then, self.weight_)

    def plan(self, text: str, budget: float | None = None) -> Plan:
        return _CascadePlan(self, text, budget)

    # --- evaluation ---------------------------------------------------------------------------------------

    def evaluate(self, data: Outcomes, seed: int = 0, budget: float | None = None) -> Decisions:
        replays = self._replays(data, seed + 10_007)  # orders unseen in training
        rule, lower, share = rules_at(self.ladder_, self.budget_ if budget is None else budget)
        outcomes = [self._walk(r, replays) for r in (rule, lower)]
        counts = np.bincount(replays.question, minlength=data.n)
        fields = {}
        for name in ("samples", "accuracy", "cost", "first", "then"):
            values = (1 - share) * outcomes[0][name] + share * outcomes[1][name]
            fields[name] = np.bincount(replays.question, weights=values, minlength=data.n) / counts
        spend = {self.models_[0]: fields["first"], self.models_[1]: fields["then"]}
        return Decisions(fields["samples"], fields["accuracy"], None, fields["cost"], spend)

    def lam(self, budget: float | None = None) -> float:
        rule, lower, share = rules_at(self.ladder_, self.budget_ if budget is None else budget)
        return (1 - share) * rule.lam + share * lower.lam

    def spend_range(self) -> tuple[float, float]:
        return self.ladder_[-1][1], self.ladder_[0][1]

    def description(self) -> dict[str, Any]:
        return super().description() | {
            "models": list(self.models_),
            "levels": [list(levels) for levels in self.levels_],
            "vote_weight": self.weight_,
            "lambda": self.rule_.lam,
            "lower_lambda": self.lower_rule_.lam,
            "lower_share": self.lower_share_,
            "straight_to_dear": [self.rule_.direct, self.lower_rule_.direct],
        }

    # --- learning -----------------------------------------------------------------------------------------

    def _replays(self, data: Outcomes, seed: int) -> CascadeReplays:
        unit = np.column_stack([data.curves.unit_cost[:, data.models.index(m)] for m in self.models_])
        first, then = (data.votes[m] for m in self.models_)
        return cascade_replay(first, then, self.levels_, unit, self.weight_, self.orders, seed)

    def _weight(self, data: Outcomes) -> float:
        """The dear model's vote weight that makes the combined vote most often right on the training data."""
        best, best_right = 1.0, -1.0
        for weight in _WEIGHTS:
            first, then = (data.votes[m] for m in self.models_)
            levels = (self.levels_[0][:1] + self.levels_[0][-1:], self.levels_[1][:1])
            replays = cascade_replay(first, then, levels, np.ones((data.n, 2)), weight, 8, self.seed + 1)
            right = float(replays.then_right.mean())
            if right > best_right + 1e-12:
                best, best_right = weight, right
        return best

    def _cost(self, first: int, then: int) -> float:
        return first * self.unit_costs_[0] + then * self.unit_costs_[1]

    def _choose(
        self, rule: CascadeRule, i: int, states: NDArray[np.float64], spent: NDArray[np.float64]
    ) -> NDArray[np.intp]:
        """STOP, ESCALATE or CONTINUE at the cheap model's level i, whichever is worth most."""
        values = [_predict(self.stay_first_[i], states) - rule.lam * spent, rule.escalate[i].predict(states)]
        if i < len(self.levels_[0]) - 1:
            values.append(rule.go_on[i].predict(states))
        return np.asarray(np.argmax(np.vstack(values), axis=0), dtype=np.intp)

    def _backward(self, replays: CascadeReplays, lam: float, fixed: _Fixed) -> tuple[CascadeRule, NDArray[np.float64]]:
        """The rule at `lam`, from the dear model's last level back to the cheap model's first, and the cost
        each training trajectory realises under it."""
        cheap, dear = (np.array(levels, dtype=np.float64) for levels in self.levels_)
        i_levels, j_levels = cheap.size, dear.size
        first_cost = np.concatenate([[0.0], cheap])[:, None] * replays.unit[0][None, :]  # (1 + I, T)
        cost = first_cost[:, None, :] + dear[None, :, None] * replays.unit[1][None, None, :]  # (1 + I, J, T)
        worth = replays.then_right[:, -1] - lam * cost[:, -1]
        spent = cost[:, -1].copy()
        then_go_on: list[ValueModel] = []
        for j in reversed(range(j_levels - 1)):
            model = fixed.then[j].fit(worth.ravel())
            then_go_on.insert(0, model)
            stop = fixed.then_staying[j] - lam * cost[:, j].ravel()
            goes = (fixed.then[j].predict(model) > stop).reshape(worth.shape)
            worth = np.where(goes, worth, replays.then_right[:, j] - lam * cost[:, j])
            spent = np.where(goes, spent, cost[:, j])
        entry_worth, entry_spent = worth, spent  # (1 + I, T): asking the dear model after 0 or cheap[i] samples
        escalate: list[ValueModel] = []
        go_on: list[ValueModel] = []
        worth1 = spent1 = np.zeros(0)
        for i in reversed(range(i_levels)):
            design = fixed.first[i]
            escalate.insert(0, design.fit(entry_worth[1 + i]))
            values = [fixed.first_staying[i] - lam * first_cost[1 + i], design.predict(escalate[0])]
            worths = [replays.first_right[i] - lam * first_cost[1 + i], entry_worth[1 + i]]
            spents = [first_cost[1 + i], entry_spent[1 + i]]
            if i < i_levels - 1:
                go_on.insert(0, design.fit(worth1))
                values.append(design.predict(go_on[0]))
                worths.append(worth1)
                spents.append(spent1)
            choice = np.argmax(np.vstack(values), axis=0)
            worth1, spent1 = np.choose(choice, worths), np.choose(choice, spents)
        direct = bool(entry_worth[0].mean() > worth1.mean())
        rule = CascadeRule(lam, tuple(escalate), tuple(go_on), tuple(then_go_on), direct)
        return rule, entry_spent[0] if direct else spent1

    def _ladder(self, replays: CascadeReplays, budget: float) -> Ladder[CascadeRule]:
        """Rules over the range of λ with their mean spend on the training replays (see `allocator.ladder`)."""
        fixed = _Fixed(
            tuple(RidgeDesign(states) for states in replays.first_states),
            tuple(_predict(m, states) for m, states in zip(self.stay_first_, replays.first_states, strict=True)),
            tuple(RidgeDesign(_stack(replays.then_states[:, j])) for j in range(len(self.levels_[1]) - 1)),
            tuple(
                _predict(self.stay_then_[j], _stack(replays.then_states[:, j])) for j in range(len(self.levels_[1]) - 1)
            ),
        )

        def fit_at(lam: float) -> tuple[CascadeRule, float]:
            rule, spent = self._backward(replays, lam, fixed)
            return rule, float(spent.mean())

        top = 1.0 / float(min(self.unit_costs_)) + 1.0
        return build_ladder(fit_at, budget, top, span=10_000, sweep=_SWEEP, bisections=30)

    def _rule_for(self, text: str, budget: float) -> CascadeRule:
        rule, lower, share = rules_at(self.ladder_, budget)
        return lower if stable_fraction(text) < share else rule

    def _walk(self, rule: CascadeRule, replays: CascadeReplays) -> dict[str, NDArray[np.float64]]:
        """Where each replay stops under `rule`: its samples, correctness and cost (in all and per model)."""
        cheap = np.array(self.levels_[0], dtype=np.float64)
        size = replays.question.size
        out = {name: np.zeros(size) for name in ("samples", "accuracy", "cost", "first", "then")}
        active = np.arange(size)
        if rule.direct:
            self._escalated(rule, out, active, -1, replays)
            return out
        for i in range(cheap.size):
            if active.size == 0:
                break
            states = replays.first_states[i, active]
            spent = cheap[i] * replays.unit[0, active]
            choice = self._choose(rule, i, states, spent)
            stops, escalates = active[choice == STOP], active[choice == ESCALATE]
            self._record(out, stops, cheap[i], 0.0, replays.first_right[i, stops], replays)
            self._escalated(rule, out, escalates, i, replays)
            active = active[choice == CONTINUE]
        return out

    def _escalated(
        self,
        rule: CascadeRule,
        out: dict[str, NDArray[np.float64]],
        rows: NDArray[np.intp],
        i: int,
        replays: CascadeReplays,
    ) -> None:
        """Rows that ask the dear model after the cheap one's level i (-1: straight away), round by round."""
        dear = self.levels_[1]
        drawn = self.levels_[0][i] if i >= 0 else 0
        for j in range(len(dear)):
            if rows.size == 0:
                return
            if j == len(dear) - 1:
                self._record(out, rows, drawn, dear[j], replays.then_right[1 + i, j, rows], replays)
                return
            states = replays.then_states[1 + i, j, rows]
            cost = drawn * replays.unit[0, rows] + dear[j] * replays.unit[1, rows]
            stop = _predict(self.stay_then_[j], states) - rule.lam * cost
            goes = rule.then_go_on[j].predict(states) > stop
            self._record(out, rows[~goes], drawn, dear[j], replays.then_right[1 + i, j, rows[~goes]], replays)
            rows = rows[goes]

    @staticmethod
    def _record(
        out: dict[str, NDArray[np.float64]],
        rows: NDArray[np.intp],
        first: float,
        then: float,
        right: NDArray[np.bool_],
        replays: CascadeReplays,
    ) -> None:
        out["samples"][rows] = first + then
        out["accuracy"][rows] = right
        out["first"][rows] = first * replays.unit[0, rows]
        out["then"][rows] = then * replays.unit[1, rows]
        out["cost"][rows] = out["first"][rows] + out["then"][rows]


def _stack(states: NDArray[np.float64]) -> NDArray[np.float64]:
    """(I, T, F) → (I·T, F)."""
    return states.reshape(-1, states.shape[-1])


def _combined(
    first: Sequence[str | None], then: Sequence[str | None], weight: float
) -> tuple[NDArray[np.float64], float]:
    """One row of combined weighted votes, and the weighted number of samples."""
    score = weighted_tally(first, then, weight)
    return np.array([list(score.values()) or [0.0]]), len(first) + weight * len(then)


class _CascadePlan(Plan):
    adaptive = True

    def __init__(self, policy: CascadingAdaptive, text: str, budget: float | None) -> None:
        self.policy, self.text, self.budget = policy, text, budget

    def next(self, drawn: Drawn) -> Step | None:
        cheap, dear = self.policy.models_
        return self.policy.next_draw(self.text, drawn.get(cheap, ()), drawn.get(dear, ()), self.budget)

    def answer(self, drawn: Drawn) -> str | None:
        cheap, dear = self.policy.models_
        return self.policy.answer(drawn.get(cheap, ()), drawn.get(dear, ()))


def _first_levels(data: Outcomes, model: str) -> tuple[int, ...]:
    """The cheap model is looked at after every sample up to 8, then at its larger actions up to 16."""
    recorded = max(groups.total for groups in data.votes[model])
    ks = sorted({k for k in data.ks} | set(range(1, 9)))
    return tuple(k for k in ks if k <= min(16, max(recorded, 1)))


def _then_levels(data: Outcomes, model: str) -> tuple[int, ...]:
    recorded = max(groups.total for groups in data.votes[model])
    return tuple(k for k in (1, 2, 4) if k <= max(recorded, 1))
