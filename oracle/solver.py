"""The oracle: the best action per question under a mean-cost budget, by Lagrangian relaxation.

maximise  mean_i p_i(a_i)   subject to   mean_i c_i(a_i) <= B

Pricing cost at λ splits the problem into one sub-problem per question, a_i(λ) = argmax_a p_i(a) - λ c_i(a).
Total cost is non-increasing in λ: if λ1 < λ2 pick a1 and a2, optimality of each gives
    p(a1) - λ1 c(a1) >= p(a2) - λ1 c(a2)   and   p(a2) - λ2 c(a2) >= p(a1) - λ2 c(a1);
adding them, (λ2 - λ1)(c(a1) - c(a2)) >= 0, so c(a1) >= c(a2) for every question. A binary search on λ
therefore finds the smallest λ whose allocation fits the budget.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from oracle.errors import OracleInputError
from oracle.instance import CHUNK, Instance, make_instance, row_chunks

_RELATIVE_SLACK = 1e-12  # float sums of costs may wobble in the last bits; the budget is not exceeded beyond it
_SUBSAMPLE = 20000  # questions used to guess λ before the exact search on all of them
_GUESS_WIDTH = 1.02  # the guess is bracketed by [guess / width, guess * width]
_GUESS_PRECISION = 1e-4  # the subsample's bracket need not shrink further than this, relative to λ


@dataclass(frozen=True)
class OracleSolution:
    actions: NDArray[np.intp]
    """(n,) the chosen action's column for each question."""
    lam: float
    """λ, the price of cost at which the allocation is Lagrangian-optimal (0 when the budget does not bind)."""
    avg_cost: float
    accuracy: float
    """Mean expected accuracy of the chosen actions."""
    budget: float
    upper_bound: float
    """λ·B + mean_i max_a (p_i(a) - λ c_i(a)): by weak duality no allocation within the budget does better."""


def solve(acc: ArrayLike, cost: ArrayLike, budget: float) -> OracleSolution:
    """Best actions for mean cost <= `budget`: within one question's gain (over n) of the LP optimum.

    Ties go to the cheaper action, so the result is deterministic. Raises OracleInputError when even the cheapest
    actions exceed the budget.
    """
    inst = make_instance(acc, cost, sort=np.ndim(cost) == 1)
    budget = float(budget)
    if not np.isfinite(budget):
        raise OracleInputError("budget must be a finite number")
    allowed = budget * inst.n * (1 + _RELATIVE_SLACK)
    greedy = inst.best_cheapest()
    if _total_cost(inst, greedy) <= allowed:
        return _solution(inst, greedy, 0.0, budget, greedy)
    cheapest = inst.cheapest_best() if inst.by_cost else None
    floor = _total_cost(inst, cheapest) if cheapest is not None else float(inst.cost.min(axis=1).sum())
    if floor > allowed:
        raise OracleInputError(f"budget {budget:g} is below the cheapest allocation's mean cost {floor / inst.n:g}")
    search = _Bracket(0.0, *_high_price(inst, allowed, cheapest), greedy)
    if inst.n > 2 * _SUBSAMPLE:
        _narrow_by_subsample(inst, search, allowed)
    _bisect(inst, search, allowed)
    filled = _spend_leftover(inst, search, allowed)
    return _solution(inst, filled, search.hi, budget, search.hi_actions)


@dataclass
class _Bracket:
    """λ* lies in (lo, hi]: the allocation at lo costs too much, the one at hi fits."""

    lo: float
    hi: float
    hi_actions: NDArray[np.intp]
    lo_actions: NDArray[np.intp]

    def move(self, lam: float, actions: NDArray[np.intp], total: float, allowed: float) -> None:
        if not self.lo < lam < self.hi:
            return
        if total <= allowed:
            self.hi, self.hi_actions = lam, actions
        else:
            self.lo, self.lo_actions = lam, actions


