"""One query's sampling as serving runs it: a plan asked, round after round, what to draw next given each model's
answers so far, and which answer wins at the end.

A one-shot action is a plan fixed before any sample (a cascade's escalation still looks at the first model's
answers); an adaptive policy's plan asks the policy after every round. The gateway only executes plans, so
it serves one model or several the same way.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence

from answers.votes import tally
from oracle.actions import Action

Drawn = Mapping[str, Sequence[str | None]]
"""Each model's extracted answers so far (None: a sample that gave none), in the order they came."""
Step = tuple[str, int]
"""(model, samples): the next round."""


class Plan(ABC):
    adaptive: bool = False
    """Whether it decides after each round (a one-shot plan stops when a round comes back short)."""

    @abstractmethod
    def next(self, drawn: Drawn) -> Step | None:
        """The next round, or None to stop."""

    def answer(self, drawn: Drawn) -> str | None:
        """The winning answer: the majority of every sample drawn (ties to the answer seen first)."""
        return majority([answer for answers in drawn.values() for answer in answers])


def majority(answers: Sequence[str | None]) -> str | None:
    counted = tally(answers)
    winner = counted.winner
    return None if winner is None else counted.answers[winner]


class ActionPlan(Plan):
    """A one-shot action: its samples of one model; a cascade then asks the second model when the first's top
    answer has less than its threshold's share, and answers with the second model's vote, as the oracle's
    curves assume."""

    def __init__(self, action: Action) -> None:
        self.action = action

    def next(self, drawn: Drawn) -> Step | None:
        action = self.action
        first = drawn.get(action.model, ())
        if not first:
            return action.model, action.samples
        if action.then is None or drawn.get(action.then):
            return None
        counted = tally(first)
        top = max(counted.counts, default=0)
        return (action.then, action.then_samples) if top / len(first) < action.below else None

    def answer(self, drawn: Drawn) -> str | None:
        if self.action.then is not None and drawn.get(self.action.then):
            return majority(drawn[self.action.then])
        return majority(drawn.get(self.action.model, ()))


class RoundsPlan(Plan):
    """One model, sampled in rounds while `more(answers)` asks for more (a one-model adaptive policy)."""

    adaptive = True

    def __init__(self, model: str, more: Callable[[Sequence[str | None]], int]) -> None:
        self.model = model
        self.more = more

    def next(self, drawn: Drawn) -> Step | None:
        k = self.more(drawn.get(self.model, ()))
        return (self.model, k) if k > 0 else None
