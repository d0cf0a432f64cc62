"""Final answers out of generated text, and the vote that turns several samples into one reply.

Extraction tries, in order: a configured pattern, `\\boxed{...}` (MATH), `#### x` (GSM8K), "the answer is x",
then the last number in the text. Answers are canonicalised so that "1,200", "1200.0" and "$1200" agree.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

_GSM8K = re.compile(r"####\s*([^\n]+)")
_ANSWER_IS = re.compile(r"answer is[:\s]*\$?\s*([^\n]+?)\s*(?:\.\s*$|\.\s|$)", re.IGNORECASE | re.MULTILINE)
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?|-?\.\d+")
_PLAIN_NUMBER = re.compile(r"-?[\d,]*\.?\d+")


def extract_answer(text: str, pattern: re.Pattern[str] | None = None) -> str | None:
    """The canonical final answer of `text`, or None when it states none. A `pattern`'s first group wins."""
    if pattern is not None:
        found = pattern.findall(text)
        if found:
            last = found[-1]
            return canonical(last[0] if isinstance(last, tuple) else last)
    boxed = last_boxed(text)
    if boxed is not None:
        return canonical(boxed)
    for rule in (_GSM8K, _ANSWER_IS):
        matches = rule.findall(text)
        if matches:
            return canonical(matches[-1])
    numbers = _NUMBER.findall(text)
    return canonical(numbers[-1]) if numbers else None


def canonical(answer: str) -> str | None:
    """Strip dollars, units' punctuation and spaces; numbers lose thousands separators and a trailing `.0`."""
    value = answer.strip().strip("$").strip().rstrip(".").strip()
    if value.startswith("\\boxed{") and value.endswith("}"):
        value = value[len("\\boxed{") : -1]
    if _PLAIN_NUMBER.fullmatch(value):
        value = value.replace(",", "")
        if "." in value:
            value = value.rstrip("0").rstrip(".") or "0"
        if value in ("-0", ""):
            value = "0"
        return value
    value = re.sub(r"\s+", "", value)
    return value or None


def last_boxed(text: str) -> str | None:
    """The contents of the last `\\boxed{...}`, braces balanced."""
    start = text.rfind("\\boxed{")
    if start < 0:
        return None
    depth, begin = 0, start + len("\\boxed{")
    for position in range(begin, len(text)):
        if text[position] == "{":
            depth += 1
        elif text[position] == "}":
            if depth == 0:
                return text[begin:position]
            depth -= 1
    return None


@dataclass(frozen=True)
class Verdict:
    """The aggregated reply: the winning answer, which sample carries it, and how strongly the samples agree."""

    answer: str | None
    sample: int
    """Index of a sample that gave the winning answer (the first one; 0 when no sample gave any)."""
    votes: dict[str, int]
    agreement: float
    """Share of all samples that gave the winning answer."""


def aggregate(answers: Sequence[str | None], scores: Sequence[float | None] | None = None) -> Verdict:
    """Majority vote (ties to the answer seen first), or best-of when every sample has a score.

    Samples without an answer cast no vote but count in the agreement's denominator.
    """
    votes: dict[str, int] = {}
    for answer in answers:
        if answer is not None:
            votes[answer] = votes.get(answer, 0) + 1
    if not votes:
        return Verdict(answer=None, sample=0, votes={}, agreement=0.0)
    if scores is not None and len(scores) == len(answers) and all(score is not None for score in scores):
        ranked = [(score, -i) for i, (score, answer) in enumerate(zip(scores, answers, strict=True)) if answer]
        best = -max(ranked)[1] if ranked else 0
        winner = answers[best]
    else:
        winner = max(votes, key=lambda answer: votes[answer])  # dicts keep first-seen order: ties go to the first
    assert winner is not None
    return Verdict(answer=winner, sample=answers.index(winner), votes=votes, agreement=votes[winner] / len(answers))