def _choose(inst: Instance, lam: float, rows: NDArray[np.intp] | None = None) -> NDArray[np.intp]:
    """argmax_a p(a) - λ c(a) for every row (or the given rows), the first maximum: the cheapest action on
    ties when columns are sorted by cost. Unsorted (per-question costs), an exact tie between actions of
    different cost at λ > 0 needs λ to fall exactly on a breakpoint, which bisection does not aim at; the
    allocation is checked against the budget either way."""
    count = inst.n if rows is None else rows.size
    chosen = np.empty(count, dtype=np.intp)
    buffer = np.empty((min(CHUNK, count), inst.acc.shape[1]))
    priced = lam * inst.cost if inst.cost.ndim == 1 else None
    for span in row_chunks(count):
        part = buffer[: span.stop - span.start]
        source = span if rows is None else rows[span]
        if priced is not None:
            np.subtract(inst.acc[source], priced, out=part)
        else:
            np.multiply(inst.cost[source], -lam, out=part)
            part += inst.acc[source]
        np.argmax(part, axis=1, out=chosen[span])
    return chosen


def _total_cost(inst: Instance, actions: NDArray[np.intp], rows: NDArray[np.intp] | None = None) -> float:
    """Cost of one action per row (all rows, or the given ones)."""
    if inst.cost.ndim == 1:
        return float(np.bincount(actions, minlength=inst.cost.size) @ inst.cost)
    return _gathered_sum(inst.cost, actions, rows)


def _gathered_sum(table: NDArray[np.float64], actions: NDArray[np.intp], rows: NDArray[np.intp] | None = None) -> float:
    total = 0.0
    for span in row_chunks(actions.size):
        source = span if rows is None else rows[span]
        total += float(np.take_along_axis(table[source], actions[span][:, None], axis=1).sum())
    return total


def _high_price(inst: Instance, allowed: float, cheapest: NDArray[np.intp] | None) -> tuple[float, NDArray[np.intp]]:
    """A λ whose allocation fits, and that allocation. Sorted, one above every upgrade's slope, where each
    question takes the best of its cheapest actions; unsorted (the smallest step between costs unknown),
    the first of 1, 16, 256, ... that fits."""
    if cheapest is not None:
        return 2 * float(inst.acc.max() - inst.acc.min()) / inst.smallest_step + 1.0, cheapest
    lam = 1.0
    while lam < 1e300:
        actions = _choose(inst, lam)
        if _total_cost(inst, actions) <= allowed:
            return lam, actions
        lam *= 16
    return lam, inst.cheapest_best()


def _narrow_by_subsample(inst: Instance, search: _Bracket, allowed: float) -> None:
    """Guess λ* on a fixed random subsample, then test a narrow bracket around the guess on everyone.

    The tests only ever shrink a valid bracket, so a poor guess costs time, never correctness.
    """
    rows = np.sort(np.random.default_rng(0).choice(inst.n, _SUBSAMPLE, replace=False))
    sub = inst.subset(rows)
    trial = _Bracket(search.lo, search.hi, search.hi_actions[rows], search.lo_actions[rows])
    _bisect(sub, trial, allowed * _SUBSAMPLE / inst.n, precision=_GUESS_PRECISION)
    for lam in (trial.hi / _GUESS_WIDTH, trial.hi * _GUESS_WIDTH):
        actions = _choose(inst, lam)
        search.move(lam, actions, _total_cost(inst, actions), allowed)


def _bisect(inst: Instance, search: _Bracket, allowed: float, precision: float = 0.0) -> None:
    """Shrink the bracket to adjacent floats (or to a relative width of `precision`), re-solving only the
    questions still undecided.

    A question with the same action at both ends keeps it for every λ between (monotonicity; equal cost
    means equal action under the cheapest-first tie rule), so each step only re-solves questions with a
    breakpoint inside the bracket, and they thin out as it shrinks.
    """
    lo_actions, hi_actions = search.lo_actions.copy(), search.hi_actions.copy()
    active = np.flatnonzero(lo_actions != hi_actions)
    settled = _total_cost(inst, hi_actions) - _total_cost(inst, hi_actions[active], active)
    lo, hi = search.lo, search.hi
    while active.size and hi - lo > precision * hi:
        mid = lo + (hi - lo) / 2
        if not lo < mid < hi:
            break
        chosen = _choose(inst, mid, active)
        if settled + _total_cost(inst, chosen, active) <= allowed:
            hi, hi_actions[active] = mid, chosen
        else:
            lo, lo_actions[active] = mid, chosen
        decided = lo_actions[active] == hi_actions[active]
        settled += _total_cost(inst, hi_actions[active[decided]], active[decided])
        active = active[~decided]
    search.lo, search.hi, search.lo_actions, search.hi_actions = lo, hi, lo_actions, hi_actions


