"""The published adaptive-sampling rules, as baselines for one model: each draws a sample (or a window) at a
time and stops on a fixed test of the votes so far, with one threshold.

- Adaptive-Consistency (Aggarwal et al., EMNLP 2023): stop once the Beta criterion, the chance that the top
  answer's share beats the runner-up's under Beta(v1 + 1, v2 + 1), exceeds a confidence C.
- ESC, early-stopping self-consistency (Li et al., ICLR 2024): draw windows of w samples; stop at the first
  window whose answers all agree. The window size is the threshold.
- Top-two margin: stop once the top answer leads the runner-up by m votes.

Each rule is capped at the largest action, and its threshold is fitted on the training questions so that the
mean cost meets the budget: the two settings whose training spend brackets the budget are mixed, query by
query, as uniform allocation mixes two sample counts. Fitted spends are kept, so serving can move the budget.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Self

import numpy as np
from numpy.typing import NDArray
from scipy.special import betainc

from allocator.base import Policy, stable_fraction
from allocator.data import Decisions, Outcomes
from oracle.costs import uniform_mix
from oracle.curves import random_orders


class PublishedRule(Policy):
    """A stopping test with one parameter, replayed after every check on `orders` random orders per question."""

    adaptive = True
    movable = True
    parameter: ClassVar[str]

    def __init__(self, orders: int = 48, seed: int = 0) -> None:
        self.orders = orders
        self.seed = seed

    def settings(self, top: int) -> NDArray[np.float64]:
        """The parameter values to choose among, from the one that stops soonest to the one that never does."""
        raise NotImplementedError

    def stop_masks(self, running: NDArray[np.float64], settings: NDArray[np.float64]) -> NDArray[np.bool_]:
        """(settings, draws, levels): whether each setting would stop after each sample, given the running
        vote counts (draws, levels, answers) after 1, 2, ... samples."""
        raise NotImplementedError

    def step(self, setting: float) -> int:
        """Samples drawn between two checks."""
        return 1

    def fit(self, data: Outcomes, budget: float) -> Self:
        self._remember(data, budget)
        self.top_ = int(max(data.ks))
        self.settings_ = self.settings(self.top_)
        samples, _ = self._replay(data, self.settings_, self.seed)
        spend = (samples * data.curves.unit_cost[:, 0]).mean(axis=1)
        order = np.argsort(spend, kind="stable")
        self.spends_ = spend[order]
        self.settings_ = self.settings_[order]
        return self

    def evaluate(self, data: Outcomes, seed: int = 0, budget: float | None = None) -> Decisions:
        low, high, share = self._mix(self.budget_ if budget is None else budget)
        samples, right = self._replay(data, self.settings_[[low, high]], seed + 10_007)  # unseen orders
        weights = np.array([1 - share, share])
        expected, accuracy = weights @ samples, weights @ right
        cost = expected * data.curves.unit_cost[:, 0]
        return Decisions(expected, accuracy, None, cost, {data.models[0]: cost})

    def next_samples(self, text: str, answers: Sequence[str | None], budget: float | None = None) -> int:
        low, high, share = self._mix(self.budget_ if budget is None else budget)
        setting = self.settings_[high if stable_fraction(text) < share else low]
        step, drawn = self.step(setting), len(answers)
        if drawn == 0:
            return min(step, self.top_)
        if drawn >= self.top_:
            return 0
        labels = {answer: index for index, answer in enumerate(dict.fromkeys(a for a in answers if a is not None))}
        running = np.zeros((1, drawn, max(len(labels), 1)))
        for position, answer in enumerate(answers):
            if answer is not None:
                running[0, position:, labels[answer]] += 1
        if self.stop_masks(running, np.array([setting]))[0, 0, drawn - 1]:
            return 0
        return min(step - drawn % step if drawn % step else step, self.top_ - drawn)

    def spend_range(self) -> tuple[float, float]:
        return float(self.spends_[0]), float(self.spends_[-1])

    def description(self) -> dict[str, Any]:
        low, high, share = self._mix(self.budget_)
        return super().description() | {
            self.parameter: float(self.settings_[low]),
            f"upper_{self.parameter}": float(self.settings_[high]),
            "upper_share": share,
        }

    def _mix(self, budget: float) -> tuple[int, int, float]:
        """The settings whose training spend brackets `budget` and the share of queries given the dearer, as
        uniform allocation mixes two sample counts."""
        return uniform_mix(self.spends_, budget)

    def _replay(
        self, data: Outcomes, settings: NDArray[np.float64], seed: int
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """(settings, questions) expected samples drawn and expected correctness of each setting."""
        levels = list(range(1, self.top_ + 1))
        samples, right = np.zeros((settings.size, data.n)), np.zeros((settings.size, data.n))
        for index, groups in enumerate(data.votes[data.models[0]]):
            counts, correct = random_orders(groups, levels, self.orders, np.random.default_rng([seed, index]))
            masks = self.stop_masks(counts.astype(np.float64), settings)
            masks[:, :, -1] = True  # the cap: every rule stops at the largest action
            stop = np.argmax(masks, axis=2)  # (settings, draws) first level that stops
            samples[:, index] = (stop + 1).mean(axis=1)
            right[:, index] = correct[np.arange(self.orders)[None, :], stop].mean(axis=1)
        return samples, right


def _top_two(running: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    ranked = -np.sort(-running, axis=2)
    second = ranked[:, :, 1] if ranked.shape[2] > 1 else np.zeros(ranked.shape[:2])
    return ranked[:, :, 0], second


class AdaptiveConsistency(PublishedRule):
    """Aggarwal et al. 2023: stop when P(p1 > p2 | v1, v2) = 1 - I_0.5(v1 + 1, v2 + 1) reaches C."""

    name = "adaptive-consistency"
    parameter = "confidence"

    def settings(self, top: int) -> NDArray[np.float64]:
        return np.concatenate(([0.0], 1 - np.geomspace(0.5, 1e-7, 64), [np.inf]))

    def stop_masks(self, running: NDArray[np.float64], settings: NDArray[np.float64]) -> NDArray[np.bool_]:
        first, second = _top_two(running)
        confidence = 1 - betainc(first + 1, second + 1, 0.5)
        return np.asarray(confidence[None] >= settings[:, None, None])


class EarlyStoppingConsistency(PublishedRule):
    """Li et al. 2024 (ESC): windows of w samples; stop after the first window whose answers all agree."""

    name = "esc"
    parameter = "window"

    def settings(self, top: int) -> NDArray[np.float64]:
        return np.arange(1, top + 2, dtype=np.float64)  # a window wider than the cap never stops early

    def step(self, setting: float) -> int:
        return int(setting)

    def stop_masks(self, running: NDArray[np.float64], settings: NDArray[np.float64]) -> NDArray[np.bool_]:
        draws, levels, _ = running.shape
        padded = np.concatenate([np.zeros((draws, 1, running.shape[2])), running], axis=1)
        masks = np.zeros((settings.size, draws, levels), dtype=np.bool_)
        for row, window in enumerate(settings.astype(int)):
            ends = np.arange(window, levels + 1, window)  # samples drawn at each check
            if ends.size == 0:
                continue
            in_window = padded[:, ends, :] - padded[:, ends - window, :]
            unanswered = window - in_window.sum(axis=2)  # no answer is an output too: a window of them agrees
            masks[row][:, ends - 1] = (in_window.max(axis=2) == window) | (unanswered == window)
        return masks


class TopTwoMargin(PublishedRule):
    """Stop once the top answer has m more votes than the runner-up."""

    name = "margin"
    parameter = "margin"

    def settings(self, top: int) -> NDArray[np.float64]:
        return np.arange(0, top + 2, dtype=np.float64)

    def stop_masks(self, running: NDArray[np.float64], settings: NDArray[np.float64]) -> NDArray[np.bool_]:
        first, second = _top_two(running)
        return np.asarray((first - second)[None] >= settings[:, None, None])


PUBLISHED_RULES = (AdaptiveConsistency, EarlyStoppingConsistency, TopTwoMargin)
