"""Accuracy curves: each question's expected correctness p_i(k) when k of its recorded samples are aggregated.

A k-sample draw is a uniformly random k-subset of the m recorded samples (without replacement). Averaging an
aggregator over every k-subset of m i.i.d. samples is a U-statistic, so p_i(k) is an unbiased estimate of the
accuracy the model would reach with k fresh samples.

When k exceeds m no unbiased estimate exists. Such a question's curve is held flat from m on: p_i(k) = p_i(m),
"more samples than were recorded buy nothing we can vouch for". An oracle then never pays for them. A question
with no samples has p_i(k) = 0 for every k.
"""

from __future__ import annotations

import functools
import math
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from oracle.errors import OracleInputError
from oracle.outcomes import Question
from oracle.votes import VoteGroups, count_tokens

Aggregator = Literal["majority", "best-of", "pass"]
AGGREGATORS: tuple[Aggregator, ...] = ("majority", "best-of", "pass")
DEFAULT_ACTIONS = (1, 2, 4, 8, 16, 32)
"""The sample counts to choose from unless told otherwise: doubling, so a few rounds span them."""


@dataclass(frozen=True)
class Curves:
    """Per-question accuracy curves over the actions `ks`, with what the cost models need alongside."""

    ids: list[str]
    ks: tuple[int, ...]
    acc: NDArray[np.float64]
    """(n, K) expected correctness of each question under each action."""
    stderr: NDArray[np.float64]
    """(n, K) standard error of `acc`: zero when exact, the Monte-Carlo error when subsampled."""
    recorded: NDArray[np.int64]
    """(n,) number of samples recorded for each question."""
    tokens: NDArray[np.float64]
    """(n,) mean tokens per sample text (NaN where no sample has a text)."""


def accuracy_curves(
    questions: Iterable[Question],
    ks: Sequence[int],
    aggregator: Aggregator = "majority",
    *,
    draws: int | None = None,
    seed: int = 0,
) -> Curves:
    """Streams `questions` once and returns their curves; `draws` switches majority vote to subsampling."""
    ks = _check_ks(ks)
    if aggregator not in AGGREGATORS:
        raise OracleInputError(f"unknown aggregator {aggregator!r}: choose from {', '.join(AGGREGATORS)}")
    if draws is not None and (aggregator != "majority" or draws < 2):
        raise OracleInputError("draws applies to majority vote only and must be at least 2")
    ids: list[str] = []
    table = _Table(2 * len(ks) + 2)  # per question: curve, its standard errors, samples recorded, tokens
    for question in questions:
        ids.append(question.id)
        error = np.zeros(len(ks))
        if aggregator == "best-of":
            curve = best_of_curve(question, ks)
        elif aggregator == "pass":
            curve = pass_curve(question, ks)
        elif draws is None:
            curve = majority_curve(question, ks)
        else:
            rng = np.random.default_rng([seed, zlib.crc32(question.id.encode())])
            curve, error = majority_curve_sampled(question, ks, draws, rng)
        table.append(curve, error, len(question.samples), count_tokens(question))
    rows, width = table.rows(), len(ks)
    return Curves(
        ids=ids,
        ks=ks,
        acc=rows[:, :width].copy(),
        stderr=rows[:, width : 2 * width].copy(),
        recorded=rows[:, -2].astype(np.int64),
        tokens=rows[:, -1].copy(),
    )


class _Table:
    """Rows of floats appended one at a time into a buffer that doubles: memory stays near n × width."""

    def __init__(self, width: int) -> None:
        self._data = np.empty((1024, width))
        self._size = 0

    def append(self, *parts: NDArray[np.float64] | float) -> None:
        if self._size == self._data.shape[0]:
            grown = np.empty((2 * self._size, self._data.shape[1]))
            grown[: self._size] = self._data
            self._data = grown
        self._data[self._size] = np.hstack(parts)
        self._size += 1

    def rows(self) -> NDArray[np.float64]:
        return self._data[: self._size]


def majority_curve(question: Question, ks: Sequence[int]) -> NDArray[np.float64]:
    """Exact expected majority-vote correctness for each k (ties uniformly at random; no votes is wrong)."""
    groups = VoteGroups.of(question)
    ks = _check_ks(ks)
    out = np.zeros(len(ks))
    if groups.total == 0:
        return out
    held = np.minimum(ks, groups.total)
    binomial = _pascal(groups.total)
    if groups.counts.size == 1:  # unanimous: right unless every drawn sample gave no answer
        none_answered = binomial[groups.nulls, held] / binomial[groups.total, held]
        return np.asarray(float(groups.correct[0]) * (1.0 - none_answered), dtype=np.float64)
    kmax = int(held.max())
    for g in np.flatnonzero(groups.correct).tolist():
        out += _win_probability(groups.counts, g, groups.nulls, held, kmax)
    return np.clip(out, 0.0, 1.0)