def _spend_leftover(inst: Instance, search: _Bracket, allowed: float) -> NDArray[np.intp]:
    """Spend what the priced allocation leaves unused on the upgrades with the best gain per unit of cost.

    Each question offers its best-ratio upgrade that fits the leftover; the best offer that still fits is
    taken until none does. Upgrades from a(λ*) gain at most λ* per unit of cost, and a question whose
    action is the same at λ*/2 gains at most λ*/2: offers above λ*/2 come from the few questions that
    differ, and everyone else is asked only if those run out. Never breaks the budget; only adds accuracy.
    With per-question costs left unsorted everyone else is not asked: they could add at most λ*/2 per unit
    of what is left (about one question's upgrade in cost), and asking them costs more than the solve.
    """
    actions = search.hi_actions
    leftover = allowed - _total_cost(inst, actions)
    if leftover < inst.smallest_step:
        return actions
    upgraded = actions.copy()
    half = search.hi / 2
    near = np.flatnonzero(_choose(inst, half) != actions)
    leftover = _take_offers(inst, upgraded, near, leftover, floor=half)
    if leftover >= inst.smallest_step and inst.by_cost:
        rest = np.flatnonzero(upgraded == actions)
        _take_offers(inst, upgraded, rest, leftover, floor=0.0)
    return upgraded


def _take_offers(
    inst: Instance, actions: NDArray[np.intp], rows: NDArray[np.intp], leftover: float, floor: float
) -> float:
    """Upgrade `rows` in place, best gain per cost first, with offers above `floor`; returns the leftover."""
    ratio = np.full(rows.size, -np.inf)
    target = np.zeros(rows.size, dtype=np.intp)
    upgrade_cost = np.zeros(rows.size)
    for span in row_chunks(rows.size):
        source = rows[span]
        here = actions[source][:, None]
        cost = np.broadcast_to(inst.cost_rows(source), (here.shape[0], inst.acc.shape[1]))
        extra = cost - np.take_along_axis(cost, here, axis=1)
        fits = (extra > 0) & (extra <= leftover)
        if not fits.any():  # usually so for everyone but the near questions: skip the rest of the work
            continue
        gain = inst.acc[source] - np.take_along_axis(inst.acc[source], here, axis=1)
        fits &= gain > floor * extra
        ratios = np.where(fits, gain / np.where(fits, extra, 1.0), -np.inf)
        best = np.argmax(ratios, axis=1)[:, None]
        target[span] = best[:, 0]
        ratio[span] = np.take_along_axis(ratios, best, axis=1)[:, 0]
        upgrade_cost[span] = np.take_along_axis(extra, best, axis=1)[:, 0]
    smallest = inst.smallest_step
    while rows.size and leftover >= smallest:
        pick = int(np.argmax(np.where(upgrade_cost <= leftover, ratio, -np.inf)))
        if upgrade_cost[pick] > leftover or not np.isfinite(ratio[pick]):
            break
        actions[rows[pick]] = target[pick]
        leftover -= float(upgrade_cost[pick])
        ratio[pick] = -np.inf
    return leftover


def _solution(
    inst: Instance, actions: NDArray[np.intp], lam: float, budget: float, priced: NDArray[np.intp]
) -> OracleSolution:
    dual = _gathered_sum(inst.acc, priced) - lam * _total_cost(inst, priced)
    return OracleSolution(
        actions=inst.original(actions),
        lam=lam,
        avg_cost=_total_cost(inst, actions) / inst.n,
        accuracy=_gathered_sum(inst.acc, actions) / inst.n,
        budget=budget,
        upper_bound=lam * budget + dual / inst.n,
    )
