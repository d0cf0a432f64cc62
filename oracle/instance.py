"""A validated allocation problem: accuracies and costs with each question's actions sorted by cost.

Sorting once lets every later argmax break ties toward the cheaper action just by taking the first maximum,
which is what makes the oracle's choices deterministic. Per-question costs may be left unsorted
(`by_cost` False), where sorting would cost more than the solve: then the ties that matter are broken
explicitly (`best_cheapest`, `cheapest_best`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from oracle.errors import OracleInputError

Index = NDArray[np.intp] | slice
CHUNK = 16384  # rows handled together by the passes over (n, K) arrays: their buffers stay in cache


def row_chunks(total: int) -> list[slice]:
    """Consecutive slices of at most CHUNK rows covering `total` rows."""
    return [slice(start, min(start + CHUNK, total)) for start in range(0, total, CHUNK)]


@dataclass(frozen=True)
class Instance:
    acc: NDArray[np.float64]
    """(n, K) accuracies, columns in increasing cost (per row when costs are per question) unless `by_cost`
    is False."""
    cost: NDArray[np.float64]
    """(K,) shared costs or (n, K) per-question costs, sorted like `acc`."""
    order: NDArray[np.intp] | None
    """Sorted column -> original column: (K,) or (n, K); None when the input was already sorted."""
    by_cost: bool = True
    """False when per-question costs were left in the caller's order (see `make_instance`)."""

    @property
    def n(self) -> int:
        return int(self.acc.shape[0])

    def cost_rows(self, rows: Index) -> NDArray[np.float64]:
        """Costs of the given rows, broadcastable against `acc[rows]`."""
        return self.cost[rows] if self.cost.ndim == 2 else self.cost

    def cost_of(self, rows: Index, columns: NDArray[np.intp]) -> NDArray[np.float64]:
        """The cost of one sorted column per row."""
        if self.cost.ndim == 2:
            return np.take_along_axis(self.cost[rows], columns[:, None], axis=1)[:, 0]
        return np.asarray(self.cost[columns], dtype=np.float64)

    def acc_of(self, rows: Index, columns: NDArray[np.intp]) -> NDArray[np.float64]:
        return np.take_along_axis(self.acc[rows], columns[:, None], axis=1)[:, 0]

    def subset(self, rows: NDArray[np.intp]) -> Instance:
        return Instance(self.acc[rows], self.cost[rows] if self.cost.ndim == 2 else self.cost, None, self.by_cost)

    def cheapest_best(self) -> NDArray[np.intp]:
        """Each question's most accurate action among its cheapest ones: the choice at a very high λ."""
        cost = self.cost_rows(slice(None))
        if cost.ndim == 1 and (cost.size == 1 or cost[1] > cost[0]):
            return np.zeros(self.n, dtype=np.intp)
        return self._best_where(lambda rows: self.cost_rows(rows) == self.cost_rows(rows).min(axis=-1, keepdims=True))

    def best_cheapest(self) -> NDArray[np.intp]:
        """Each question's cheapest action among its most accurate ones: the choice at λ = 0."""
        if self.by_cost:
            return np.asarray(np.argmax(self.acc, axis=1), dtype=np.intp)  # the first maximum is the cheapest
        chosen = np.empty(self.n, dtype=np.intp)
        for span in row_chunks(self.n):
            acc = self.acc[span]
            best = acc == acc.max(axis=1, keepdims=True)
            np.argmin(np.where(best, self.cost[span], np.inf), axis=1, out=chosen[span])
        return chosen

    def _best_where(self, allowed: Callable[[slice], NDArray[np.bool_]]) -> NDArray[np.intp]:
        """The most accurate allowed action of each row (the first on ties), a chunk of rows at a time."""
        chosen = np.empty(self.n, dtype=np.intp)
        for span in row_chunks(self.n):
            mask = np.broadcast_to(allowed(span), self.acc[span].shape)
            np.argmax(np.where(mask, self.acc[span], -np.inf), axis=1, out=chosen[span])
        return chosen

    @functools.cached_property
    def smallest_step(self) -> float:
        """The smallest positive difference between two actions' costs within a question (inf if none)."""
        if not self.by_cost:
            return 0.0  # unknown without sorting: no upgrade is ruled out by its size alone
        steps = np.diff(self.cost, axis=-1)
        positive = steps[steps > 0]
        return float(positive.min()) if positive.size else float("inf")

    def original(self, columns: NDArray[np.intp]) -> NDArray[np.intp]:
        """Map sorted columns (one per row, all rows) back to the caller's column indices."""
        if self.order is None:
            return columns
        if self.order.ndim == 1:
            return self.order[columns]
        return np.take_along_axis(self.order, columns[:, None], axis=1)[:, 0]


def make_instance(acc: ArrayLike, cost: ArrayLike, sort: bool = True) -> Instance:
    """Validate shapes and values; raise OracleInputError with a message a user can act on. Per-question costs
    are sorted too unless `sort` is False: sorting a million rows of 90 actions costs more than solving them,
    and the solver only needs the order to break exact ties, which it can do without."""
    acc = np.asarray(acc, dtype=np.float64)
    cost = np.asarray(cost, dtype=np.float64)
    if acc.ndim != 2 or acc.shape[1] == 0:
        raise OracleInputError(f"accuracies must have shape (questions, actions), got {acc.shape}")
    if acc.shape[0] == 0:
        raise OracleInputError("there are no questions")
    if cost.shape not in {(acc.shape[1],), acc.shape}:
        raise OracleInputError(f"costs must have shape {(acc.shape[1],)} or {acc.shape}, got {cost.shape}")
    if not np.all(np.isfinite(acc)):
        raise OracleInputError("accuracies must be finite numbers")
    if not np.all(np.isfinite(cost)) or np.any(cost <= 0):
        raise OracleInputError("costs must be finite and positive")
    if cost.ndim == 1:
        if np.all(np.diff(cost) >= 0):
            return Instance(acc, cost, None)
        order = np.argsort(cost, kind="stable")
        return Instance(acc[:, order], cost[order], order)
    if not sort:
        return Instance(acc, cost, None, by_cost=False)
    if np.all(np.diff(cost, axis=1) >= 0):
        return Instance(acc, cost, None)
    order = np.argsort(cost, axis=1, kind="stable")
    return Instance(np.take_along_axis(acc, order, 1), np.take_along_axis(cost, order, 1), order)
