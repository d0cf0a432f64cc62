"""The vote: one tally of samples' answers with one tie rule, for the gateway, the replays and the oracle.

Ties go to the answer seen first. Samples are exchangeable draws, so over a random order each tied answer is
equally likely to have been seen first: the rule is the uniform tie-break that the oracle's exact curves
assume, applied to the order the samples actually came in (the gateway's, or a replay's).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Tally:
    """Votes per distinct answer, in order of first appearance. A sample without an answer casts no vote."""

    answers: tuple[str, ...]
    counts: tuple[int, ...]
    first: tuple[int, ...]
    """For each answer: the index of the first sample that gave it."""
    groups: tuple[int, ...]
    """For each sample: the index of its answer in `answers`, or -1 when it gave none."""

    @property
    def winner(self) -> int | None:
        """The index of the answer with the most votes, ties to the one seen first; None when nobody voted."""
        if not self.counts:
            return None
        best = 0
        for group in range(1, len(self.counts)):
            if self.counts[group] > self.counts[best]:  # strictly more: an equal count seen later loses
                best = group
        return best


def tally(answers: Iterable[str | None]) -> Tally:
    index: dict[str, int] = {}
    counts: list[int] = []
    first: list[int] = []
    groups: list[int] = []
    for position, answer in enumerate(answers):
        if answer is None:
            groups.append(-1)
            continue
        group = index.get(answer)
        if group is None:
            group = index[answer] = len(counts)
            counts.append(1)
            first.append(position)
        else:
            counts[group] += 1
        groups.append(group)
    return Tally(tuple(index), tuple(counts), tuple(first), tuple(groups))


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
    """Majority vote (the tally's winner), or best-of when every sample has a score.

    Samples without an answer cast no vote but count in the agreement's denominator.
    """
    counted = tally(answers)
    winner = counted.winner
    if winner is None:
        return Verdict(answer=None, sample=0, votes={}, agreement=0.0)
    scored = [score for score in scores or () if score is not None]
    if len(scored) == len(answers):  # best-of: the answer of the best-scored sample that gave one
        best = max((score, -i) for i, score in enumerate(scored) if counted.groups[i] >= 0)
        winner = counted.groups[-best[1]]
    votes = dict(zip(counted.answers, counted.counts, strict=True))
    return Verdict(
        answer=counted.answers[winner],
        sample=counted.first[winner],
        votes=votes,
        agreement=counted.counts[winner] / len(answers),
    )


def verdict_for(answers: Sequence[str | None], winner: str | None) -> Verdict:
    """The verdict when the winner was decided elsewhere (a plan weighing two models' votes): the votes of every
    sample, the first sample that gave the winner, and its share of all samples."""
    counted = tally(answers)
    votes = dict(zip(counted.answers, counted.counts, strict=True))
    if winner is None or winner not in votes:
        return Verdict(answer=None, sample=0, votes=votes, agreement=0.0)
    group = counted.answers.index(winner)
    return Verdict(winner, counted.first[group], votes, counted.counts[group] / len(answers))