def _win_probability(
    counts: NDArray[np.int64], g: int, nulls: int, ks: NDArray[np.int64], kmax: int
) -> NDArray[np.float64]:
    """P(group g wins the vote | k-subset) for each k."""
    return _win_by_count(counts, g, nulls, kmax).probability(ks, np.ones(len(ks), dtype=np.int64))


@dataclass(frozen=True)
class _WinTable:
    """For one group g: `ways[j - 1]` subsets of g's samples of size j, and `by_fill[j - 1, s]` the ways the
    other samples fill s places so that g wins with j votes (each weighted by its chance of winning a tie)."""

    ways: NDArray[np.float64]
    by_fill: NDArray[np.float64]
    total: int

    def probability(self, ks: NDArray[np.int64], least: NDArray[np.int64]) -> NDArray[np.float64]:
        """P(g wins with at least `least[i]` votes | a ks[i]-subset), for each i."""
        binomial = _pascal(self.total)
        out = np.zeros(len(ks))
        j = np.arange(1, self.ways.size + 1)
        for index, (k, low) in enumerate(zip(ks.tolist(), least.tolist(), strict=True)):
            usable = j[(j <= k) & (j >= low)]
            ways = float(np.sum(self.ways[usable - 1] * self.by_fill[usable - 1, k - usable]))
            out[index] = ways / binomial[self.total, k]
        if not np.all(np.isfinite(out)):
            raise OracleInputError("exact majority vote overflows at this many samples: use subsampling (draws)")
        return out


def _win_by_count(counts: NDArray[np.int64], g: int, nulls: int, kmax: int) -> _WinTable:
    """Subsets in which group g wins, by g's count, counted with generating polynomials.

    For g drawn j times, every other group must be drawn fewer than j times, or exactly j times (a tie among
    t + 1 groups, won with probability 1/(t + 1)). A[j, s, t] counts the ways the other groups and the null
    answers fill s places with t of them tied at j; it is built one group at a time, for every j at once.
    All terms are non-negative counts, so float64 keeps them exact up to 2**53 and accurate beyond.
    """
    total = int(counts.sum()) + nulls
    cg = int(counts[g])
    jmax = min(cg, kmax)
    binomial = _pascal(total)
    if jmax == 0:
        return _WinTable(np.zeros(0), np.zeros((0, max(kmax, 1))), total)
    others = np.delete(counts, g)
    places = kmax  # s runs over 0 .. kmax - 1: the other groups fill k - j <= kmax - 1 places
    ties = min(len(others), kmax - 1) + 1
    j = np.arange(1, jmax + 1)
    a = np.zeros((jmax, places, ties))
    a[:, :, 0] = binomial[nulls, :places]
    s = np.arange(places)
    for c in others.tolist():
        new = np.zeros_like(a)
        for y in range(min(c, places - 1) + 1):
            below = (y < j) * binomial[c, y]
            if y == 0:
                new += below[:, None, None] * a
            else:
                new[:, y:, :] += below[:, None, None] * a[:, :-y, :]
        # The tie term: group c drawn exactly j times, shifting s by j and t by one.
        src = s[None, :] - j[:, None]
        valid = (src >= 0) & (j[:, None] <= c)
        tied = np.where(valid[:, :, None], a[j[:, None] - 1, np.maximum(src, 0), :-1], 0.0)
        new[:, :, 1:] += binomial[c, j][:, None, None] * tied
        a = new
    weights = 1.0 / np.arange(1, ties + 1)
    return _WinTable(binomial[cg, j], a @ weights, total)


