from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.optimize import linprog

from oracle.errors import OracleInputError
from oracle.frontier import frontier
from oracle.solver import solve


def lp_optimum(acc: np.ndarray, cost: np.ndarray, budget: float) -> float:
    """The LP relaxation (each question may mix actions) solved by HiGHS."""
    n, k = acc.shape
    full_cost = np.broadcast_to(cost, acc.shape)
    one_mix_per_question = np.kron(np.eye(n), np.ones(k))
    result = linprog(
        -acc.ravel(),
        A_ub=full_cost.ravel()[None, :] / n,
        b_ub=[budget],
        A_eq=one_mix_per_question,
        b_eq=np.ones(n),
        bounds=(0, 1),
        method="highs",
    )
    assert result.status == 0
    return float(-result.fun / n)


def brute_force(acc: np.ndarray, cost: np.ndarray, budget: float) -> float:
    n, k = acc.shape
    full_cost = np.broadcast_to(cost, acc.shape)
    rows = np.arange(n)
    best = -np.inf
    for choice in itertools.product(range(k), repeat=n):
        if full_cost[rows, choice].mean() <= budget * (1 + 1e-12):
            best = max(best, acc[rows, choice].mean())
    return float(best)


@st.composite
def instances(draw: st.DrawFn, max_n: int, max_k: int) -> tuple[np.ndarray, np.ndarray, float]:
    n = draw(st.integers(1, max_n))
    k = draw(st.integers(1, max_k))
    acc = draw(arrays(np.float64, (n, k), elements=st.floats(0, 1).map(lambda x: round(x, 2))))
    shape = draw(st.sampled_from([(k,), (n, k)]))
    cost = draw(arrays(np.float64, shape, elements=st.integers(1, 6).map(float)))
    full = np.broadcast_to(cost, (n, k))
    budget = draw(st.floats(full.min(axis=1).mean(), full.max(axis=1).mean() + 1))
    return acc, cost, budget


def check_invariants(acc: np.ndarray, cost: np.ndarray, budget: float) -> None:
    solution = solve(acc, cost, budget)
    rows = np.arange(acc.shape[0])
    full_cost = np.broadcast_to(cost, acc.shape)
    assert solution.avg_cost <= budget * (1 + 1e-12)
    assert solution.avg_cost == pytest.approx(full_cost[rows, solution.actions].mean())
    assert solution.accuracy == pytest.approx(acc[rows, solution.actions].mean())
    lp = lp_optimum(acc, cost, budget)
    one_question = float((acc.max(axis=1) - acc.min(axis=1)).max()) / acc.shape[0]
    assert lp - one_question - 1e-9 <= solution.accuracy <= lp + 1e-9
    assert solution.upper_bound == pytest.approx(lp, abs=1e-7)


@settings(max_examples=200, deadline=None)
@given(instances(max_n=5, max_k=4))
def test_never_beats_brute_force_and_stays_within_one_question_of_it(instance) -> None:  # type: ignore[no-untyped-def]
    acc, cost, budget = instance
    check_invariants(acc, cost, budget)
    best = brute_force(acc, cost, budget)
    one_question = float((acc.max(axis=1) - acc.min(axis=1)).max()) / acc.shape[0]
    assert best - one_question - 1e-9 <= solve(acc, cost, budget).accuracy <= best + 1e-12


@settings(max_examples=60, deadline=None)
@given(instances(max_n=60, max_k=7))
def test_within_the_integrality_gap_of_the_lp_relaxation(instance) -> None:  # type: ignore[no-untyped-def]
    check_invariants(*instance)


def test_large_random_instance_against_highs() -> None:
    rng = np.random.default_rng(11)
    ks = np.array([1, 2, 4, 8, 16, 32], dtype=float)
    acc = np.sort(rng.random((400, ks.size)), axis=1)
    for budget in (1.5, 4.0, 9.7, 20.0):
        check_invariants(acc, ks, budget)


