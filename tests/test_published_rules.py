"""The published adaptive-sampling rules: their stopping tests as the papers state them, serving that stops
where the replay says it stops, and budgets met by fitting the one threshold."""

from __future__ import annotations

import numpy as np
import pytest

from allocator.base import stable_fraction
from allocator.data import Outcomes
from allocator.published import PUBLISHED_RULES, AdaptiveConsistency, EarlyStoppingConsistency, TopTwoMargin
from oracle.synthetic import synthetic_outcomes


@pytest.fixture(scope="module")
def data() -> Outcomes:
    return Outcomes.read(synthetic_outcomes(questions=160, samples=16, seed=5), (1, 2, 4, 8, 16))


def running_votes(answers: list[str | None]) -> np.ndarray:
    """(1, len(answers), distinct) vote counts after each sample."""
    labels = {a: i for i, a in enumerate(dict.fromkeys(a for a in answers if a is not None))}
    running = np.zeros((1, len(answers), max(len(labels), 1)))
    for position, answer in enumerate(answers):
        if answer is not None:
            running[0, position:, labels[answer]] += 1
    return running


def test_adaptive_consistency_uses_the_beta_criterion() -> None:
    # Unanimous votes v: P(p1 > p2) = 1 - I_0.5(v + 1, 1) = 1 - 0.5^(v + 1): .75, .875, .9375, ...
    masks = AdaptiveConsistency().stop_masks(running_votes(["7"] * 5), np.array([0.9]))
    assert masks[0, 0].tolist() == [False, False, True, True, True]
    # A split vote is far less sure than a unanimous one of the same size.
    split = AdaptiveConsistency().stop_masks(running_votes(["7", "8", "7", "8", "7"]), np.array([0.9]))
    assert not split.any()


def test_esc_checks_only_at_window_ends_and_stops_at_the_first_unanimous_window() -> None:
    answers: list[str | None] = ["1", "2", "3", "3", "3", "3", "4", "4"]
    masks = EarlyStoppingConsistency().stop_masks(running_votes(answers), np.array([2.0, 4.0]))
    assert np.flatnonzero(masks[0, 0]).tolist() == [3, 5, 7]  # windows (3, 3), (3, 3), (4, 4)
    assert np.flatnonzero(masks[1, 0]).tolist() == []  # neither (1, 2, 3, 3) nor (3, 3, 4, 4) agree


def test_margin_stops_once_the_lead_is_large_enough() -> None:
    masks = TopTwoMargin().stop_masks(running_votes(["1", "2", "1", "1", "2", "1"]), np.array([2.0]))
    assert np.flatnonzero(masks[0, 0]).tolist() == [3, 5]


@pytest.mark.parametrize("rule", PUBLISHED_RULES, ids=lambda rule: rule.name)
def test_serving_stops_where_the_replay_stops(data: Outcomes, rule: type) -> None:
    policy = rule().fit(data, 4.0)
    rng = np.random.default_rng(0)
    pool = ["1", "2", "3", None]
    for _ in range(40):
        answers = [pool[i] for i in rng.choice(4, size=policy.top_, p=[0.6, 0.2, 0.1, 0.1])]
        text = f"question {rng.integers(10**9)}"
        low, high, share = policy._mix(policy.budget_)
        setting = policy.settings_[high if stable_fraction(text) < share else low]
        masks = policy.stop_masks(running_votes(answers), np.array([setting]))[0, 0]
        masks[-1] = True
        expected = int(np.argmax(masks)) + 1
        drawn = 0
        while (more := policy.next_samples(text, answers[:drawn])) > 0:
            drawn += more
        assert drawn == expected


@pytest.mark.parametrize("rule", PUBLISHED_RULES, ids=lambda rule: rule.name)
def test_each_rule_meets_its_budget_and_moves_it_without_refitting(data: Outcomes, rule: type) -> None:
    train, test = data.subset(np.arange(0, 120)), data.subset(np.arange(120, 160))
    policy = rule().fit(train, 4.0)
    on_training = policy.evaluate(train, seed=1)
    assert on_training.mean_samples == pytest.approx(4.0, rel=0.05)  # fresh orders of the same questions
    spent = [policy.evaluate(test, seed=1, budget=b).mean_samples for b in (2.0, 4.0, 8.0)]
    assert spent[0] < spent[1] < spent[2]
    assert spent[1] == pytest.approx(4.0, rel=0.25)
    accuracy = [policy.evaluate(test, seed=1, budget=b).mean_accuracy for b in (2.0, 8.0)]
    assert accuracy[0] < accuracy[1]