def agreement_split(
    question: Question, ks: Sequence[int], shares: Sequence[float]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """For k samples and a share t: P(the top answer has at least a share t of the k and wins the vote rightly),
    and P(it has at least that share), each of shape (len(ks), len(shares)); exactly, as `majority_curve`.

    What a cascade needs: below the share it escalates, so its accuracy is the first term plus the second's
    complement times the next model's accuracy. Questions with fewer samples than k use all they have.
    """
    groups = VoteGroups.of(question)
    ks = _check_ks(ks)
    right = np.zeros((len(ks), len(shares)))
    agree = np.zeros((len(ks), len(shares)))
    if groups.total == 0:
        return right, agree
    held = np.minimum(ks, groups.total)
    least = np.array([[max(1, math.ceil(share * k - 1e-9)) for share in shares] for k in held.tolist()], dtype=np.int64)
    kmax = int(held.max())
    for g in range(groups.counts.size):
        table = _win_by_count(groups.counts, g, groups.nulls, kmax)
        for column in range(len(shares)):
            won = table.probability(held, least[:, column])
            agree[:, column] += won
            if groups.correct[g]:
                right[:, column] += won
    return np.clip(right, 0.0, 1.0), np.clip(agree, 0.0, 1.0)


def majority_curve_sampled(
    question: Question, ks: Sequence[int], draws: int, rng: np.random.Generator
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Majority-vote correctness for each k from `draws` random orders of the samples, with standard errors.

    Each draw is a random permutation; its first k samples are a uniform k-subset for every k at once.
    """
    ks = _check_ks(ks)
    _, right = random_orders(VoteGroups.of(question), ks, draws, rng)
    hits = right.astype(np.float64)
    return hits.mean(axis=0), hits.std(axis=0, ddof=1) / np.sqrt(draws)


def random_orders(
    groups: VoteGroups, levels: Sequence[int], draws: int, rng: np.random.Generator
) -> tuple[NDArray[np.int64], NDArray[np.bool_]]:
    """Votes and majority-vote correctness after the first L samples of `draws` random orders, for each level L.

    Returns counts (draws, levels, answers) and right (draws, levels). Levels beyond the samples recorded see
    them all and share one tie-break, so their outcome is the same (the flat-curve rule). A draw with no votes
    is wrong. Ties go to the answer drawn first, as in `answers.votes`: uniform over random orders.
    """
    held = np.minimum(np.asarray(levels, dtype=np.int64), groups.total)
    width = max(groups.counts.size, 1)
    if groups.total == 0:
        return np.zeros((draws, held.size, width), dtype=np.int64), np.zeros((draws, held.size), dtype=np.bool_)
    order = np.argsort(rng.random((draws, groups.total)), axis=1)
    drawn = groups.labels()[order]  # per drawn sample: its answer group, or -1 for no answer
    running = np.cumsum(drawn[:, :, None] == np.arange(width)[None, None, :], axis=1)
    distinct, position = np.unique(held, return_inverse=True)
    votes = running[:, distinct - 1, :]
    first_seen = np.argmax(running > 0, axis=1)[:, None, :]  # an answer's first place in the order
    winner = np.argmax(votes * (groups.total + 1) - first_seen, axis=2)  # the vote's tie rule (answers.votes)
    correct = groups.correct if groups.correct.size else np.zeros(1, dtype=np.bool_)
    right = correct[winner] & (votes.max(axis=2) > 0)
    return votes[:, position, :], right[:, position]


def best_of_curve(question: Question, ks: Sequence[int]) -> NDArray[np.float64]:
    """Exact expected correctness of the highest-`score` sample among k (equal scores: uniform pick)."""
    ks = _check_ks(ks)
    m = len(question.samples)
    if m == 0:
        return np.zeros(len(ks))
    if any(sample.score is None for sample in question.samples):
        raise OracleInputError(f"question {question.id}: best-of needs a score on every sample")
    scores = np.array([sample.score for sample in question.samples], dtype=np.float64)
    correct = np.array([sample.correct and sample.answer is not None for sample in question.samples])
    levels, inverse = np.unique(-scores, return_inverse=True)  # best score first
    size = np.bincount(inverse, minlength=len(levels))
    hits = np.bincount(inverse, weights=correct, minlength=len(levels))
    above = np.concatenate(([0], np.cumsum(size)[:-1]))
    out = np.zeros(len(ks))
    binomial = _pascal(m)
    for index, k in enumerate(np.minimum(ks, m).tolist()):
        # P(the best drawn score is this level) = P(nothing above) - P(nothing above and nothing at it).
        p_level = (binomial[m - above, k] - binomial[m - above - size, k]) / binomial[m, k]
        out[index] = float(np.sum(p_level * hits / size))
    return out


def pass_curve(question: Question, ks: Sequence[int]) -> NDArray[np.float64]:
    """pass@k, the unbiased estimator of Chen et al. (2021): 1 - C(m - c, k) / C(m, k)."""
    ks = _check_ks(ks)
    m = len(question.samples)
    if m == 0:
        return np.zeros(len(ks))
    c = sum(sample.correct and sample.answer is not None for sample in question.samples)
    held = np.minimum(ks, m)
    binomial = _pascal(m)
    return np.asarray(1.0 - binomial[m - c, held] / binomial[m, held], dtype=np.float64)


def _pascal(size: int) -> NDArray[np.float64]:
    """C(n, k) for 0 <= n, k <= size at least (zero where k > n); read-only and shared."""
    return _pascal_table(1 << max(size, 1).bit_length())  # powers of two: a handful of tables serve all


@functools.lru_cache(maxsize=16)
def _pascal_table(size: int) -> NDArray[np.float64]:
    table = np.zeros((size + 1, size + 1))
    table[:, 0] = 1.0
    for n in range(1, size + 1):
        table[n, 1:] = table[n - 1, 1:] + table[n - 1, :-1]
    table.flags.writeable = False
    return table


def _check_ks(ks: Sequence[int]) -> tuple[int, ...]:
    out = tuple(int(k) for k in ks)
    if not out:
        raise OracleInputError("at least one action is needed")
    if any(k < 1 for k in out):
        raise OracleInputError(f"actions are sample counts and must be at least 1, got {list(out)}")
    if len(set(out)) != len(out):
        raise OracleInputError(f"actions must be distinct, got {list(out)}")
    return out