def test_the_subsample_search_agrees_with_the_full_frontier() -> None:
    # More questions than the subsample, so solve guesses λ on a subsample first.
    rng = np.random.default_rng(5)
    ks = np.array([1, 2, 4, 8], dtype=float)
    acc = np.sort(rng.random((60_000, ks.size)), axis=1)
    curve = frontier(acc, ks)
    for budget in (1.7, 3.0, 6.2):
        solution = solve(acc, ks, budget)
        assert solution.avg_cost <= budget * (1 + 1e-12)
        assert curve.accuracy_at(budget) - 1e-9 <= solution.accuracy <= curve.lp_bound_at(budget) + 1e-12
        assert solution.upper_bound == pytest.approx(curve.lp_bound_at(budget), abs=1e-9)


def test_ties_go_to_the_cheaper_action_and_results_are_deterministic() -> None:
    acc = np.array([[0.5, 0.5, 0.5], [0.2, 0.9, 0.9]])
    cost = np.array([1.0, 2.0, 4.0])
    solution = solve(acc, cost, 10.0)
    assert solution.actions.tolist() == [0, 1]
    assert solution.lam == 0.0
    again = solve(acc, cost, 10.0)
    assert np.array_equal(again.actions, solution.actions)


def test_unsorted_costs_map_back_to_the_callers_columns() -> None:
    acc = np.array([[0.9, 0.1, 0.5], [0.95, 0.3, 0.4]])
    cost = np.array([8.0, 1.0, 2.0])  # the best column is the dearest
    solution = solve(acc, cost, 8.0)
    assert solution.actions.tolist() == [0, 0]
    cheap = solve(acc, cost, 1.5)
    assert cheap.avg_cost <= 1.5 and set(cheap.actions.tolist()) <= {1, 2}


def test_a_budget_below_the_cheapest_actions_is_refused() -> None:
    with pytest.raises(OracleInputError, match="below the cheapest allocation's mean cost 1"):
        solve(np.ones((3, 2)), np.array([1.0, 2.0]), 0.5)


@pytest.mark.parametrize(
    ("acc", "cost", "budget", "message"),
    [
        (np.ones((0, 2)), [1.0, 2.0], 1.0, "no questions"),
        (np.ones(3), [1.0], 1.0, "shape"),
        (np.ones((2, 2)), [1.0, 2.0, 3.0], 1.0, "costs must have shape"),
        (np.array([[np.nan, 1.0]]), [1.0, 2.0], 1.0, "finite"),
        (np.ones((1, 2)), [0.0, 2.0], 1.0, "positive"),
        (np.ones((1, 2)), [-1.0, 2.0], 1.0, "positive"),
        (np.ones((1, 2)), [1.0, 2.0], float("nan"), "budget must be a finite number"),
    ],
)
def test_invalid_input_is_refused_with_a_reason(acc, cost, budget, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(OracleInputError, match=message):
        solve(acc, cost, budget)


@settings(max_examples=80, deadline=None)
@given(instances(max_n=30, max_k=6))
def test_per_question_costs_left_unsorted_solve_like_shared_ones(instance) -> None:  # type: ignore[no-untyped-def]
    # The same costs given per question take the unsorted path: same accuracy, same spend, same λ.
    acc, cost, budget = instance
    if cost.ndim == 2:
        cost = cost[0]
    assume(budget >= cost.min())
    shared = solve(acc, cost, budget)
    per_question = solve(acc, np.tile(cost, (acc.shape[0], 1)), budget)
    # The same allocation at the same λ; only the leftover is spent less thoroughly (see _spend_leftover).
    assert per_question.lam == pytest.approx(shared.lam, rel=1e-9)
    one_question = float((acc.max(axis=1) - acc.min(axis=1)).max()) / acc.shape[0]
    assert shared.accuracy - one_question - 1e-12 <= per_question.accuracy <= shared.upper_bound + 1e-9
    assert per_question.avg_cost <= budget * (1 + 1e-12)


def test_per_question_costs_break_ties_toward_the_cheaper_action() -> None:
    acc = np.array([[0.5, 0.5, 0.5], [0.9, 0.2, 0.9]])
    cost = np.array([[4.0, 1.0, 2.0], [8.0, 1.0, 2.0]])  # unsorted, and differently per question
    solution = solve(acc, cost, 10.0)
    assert solution.actions.tolist() == [1, 2]
    assert solution.lam == 0.0
