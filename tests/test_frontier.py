from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings

from oracle.costs import uniform_accuracy
from oracle.frontier import frontier
from tests.test_solver import instances, lp_optimum


@settings(max_examples=80, deadline=None)
@given(instances(max_n=30, max_k=6))
def test_frontier_is_the_lp_optimum_at_every_budget(instance) -> None:  # type: ignore[no-untyped-def]
    acc, cost, budget = instance
    curve = frontier(acc, cost)
    assert np.all(np.diff(curve.avg_cost) > 0)
    assert np.all(np.diff(curve.accuracy) > 0)
    assert np.all(np.diff(curve.lam[1:]) <= 1e-12)  # steepest first: the curve is concave
    assert curve.lp_bound_at(budget) == pytest.approx(lp_optimum(acc, cost, budget), abs=1e-7)


def test_every_vertex_is_an_achievable_allocation() -> None:
    # Vertex s is a prefix of hull steps: rebuild one allocation per vertex from λ and compare.
    rng = np.random.default_rng(2)
    ks = np.array([1.0, 2.0, 4.0, 8.0])
    acc = np.sort(rng.random((50, 4)), axis=1)
    curve = frontier(acc, ks)
    for s in range(1, curve.lam.size - 1):
        lam = (curve.lam[s] + curve.lam[s + 1]) / 2
        if curve.lam[s] == curve.lam[s + 1]:
            continue
        chosen = np.argmax(acc - lam * ks, axis=1)
        assert ks[chosen].mean() == pytest.approx(curve.avg_cost[s])
        assert acc[np.arange(50), chosen].mean() == pytest.approx(curve.accuracy[s])


def test_flat_questions_contribute_no_segments() -> None:
    curve = frontier(np.full((4, 3), 0.5), np.array([1.0, 2.0, 3.0]))
    assert curve.avg_cost.tolist() == [1.0]
    assert curve.accuracy_at(0.5) != curve.accuracy_at(0.5)  # NaN below the cheapest allocation
    assert curve.accuracy_at(2.0) == 0.5


def test_uniform_mixes_two_neighbouring_actions() -> None:
    acc = np.array([[0.2, 0.6, 0.7], [0.4, 0.4, 0.9]])
    ks = np.array([1.0, 2.0, 4.0])
    assert uniform_accuracy(acc, ks, 2.0) == pytest.approx(0.5)
    assert uniform_accuracy(acc, ks, 3.0) == pytest.approx((0.5 + 0.8) / 2)
    assert uniform_accuracy(acc, ks, 100.0) == pytest.approx(0.8)
    # Neighbours, not the hull: at 3 samples a mix of k = 2 and 4, even where mixing 1 and 4 would do better.
    dip = np.array([[0.5, 0.1, 0.9]])
    assert uniform_accuracy(dip, ks, 3.0) == pytest.approx((0.1 + 0.9) / 2)
