"""A question's samples reduced to what voting needs: how many samples gave each distinct answer."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from answers.votes import tally
from oracle.outcomes import Question

_TOKEN = re.compile(r"\w+|[^\w\s]")


@dataclass(frozen=True)
class VoteGroups:
    """Sample counts of the distinct answers (in order of first appearance) and whether each is correct."""

    counts: NDArray[np.int64]
    correct: NDArray[np.bool_]
    nulls: int
    sample_group: tuple[int, ...]
    """For each sample in recorded order: the index of its answer group, or -1 when it gave no answer."""
    answers: tuple[str, ...] = ()
    """Each group's answer: what votes of different models are matched on."""

    @property
    def total(self) -> int:
        return len(self.sample_group)

    @classmethod
    def of(cls, question: Question) -> VoteGroups:
        counted = tally(sample.answer for sample in question.samples)
        return cls(
            counts=np.array(counted.counts, dtype=np.int64),
            correct=np.array([question.samples[i].correct for i in counted.first], dtype=np.bool_),
            nulls=counted.groups.count(-1),
            sample_group=counted.groups,
            answers=counted.answers,
        )

    def labels(self) -> NDArray[np.int64]:
        return np.array(self.sample_group, dtype=np.int64)


def count_tokens(question: Question) -> float:
    """Mean tokens per sample: a sample's recorded `tokens` where the file has them, else its text's words
    plus punctuation marks (NaN when no sample has either).

    A BPE tokenizer gives a different count, but per-question cost ratios, which the oracle acts on, stay close.
    """
    lengths: list[int] = []
    for sample in question.samples:
        if sample.tokens is not None:
            lengths.append(sample.tokens)
        elif sample.text is not None:
            lengths.append(token_count(sample.text))
    return float(np.mean(lengths)) if lengths else float("nan")


def token_count(text: str) -> int:
    """Words plus punctuation marks: the approximate token count `count_tokens` averages."""
    return len(_TOKEN.findall(text))
