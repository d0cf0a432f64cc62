"""Replaying recorded samples in random orders: what a policy that samples in rounds would have seen.

Drawing the first L samples of a random permutation is a uniform L-subset, so averaging a rule over many
seeded orders estimates its expected accuracy and spend without a model in the loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from answers.votes import tally
from oracle.curves import random_orders
from oracle.votes import VoteGroups

STATE_FEATURES = ("log2_drawn", "top_share", "second_share", "margin", "distinct_share", "null_share", "unanimous")


@dataclass(frozen=True)
class Replays:
    """`orders` trajectories per question, summarised after each level of a sampling schedule."""

    levels: tuple[int, ...]
    question: NDArray[np.intp]
    """(T,) the question each trajectory replays."""
    states: NDArray[np.float64]
    """(levels, T, STATE_FEATURES) the vote summary after drawing each level."""
    correct: NDArray[np.bool_]
    """(levels, T) whether majority vote (ties at random) is right after each level."""


def replay(votes: Sequence[VoteGroups], levels: Sequence[int], orders: int, seed: int) -> Replays:
    """Replay each question's samples in `orders` seeded random orders, stopping to look at every level.

    A question with fewer samples than a level shows all it has (the flat-curve rule of `oracle.curves`).
    """
    levels = tuple(int(level) for level in levels)
    states = np.zeros((len(levels), len(votes) * orders, len(STATE_FEATURES)))
    correct = np.zeros((len(levels), len(votes) * orders), dtype=np.bool_)
    for index, groups in enumerate(votes):
        rows = slice(index * orders, (index + 1) * orders)
        counts, right = random_orders(groups, levels, orders, np.random.default_rng([seed, index]))
        for position, level in enumerate(levels):
            states[position, rows] = vote_state(counts[:, position, :].astype(np.float64), level, groups.total)
        correct[:, rows] = right.T
    question = np.repeat(np.arange(len(votes)), orders)
    return Replays(levels=levels, question=question, states=states, correct=correct)


def vote_state(counts: NDArray[np.float64], level: int, recorded: int | None = None) -> NDArray[np.float64]:
    """STATE_FEATURES of vote counts (rows × answers) after drawing `level` samples, nulls being the difference.

    A replay of a question with fewer `recorded` samples than the level shows all it has (none recorded:
    every sample drawn gave no answer).
    """
    return agreement(counts, min(level, recorded) if recorded else level)


def agreement(counts: NDArray[np.float64], total: float) -> NDArray[np.float64]:
    """STATE_FEATURES of vote counts (rows × answers, weighted or not) out of `total` samples drawn."""
    ranked = -np.sort(-counts, axis=1)
    top = ranked[:, 0] if ranked.shape[1] else np.zeros(counts.shape[0])
    second = ranked[:, 1] if ranked.shape[1] > 1 else np.zeros(counts.shape[0])
    answered = counts.sum(axis=1)
    distinct = (counts > 0).sum(axis=1)
    return np.column_stack(
        [
            np.full(counts.shape[0], np.log2(total)),
            top / total,
            second / total,
            (top - second) / total,
            distinct / max(total, 1.0),
            (total - answered) / total,
            ((distinct == 1) & (answered >= total - 1e-9)).astype(np.float64),
        ]
    )


def answer_counts(answers: Sequence[str | None]) -> NDArray[np.float64]:
    """One row of vote counts for the answers drawn so far (None casts no vote)."""
    return np.array([tally(answers).counts or (0,)], dtype=np.float64)
