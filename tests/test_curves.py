from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from files.outcomes import read_outcomes
from oracle.curves import (
    accuracy_curves,
    best_of_curve,
    majority_curve,
    majority_curve_sampled,
    pass_curve,
)
from oracle.errors import OracleInputError
from oracle.outcomes import Question, Sample
from oracle.votes import VoteGroups
from tests.conftest import recorded

KS = (1, 2, 3, 5, 8, 12)


def question(answers: list[str | None], correct: set[str], scores: list[float] | None = None) -> Question:
    samples = [
        Sample(answer=a, correct=a in correct, score=None if scores is None else scores[i])
        for i, a in enumerate(answers)
    ]
    return Question(id="q", question="?", samples=samples)


def subsets(q: Question, k: int) -> list[tuple[int, ...]]:
    return list(itertools.combinations(range(len(q.samples)), min(k, len(q.samples))))


def brute_majority(q: Question, k: int) -> float:
    """Average over every k-subset: the most-voted answer, ties split evenly, no vote is wrong."""
    groups = VoteGroups.of(q)
    labels = groups.labels()
    total = 0.0
    every = subsets(q, k)
    for chosen in every:
        votes = np.bincount(labels[list(chosen)][labels[list(chosen)] >= 0], minlength=len(groups.counts))
        if votes.size and votes.max() > 0:
            leaders = np.flatnonzero(votes == votes.max())
            total += groups.correct[leaders].mean()
    return total / len(every)


def brute_best_of(q: Question, k: int) -> float:
    scores = np.array([s.score for s in q.samples])
    right = np.array([s.correct for s in q.samples])
    every = subsets(q, k)
    total = 0.0
    for chosen in every:
        top = scores[list(chosen)].max()
        winners = [i for i in chosen if scores[i] == top]
        total += right[winners].mean()
    return total / len(every)


def brute_pass(q: Question, k: int) -> float:
    right = [s.correct for s in q.samples]
    every = subsets(q, k)
    return sum(any(right[i] for i in chosen) for chosen in every) / len(every)


answers = st.lists(st.sampled_from(["a", "b", "c", "d", None]), min_size=1, max_size=9)
correct_sets = st.sets(st.sampled_from(["a", "b", "c", "d"]), max_size=2)


@settings(max_examples=150, deadline=None)
@given(answers, correct_sets)
def test_majority_is_exact_against_every_subset(drawn: list[str | None], right: set[str]) -> None:
    q = question(drawn, right)
    np.testing.assert_allclose(majority_curve(q, KS), [brute_majority(q, k) for k in KS], atol=1e-12)


@settings(max_examples=100, deadline=None)
@given(answers, correct_sets, st.data())
def test_best_of_is_exact_against_every_subset(drawn: list[str | None], right: set[str], data: st.DataObject) -> None:
    scores = data.draw(st.lists(st.sampled_from([0.0, 0.5, 1.0, 2.0]), min_size=len(drawn), max_size=len(drawn)))
    q = question(drawn, right, scores)
    np.testing.assert_allclose(best_of_curve(q, KS), [brute_best_of(q, k) for k in KS], atol=1e-12)


@settings(max_examples=100, deadline=None)
@given(answers, correct_sets)
def test_pass_at_k_is_exact_against_every_subset(drawn: list[str | None], right: set[str]) -> None:
    q = question(drawn, right)
    np.testing.assert_allclose(pass_curve(q, KS), [brute_pass(q, k) for k in KS], atol=1e-12)


def test_known_values() -> None:
    # Two votes for the right answer and one for a wrong one: one sample is right 2/3 of the time; three
    # always are; two are right when both are "a" (1/3) or they split (2/3, a fair coin): 1/3 + 1/3.
    q = question(["a", "a", "b"], {"a"})
    np.testing.assert_allclose(majority_curve(q, [1, 2, 3]), [2 / 3, 2 / 3, 1.0])
    np.testing.assert_allclose(pass_curve(q, [1, 2, 3]), [2 / 3, 1.0, 1.0])
    # A sample without an answer casts no vote, and a draw of only such samples is wrong.
    np.testing.assert_allclose(majority_curve(question([None, "a"], {"a"}), [1, 2]), [0.5, 1.0])


def test_k_beyond_the_recorded_samples_is_held_flat() -> None:
    q = question(["a", "b", "a", "c"], {"a"})
    curve = majority_curve(q, [4, 8, 32])
    assert curve[0] == curve[1] == curve[2]
    assert pass_curve(q, [4, 100]).tolist() == [1.0, 1.0]


def test_no_samples_means_never_correct() -> None:
    q = question([], set())
    for curve in (majority_curve(q, KS), pass_curve(q, KS), best_of_curve(q, KS)):
        assert curve.tolist() == [0.0] * len(KS)


def test_subsampling_agrees_with_exact_within_its_standard_error() -> None:
    q = question(["a"] * 9 + ["b"] * 7 + ["c"] * 5 + [None] * 3, {"a"})
    exact = majority_curve(q, KS)
    mean, stderr = majority_curve_sampled(q, KS, 4000, np.random.default_rng(3))
    assert np.all(stderr[1:] > 0)
    assert np.all(np.abs(mean - exact) <= 4 * stderr + 1e-12)


def test_subsampling_holds_the_curve_flat_beyond_the_samples_recorded() -> None:
    q = question(["a", "b", "a", "c", "b", None], {"a"})
    mean, _ = majority_curve_sampled(q, (6, 8, 32), 200, np.random.default_rng(0))
    assert mean[0] == mean[1] == mean[2]
    nulls = question([None, None, None], set())
    assert majority_curve_sampled(nulls, KS, 10, np.random.default_rng(0))[0].tolist() == [0.0] * len(KS)


def test_subsampling_is_reproducible_per_question_whatever_the_order() -> None:
    qs = [question(["a", "b", "a", "c", "b"], {"a"}).model_copy(update={"id": f"q{i}"}) for i in range(3)]
    forward = accuracy_curves(qs, KS, draws=50, seed=1)
    backward = accuracy_curves(qs[::-1], KS, draws=50, seed=1)
    np.testing.assert_array_equal(forward.acc, backward.acc[::-1])


def test_bad_requests_are_refused_clearly() -> None:
    q = question(["a", "b"], {"a"})
    with pytest.raises(OracleInputError, match="best-of needs a score"):
        best_of_curve(q, KS)
    with pytest.raises(OracleInputError, match="distinct"):
        majority_curve(q, [1, 1])
    with pytest.raises(OracleInputError, match="at least 1"):
        majority_curve(q, [0, 2])
    with pytest.raises(OracleInputError, match="unknown aggregator"):
        accuracy_curves([q], KS, "median")  # type: ignore[arg-type]


def test_recorded_llama_curve_matches_the_published_figures() -> None:
    curves = accuracy_curves(read_outcomes(recorded("gsm8k-llama2-13b.jsonl")), (1, 32))
    assert curves.acc.shape == (280, 2)
    np.testing.assert_allclose(curves.acc.mean(axis=0), [0.30, 0.44], atol=0.01)
