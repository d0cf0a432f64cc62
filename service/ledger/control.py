"""Online budget control: keep the fleet's realized mean cost per query on a target.

Cost is in the units the policy was trained in: samples, or tokens, times each model's price (one model at
price 1 in samples: cost is samples). A pure state machine (`update(state, cost) -> state`); the gateway
supplies storage and a clock. The
controller pays off its debt: `debt` is how much the fleet has spent beyond target × queries, and the
next queries are served at an operating budget of target − debt / horizon, so an overspend is repaid over the
next `horizon` queries. That is integral control: whatever the policy's bias (a shift to harder questions,
a model trained on other data), the realized mean returns to the target with no steady-state error.

The debt is clipped so the operating budget stays within what the policy can do (anti-windup): a target the
policy cannot reach does not build up a debt that would swing spend the other way for hours afterwards.

The horizon trades how far the realized mean can stray against how much the budget moves: with a cost per
query of standard deviation σ, the debt wanders by about σ·√(horizon/2), so the mean over N queries is off by
that over N, and the budget by σ/√(2·horizon). A cascade's cost varies three times as much as a sample count
(one escalation at 20 times the price); at 100 queries, simulated over the gsm8k pair, the mean over 1,000
queries strayed 0.7% (sd; 1.1% at 200, 0.6% at 50).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

_SLACK = 1e-9  # relative: a target equal to a bound up to rounding is within it


class UnreachableTarget(ValueError):
    """A target the policy cannot spend on average; the message says what range it can."""


@dataclass(frozen=True)
class ControlState:
    """The ledger the controller keeps: totals since the target was set."""

    target: float
    debt: float = 0.0
    queries: int = 0
    cost: float = 0.0

    @property
    def realized(self) -> float:
        """Mean cost per query since the target was set (the target itself before any query)."""
        return self.cost / self.queries if self.queries else self.target


@dataclass(frozen=True)
class BudgetController:
    """Maps a ledger to the budget the policy should serve the next query at.

    `lowest` and `highest` bound what the policy can spend per query (its cheapest and dearest plans);
    `unit` names what a cost counts, for messages.
    """

    lowest: float
    highest: float
    horizon: float = 100.0
    unit: str = "samples"

    def __post_init__(self) -> None:
        if not 0 < self.lowest <= self.highest:
            raise ValueError(f"need 0 < lowest <= highest, got {self.lowest} and {self.highest}")
        if not self.horizon >= 1:
            raise ValueError(f"horizon must be at least one query, got {self.horizon}")

    def start(self, target: float) -> ControlState:
        """A fresh ledger at `target` mean cost per query: the one place a target is checked.

        A target outside what the policy can spend would be accepted and never met, so it is refused.
        """
        if not math.isfinite(target) or target <= 0:
            raise UnreachableTarget(f"target must be a positive cost per query, got {target}")
        if not self.lowest * (1 - _SLACK) <= target <= self.highest * (1 + _SLACK):
            reach = (
                f"only {self.lowest:.4g}"
                if self.lowest == self.highest
                else f"between {self.lowest:.4g} and {self.highest:.4g}"
            )
            raise UnreachableTarget(
                f"target {target:g} {self.unit} per query is out of reach: the policy spends {reach} {self.unit} "
                "per query on average; choose a target in that range or train a model at the budget wanted"
            )
        return ControlState(target=float(target))

    def update(self, state: ControlState, cost: float, deviation: float = 0.0) -> ControlState:
        """The ledger after one more query that cost `cost`.

        `deviation` is how far above the fleet's operating budget the query was served on its own tenant's
        account (a budget hint, or repaying the tenant's debt; negative below it): that part is the tenant's
        to repay (`tenant_debt`), not the fleet's, so one tenant's hints never cut the others' budgets.
        """
        debt = self.clip_debt(state.target, state.debt + cost - state.target - deviation)
        return ControlState(state.target, debt, state.queries + 1, state.cost + cost)

    def clip_debt(self, target: float, debt: float) -> float:
        """Debt beyond what the operating budget's bounds can repay is forgiven."""
        return min(max(debt, self.horizon * (target - self.highest)), self.horizon * (target - self.lowest))

    def operating_budget(self, state: ControlState, in_flight: float = 0.0) -> float:
        """The budget at which to serve the next query. `in_flight` is what the queries still being answered
        have spent beyond the target so far (at least their budget each): counted now, not when they end, since
        the dear ones end last (a cascade that escalates takes more rounds), and a controller that heard only of
        the cheap ones would raise the budget for a while after every burst."""
        return min(max(state.target - (state.debt + in_flight) / self.horizon, self.lowest), self.highest)

    def tenant_budget(self, fleet: float, tenant_debt: float, hint: float | None = None) -> float:
        """A tenant's budget for its next query: the fleet's operating budget (or its own capped hint), less
        its debt spread over the horizon, within what the policy can spend."""
        wanted = (fleet if hint is None else hint) - tenant_debt / self.horizon
        return min(max(wanted, self.lowest), self.highest)

    def tenant_debt(self, debt: float, deviation: float) -> float:
        """A tenant's debt after a query served `deviation` above the fleet's budget (anti-windup as above)."""
        span = self.horizon * (self.highest - self.lowest)
        return min(max(debt + deviation, -span), span)
