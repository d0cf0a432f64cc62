"""Online budget control: keep the fleet's realized mean samples per query on a target.

A pure state machine (`update(state, samples) -> state`); the gateway supplies storage and a clock. The
controller pays off its debt: `debt` is how many samples the fleet has spent beyond target × queries, and the
next queries are served at an operating budget of target − debt / horizon, so an overspend is repaid over the
next `horizon` queries. That is integral control: whatever the policy's bias (a shift to harder questions,
a model trained on other data), the realized mean returns to the target with no steady-state error.

The debt is clipped so the operating budget stays within what the policy can do (anti-windup): a target the
policy cannot reach does not build up a debt that would swing spend the other way for hours afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np


@dataclass(frozen=True)
class ControlState:
    """The ledger the controller keeps; `queries` and `samples` are exact totals since the target was set."""

    target: float
    debt: float = 0.0
    queries: int = 0
    samples: int = 0

    @property
    def realized(self) -> float:
        """Mean samples per query since the target was set (the target itself before any query)."""
        return self.samples / self.queries if self.queries else self.target


@dataclass(frozen=True)
class BudgetController:
    """Maps a ledger to the budget the policy should serve the next query at.

    `lowest` and `highest` bound what the policy can spend per query (its cheapest and dearest plans).
    """

    lowest: float
    highest: float
    horizon: float = 200.0

    def __post_init__(self) -> None:
        if not 0 < self.lowest <= self.highest:
            raise ValueError(f"need 0 < lowest <= highest, got {self.lowest} and {self.highest}")
        if not self.horizon >= 1:
            raise ValueError(f"horizon must be at least one query, got {self.horizon}")

    def start(self, target: float) -> ControlState:
        """A fresh ledger at `target` mean samples per query."""
        if not np.isfinite(target) or target <= 0:
            raise ValueError(f"target must be a positive number of samples, got {target}")
        return ControlState(target=float(target))

    def update(self, state: ControlState, samples: int) -> ControlState:
        """The ledger after one more query that drew `samples` samples."""
        debt = self.clip_debt(state.target, state.debt + samples - state.target)
        return replace(state, debt=debt, queries=state.queries + 1, samples=state.samples + samples)

    def clip_debt(self, target: float, debt: float) -> float:
        """Debt beyond what the operating budget's bounds can repay is forgiven."""
        return float(np.clip(debt, self.horizon * (target - self.highest), self.horizon * (target - self.lowest)))

    def operating_budget(self, state: ControlState) -> float:
        """The budget at which to serve the next query."""
        return float(np.clip(state.target - state.debt / self.horizon, self.lowest, self.highest))
