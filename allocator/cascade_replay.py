"""Replays of two models' recorded samples, for a cascade that samples the cheap one in rounds and may escalate
to the dear one: the vote states it would see at each step, whether its combined vote would be right, and what
it would have spent.

Each trajectory pairs a random order of the first model's samples with one of the second's (independent draws).
The two models' votes are combined with a weight per model, matched on the answer's text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from allocator.replay import STATE_FEATURES, agreement, vote_state
from oracle.curves import random_orders
from oracle.votes import VoteGroups

FIRST_FEATURES = len(STATE_FEATURES)  # of the first model's votes
THEN_FEATURES = FIRST_FEATURES + 1  # those of the combined vote, and how many samples the first model gave


@dataclass(frozen=True)
class CascadeReplays:
    first: tuple[int, ...]
    """Cumulative samples of the first model at each of its levels."""
    then: tuple[int, ...]
    """Cumulative samples of the second model at each of its levels."""
    question: NDArray[np.intp]
    """(T,) the question each trajectory replays."""
    first_states: NDArray[np.float64]
    """(I, T, FIRST_FEATURES) after the first model's level i."""
    first_right: NDArray[np.bool_]
    """(I, T) the first model's own vote right after level i."""
    then_states: NDArray[np.float64]
    """(1 + I, J, T, THEN_FEATURES) after drawing the second model's level j, straight away (row 0) or on
    escalating from the first model's level i (row 1 + i)."""
    then_right: NDArray[np.bool_]
    """(1 + I, J, T) the combined vote right there."""
    unit: NDArray[np.float64]
    """(2, T) what one sample of each model costs on the trajectory's question."""


def cascade_replay(
    first: Sequence[VoteGroups],
    then: Sequence[VoteGroups],
    levels: tuple[tuple[int, ...], tuple[int, ...]],
    unit: NDArray[np.float64],
    weight: float,
    orders: int,
    seed: int,
) -> CascadeReplays:
    """Replay `orders` random orders of each question's samples of both models; `unit` is (n, 2) cost per sample,
    `weight` the second model's vote weight against the first's 1."""
    first_levels, then_levels = levels
    n, size = len(first), len(first) * orders
    first_states = np.zeros((len(first_levels), size, FIRST_FEATURES))
    first_right = np.zeros((len(first_levels), size), dtype=np.bool_)
    then_states = np.zeros((1 + len(first_levels), len(then_levels), size, THEN_FEATURES))
    then_right = np.zeros((1 + len(first_levels), len(then_levels), size), dtype=np.bool_)
    for q in range(n):
        rows = slice(q * orders, (q + 1) * orders)
        rng = np.random.default_rng([seed, q])
        a_counts, a_right = random_orders(first[q], first_levels, orders, rng)
        b_counts, _ = random_orders(then[q], then_levels, orders, rng)
        union, a_map, b_map, correct = _union(first[q], then[q])
        a_votes = _spread(a_counts, a_map, union)  # (orders, I, union)
        b_votes = _spread(b_counts, b_map, union)
        a_drawn = np.minimum(first_levels, max(first[q].total, 1)).astype(np.float64)
        b_drawn = np.minimum(then_levels, max(then[q].total, 1)).astype(np.float64)
        for i, level in enumerate(first_levels):
            first_states[i, rows] = vote_state(a_counts[:, i, :].astype(np.float64), level, first[q].total)
            first_right[i, rows] = a_right[:, i]
        for i in range(1 + len(first_levels)):  # row 0: none of the first model's samples
            a_part, drawn = (a_votes[:, i - 1, :], a_drawn[i - 1]) if i else (0.0, 0.0)
            for j in range(len(then_levels)):
                votes = a_part + weight * b_votes[:, j, :]
                then_states[i, j, rows] = combined_state(votes, drawn + weight * b_drawn[j], drawn)
                then_right[i, j, rows] = _right(votes, correct)
    question = np.repeat(np.arange(n), orders)
    return CascadeReplays(
        first_levels, then_levels, question, first_states, first_right, then_states, then_right, unit[question].T
    )


def combined_state(votes: NDArray[np.float64], total: float, first_drawn: float) -> NDArray[np.float64]:
    """THEN_FEATURES of weighted votes (rows × answers) out of `total` weighted samples."""
    return np.column_stack([agreement(votes, total), np.full(votes.shape[0], np.log2(1 + first_drawn))])


def weighted_tally(first: Sequence[str | None], then: Sequence[str | None], weight: float) -> dict[str, float]:
    """Both models' votes by answer, in the order first seen, the second's counting `weight` each."""
    score: dict[str, float] = {}
    for answer in first:
        if answer is not None:
            score[answer] = score.get(answer, 0.0) + 1.0
    for answer in then:
        if answer is not None:
            score[answer] = score.get(answer, 0.0) + weight
    return score


def combined_answer(first: Sequence[str | None], then: Sequence[str | None], weight: float) -> str | None:
    """The winner of both models' votes, the second's counting `weight` each (ties to the answer seen first)."""
    score = weighted_tally(first, then, weight)
    return max(score, key=lambda a: score[a]) if score else None


def _union(a: VoteGroups, b: VoteGroups) -> tuple[int, NDArray[np.intp], NDArray[np.intp], NDArray[np.bool_]]:
    """Both models' answers as one list: the index of each group in it, and which are correct."""
    names = list(a.answers)
    correct = list(a.correct.tolist())
    b_map = []
    for answer, right in zip(b.answers, b.correct.tolist(), strict=True):
        if answer not in names:
            names.append(answer)
            correct.append(right)
        b_map.append(names.index(answer))
    width = max(len(names), 1)
    return (
        width,
        np.arange(len(a.answers), dtype=np.intp),
        np.array(b_map, dtype=np.intp),
        np.array(correct + [False] * (width - len(correct)), dtype=np.bool_),
    )


def _spread(counts: NDArray[np.int64], mapping: NDArray[np.intp], width: int) -> NDArray[np.float64]:
    """(orders, levels, groups) counts placed at their answers' positions in the union."""
    out = np.zeros((*counts.shape[:2], width))
    if mapping.size:
        out[:, :, mapping] = counts[:, :, : mapping.size]
    return out


def _right(votes: NDArray[np.float64], correct: NDArray[np.bool_]) -> NDArray[np.bool_]:
    """Whether the weighted vote's winner is correct (ties to the answer listed first: the first model's)."""
    winner = np.argmax(votes, axis=1)
    return np.asarray(correct[winner] & (votes.max(axis=1) > 0), dtype=np.bool_)
