"""What a policy learns from: question texts, their accuracy curves, and the recorded votes to replay."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from oracle.curves import accuracy_curves
from oracle.outcomes import Question
from oracle.votes import VoteGroups


@dataclass(frozen=True)
class Outcomes:
    """Questions of one outcome file, reduced to what training and evaluation need (no sample texts)."""

    ids: list[str]
    texts: list[str]
    ks: tuple[int, ...]
    acc: NDArray[np.float64]
    """(n, K) exact majority-vote accuracy curves."""
    votes: list[VoteGroups]
    """Each question's recorded answers, replayed by adaptive policies."""

    @property
    def n(self) -> int:
        return len(self.ids)

    @property
    def cost(self) -> NDArray[np.float64]:
        return np.array(self.ks, dtype=np.float64)

    @classmethod
    def read(cls, questions: Iterable[Question], ks: Sequence[int]) -> Outcomes:
        """One pass over `questions`, keeping their texts and votes but not their samples' texts."""
        ids: list[str] = []
        texts: list[str] = []
        votes: list[VoteGroups] = []

        def remember(stream: Iterable[Question]) -> Iterator[Question]:
            for question in stream:
                ids.append(question.id)
                texts.append(question.question)
                votes.append(VoteGroups.of(question))
                yield question

        curves = accuracy_curves(remember(questions), ks)
        return cls(ids=ids, texts=texts, ks=curves.ks, acc=curves.acc, votes=votes)

    def subset(self, rows: NDArray[np.intp] | Sequence[int]) -> Outcomes:
        rows = np.asarray(rows, dtype=np.intp)
        return Outcomes(
            ids=[self.ids[i] for i in rows],
            texts=[self.texts[i] for i in rows],
            ks=self.ks,
            acc=self.acc[rows],
            votes=[self.votes[i] for i in rows],
        )


@dataclass(frozen=True)
class Decisions:
    """What a policy did on each question: expected samples, expected correctness, and the action if one-shot."""

    samples: NDArray[np.float64]
    accuracy: NDArray[np.float64]
    actions: NDArray[np.intp] | None
    """Column of the chosen action per question for one-shot policies; None for adaptive ones."""

    @property
    def mean_samples(self) -> float:
        return float(self.samples.mean())

    @property
    def mean_accuracy(self) -> float:
        return float(self.accuracy.mean())
