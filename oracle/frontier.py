"""The whole accuracy-cost curve of the Lagrangian oracle, in one pass.

Lowering λ from infinity moves each question along the upper concave hull of its (cost, accuracy) points,
one hull segment at a time, in order of decreasing slope. Sorting every question's segments by slope once
therefore gives the allocation for every λ: the frontier's vertices are its prefixes. The vertices are
achievable allocations; the straight lines between them are the LP relaxation's optimum.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from oracle.instance import Instance, make_instance, row_chunks


@dataclass(frozen=True)
class Frontier:
    avg_cost: NDArray[np.float64]
    """(S + 1,) mean cost at each vertex, increasing; vertex 0 is every question on its cheapest action."""
    accuracy: NDArray[np.float64]
    """(S + 1,) mean accuracy at each vertex."""
    lam: NDArray[np.float64]
    """(S + 1,) slope of the segment reaching each vertex (inf for vertex 0): vertex s is the oracle's
    allocation for λ between lam[s + 1] and lam[s]."""

    def accuracy_at(self, budget: float) -> float:
        """Best achievable accuracy at mean cost <= budget among the vertices (NaN below the first vertex)."""
        last = int(np.searchsorted(self.avg_cost, budget * (1 + 1e-12), side="right")) - 1
        return float(self.accuracy[last]) if last >= 0 else float("nan")

    def lp_bound_at(self, budget: float) -> float:
        """The LP relaxation's optimum at `budget`: the frontier interpolated between vertices."""
        return float(np.interp(budget, self.avg_cost, self.accuracy))


def frontier(acc: ArrayLike, cost: ArrayLike) -> Frontier:
    """The oracle's frontier: every question's upper concave hull, then one sort of all hull segments."""
    inst = make_instance(acc, cost)
    start = inst.cheapest_best()
    # Worst-case room for every segment: np.empty commits no memory until written, so only the segments
    # found are paid for, and no chunk's results are copied twice.
    room = np.empty((3, inst.n * (inst.acc.shape[1] - 1)))
    filled = 0
    for span in row_chunks(inst.n):
        filled = _hull_segments(inst, span, start[span], room, filled)
    gains, costs, slopes = room[:, :filled]
    # Within a question slopes strictly decrease (see _hull_segments), so any order of equal slopes across
    # questions is a valid sequence of allocations: an unstable sort is safe, and reversing it is too.
    order = np.argsort(slopes)[::-1]
    base_cost = float(inst.cost_of(slice(None), start).sum())
    base_acc = float(inst.acc_of(slice(None), start).sum())
    return Frontier(
        avg_cost=_running_mean(costs, order, base_cost, inst.n),
        accuracy=_running_mean(gains, order, base_acc, inst.n),
        lam=_sorted_with_head(slopes, order, np.inf),
    )


def _sorted_with_head(values: NDArray[np.float64], order: NDArray[np.intp], head: float) -> NDArray[np.float64]:
    out = np.empty(values.size + 1)
    out[0] = head
    np.take(values, order, out=out[1:])
    return out


def _running_mean(steps: NDArray[np.float64], order: NDArray[np.intp], base: float, n: int) -> NDArray[np.float64]:
    out = _sorted_with_head(steps, order, 0.0)
    np.cumsum(out, out=out)
    out += base
    out /= n
    return out


def _hull_segments(inst: Instance, span: slice, start: NDArray[np.intp], room: NDArray[np.float64], filled: int) -> int:
    """Append the rising segments of the upper concave hulls of the questions in `span` to `room` (rows:
    gain, cost, slope) after its first `filled` columns; return the new fill.
    """
    acc = np.ascontiguousarray(inst.acc[span].T)  # (K, m): one action's accuracies are contiguous
    shared = inst.cost.ndim == 1
    cost = inst.cost[:, None] if shared else np.ascontiguousarray(inst.cost[span].T)
    following, steepest = _next_vertices(acc, cost)
    columns = np.arange(acc.shape[1])
    here = start.copy()
    for _ in range(acc.shape[0] - 1):
        nxt = following[here, columns]
        moving = np.flatnonzero(nxt != here)
        if moving.size == 0:
            break
        src, dst = here[moving], nxt[moving]
        end = filled + moving.size
        room[0, filled:end] = acc[dst, moving] - acc[src, moving]
        room[1, filled:end] = cost[dst, 0] - cost[src, 0] if shared else cost[dst, moving] - cost[src, moving]
        room[2, filled:end] = steepest[src, moving]
        filled = end
        here[moving] = dst
    return filled


def _next_vertices(acc: NDArray[np.float64], cost: NDArray[np.float64]) -> tuple[NDArray[np.intp], NDArray[np.float64]]:
    """For each action i (rows of `acc`, questions in columns): the next hull vertex and the slope to it.

    The next vertex is the dearer action of steepest rising slope, the farthest on ties, so collinear points
    merge into one segment and slopes strictly decrease along each hull. An action with no rising slope
    after it points to itself. `cost` is (K, 1) when shared, else (K, m).
    """
    actions, m = acc.shape
    following = np.empty((actions, m), dtype=np.intp)
    # Only a positive slope counts, and >= lets the farther action win ties: start from the least positive.
    steepest = np.full((actions, m), np.nextafter(0.0, 1.0))
    slope = np.empty(m)
    better = np.empty(m, dtype=np.bool_)
    for i in range(actions):
        following[i] = i
        for j in range(i + 1, actions):
            np.subtract(acc[j], acc[i], out=slope)
            step = cost[j] - cost[i]
            if step.size == 1:
                if step[0] <= 0:
                    continue
                slope /= step[0]
            else:
                np.divide(slope, step, out=slope, where=step > 0)
                np.copyto(slope, -np.inf, where=step <= 0)
            np.greater_equal(slope, steepest[i], out=better)
            np.copyto(steepest[i], slope, where=better)
            np.copyto(following[i], j, where=better)
    return following, steepest
