"""Final-answer extraction and the vote."""

from __future__ import annotations

import re

import pytest

from answers.extract import canonical, extract_answer
from answers.votes import aggregate


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("so she has 18 apples.\n#### 18", "18"),
        ("Natalia sold 48 + 24 = 72 clips.\n#### 72", "72"),
        ("The final result is \\boxed{\\frac{1}{2}}.", "\\frac{1}{2}"),
        ("first \\boxed{3} then \\boxed{x^{2}+1}", "x^{2}+1"),
        ("So the answer is $1,200.", "1200"),
        ("The answer is: 7.50", "7.5"),
        ("Therefore the answer is 42. Hope that helps", "42"),
        ("He has 3 cats and 4 dogs, 7 pets", "7"),
        ("no numbers here", None),
        ("The answer is -0.0", "0"),
    ],
)
def test_extracts_the_final_answer(text: str, answer: str | None) -> None:
    assert extract_answer(text) == answer


def test_a_configured_pattern_comes_first() -> None:
    pattern = re.compile(r"ANSWER=(\S+)")
    assert extract_answer("#### 5 but ANSWER=6", pattern) == "6"
    assert extract_answer("#### 5", pattern) == "5"


def test_equivalent_numbers_agree() -> None:
    assert canonical("1,200.00") == canonical("$1200") == canonical("1200") == "1200"


def test_majority_vote_with_ties_to_the_first_seen() -> None:
    verdict = aggregate(["4", None, "5", "5", "4"])
    assert verdict.answer == "4" and verdict.votes == {"4": 2, "5": 2} and verdict.sample == 0
    assert verdict.agreement == pytest.approx(2 / 5)
    assert aggregate(["3", "5", "5"]).sample == 1


def test_best_of_uses_scores_when_every_sample_has_one() -> None:
    assert aggregate(["4", "5", "5"], [0.9, 0.1, 0.2]).answer == "4"
    assert aggregate(["4", "5", "5"], [0.9, None, 0.2]).answer == "5"


def test_no_answers_means_no_verdict() -> None:
    verdict = aggregate([None, None])
    assert verdict.answer is None and verdict.agreement == 0.0
