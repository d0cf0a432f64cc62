"""Online budget control, and the policies' ability to serve at another budget than they were fitted at."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from allocator.adaptive import Adaptive
from allocator.baselines import Uniform
from allocator.data import Outcomes
from allocator.ladder import rules_at
from oracle.synthetic import synthetic_outcomes
from service.ledger.control import BudgetController, UnreachableTarget


def serve(controller: BudgetController, target: float, spend_at: list[float], bias: float, seed: int = 0) -> float:
    """Realized mean when a policy spends its operating budget plus `bias` (noisy, integer samples)."""
    rng = np.random.default_rng(seed)
    state = controller.start(target)
    for _ in range(len(spend_at)):
        budget = controller.operating_budget(state)
        samples = max(1, round(rng.poisson(max(budget + bias, 0.1))))
        state = controller.update(state, samples)
    return state.realized


@pytest.mark.parametrize("bias", [-1.5, 0.0, 2.0])
def test_realized_mean_returns_to_the_target_whatever_the_policy_bias(bias: float) -> None:
    controller = BudgetController(lowest=1, highest=32, horizon=100)
    realized = serve(controller, 4.0, [0.0] * 10_000, bias)
    assert realized == pytest.approx(4.0, rel=0.01)


def test_without_control_the_same_bias_is_off_target() -> None:
    """The check above can fail: an open loop (a horizon too long to correct anything) misses by the bias."""
    controller = BudgetController(lowest=1, highest=32, horizon=1e12)
    assert serve(controller, 4.0, [0.0] * 5_000, 2.0) == pytest.approx(6.0, rel=0.05)


@settings(max_examples=200, deadline=None)
@given(
    target=st.floats(1.0, 32.0),
    draws=st.lists(st.integers(0, 64), min_size=1, max_size=200),
)
def test_operating_budget_stays_within_what_the_policy_can_spend(target: float, draws: list[int]) -> None:
    controller = BudgetController(lowest=1, highest=32, horizon=50)
    state = controller.start(target)
    for samples in draws:
        state = controller.update(state, samples)
        assert 1 <= controller.operating_budget(state) <= 32
    assert state.cost == sum(draws) and state.queries == len(draws)


def test_bad_targets_and_bounds_are_refused() -> None:
    with pytest.raises(ValueError, match="positive"):
        BudgetController(1, 32).start(float("nan"))
    with pytest.raises(ValueError, match="lowest"):
        BudgetController(8, 2)


@pytest.mark.parametrize("target", [0.5, 32.5, 1e9])
def test_a_target_the_policy_cannot_spend_is_refused_with_its_range(target: float) -> None:
    with pytest.raises(UnreachableTarget, match=r"out of reach: the policy spends between 1 and 32 samples"):
        BudgetController(1, 32).start(target)


def test_the_bounds_themselves_are_reachable() -> None:
    controller = BudgetController(1.5, 11.25)
    assert controller.start(1.5).target == 1.5 and controller.start(11.25).target == 11.25
    with pytest.raises(UnreachableTarget, match="spends only 4 samples"):
        BudgetController(4, 4).start(5)


@pytest.fixture(scope="module")
def outcomes() -> Outcomes:
    return Outcomes.read(synthetic_outcomes(questions=150, samples=32, seed=3), (1, 2, 4, 8, 16, 32))


def test_adaptive_moves_along_its_ladder_of_lambdas(outcomes: Outcomes) -> None:
    policy = Adaptive().fit(outcomes, 4.0)
    low, high = policy.spend_range()
    assert low < 4.0 < high
    budgets = [2.5, 4.0, 6.0, 10.0]
    lams = [policy.lam(b) for b in budgets]
    assert all(a >= b for a, b in itertools.pairwise(lams)), "a larger budget must not have a larger λ"
    for budget in budgets:  # each mix of two rungs spends exactly the budget on the training replays
        rule, lower, share = rules_at(policy.ladder_, budget)
        spends = {r.lam: s for r, s in policy.ladder_}
        assert (1 - share) * spends[rule.lam] + share * spends[lower.lam] == pytest.approx(budget)
    assert policy.lam(4.0) == pytest.approx(policy.lam())


def test_adaptive_serving_at_a_larger_budget_draws_more(outcomes: Outcomes) -> None:
    policy = Adaptive().fit(outcomes, 4.0)

    def mean_drawn(budget: float) -> float:
        drawn = []
        for votes, text in zip(outcomes.votes[outcomes.models[0]], outcomes.texts, strict=True):
            answers = [str(g) if g >= 0 else None for g in votes.sample_group]
            taken: list[str | None] = []
            while (k := policy.next_samples(text, taken, budget)) > 0:
                taken += [answers[(len(taken) + i) % len(answers)] for i in range(k)]
            drawn.append(len(taken))
        return float(np.mean(drawn))

    assert mean_drawn(2.5) < mean_drawn(4.0) < mean_drawn(10.0)


def test_uniform_serves_the_mix_of_any_budget(outcomes: Outcomes) -> None:
    policy = Uniform().fit(outcomes, 4.0)
    texts = [f"question {i}" for i in range(4000)]
    ks = np.array(policy.ks_)[policy.choose_at(texts, 6.0)]
    assert set(ks) == {4, 8} and ks.mean() == pytest.approx(6.0, rel=0.05)


def test_queries_still_running_count_at_what_they_spent_so_far() -> None:
    """A burst of cheap answers must not raise the budget while the dear ones are still out: what those have
    spent beyond the target already (one escalation at 20) lowers the next query's budget as a charge would."""
    controller = BudgetController(lowest=1, highest=40, horizon=100)
    state = controller.update(controller.start(8.0), 2.0)  # a cheap query came back first
    assert controller.operating_budget(state) == pytest.approx(8.06)
    assert controller.operating_budget(state, in_flight=22.0 - 8.0) == pytest.approx(7.92)
    assert controller.operating_budget(state, in_flight=1e9) == 1, "within what the policy can spend"
