"""What every ledger is: where the fleet's spend is recorded, and what serving reads back from it.

Two stores keep it: in-process for one gateway (`local`), or Redis for replicas that share it (`redis_store`),
with `fallback` choosing between them while Redis is away. All of them run the arithmetic of
`control.BudgetController`, charge each request id once however often a retry or a replay presents it, and
hold tenants' quotas with reservations: before each round a query reserves what that round may cost at most,
and its charge settles the reservation, atomically, so that concurrent queries can never spend past a quota.

Costs are floats in the policy's units; what each model was charged for is also kept as whole numbers (its
samples, and its units: samples or completion tokens), so the total is exactly Σ price × units.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from service.ledger.control import ControlState

StoreKind = Literal["local", "redis"]


@dataclass(frozen=True)
class Spend:
    """A tenant's spend since the ledger began, and in the latest period of a periodic quota."""

    queries: int = 0
    samples: int = 0
    cost: float = 0.0
    debt: float = 0.0
    """What the tenant spent above the fleet's operating budget (hints), still to repay from its own."""
    period_key: str | None = None
    """The quota period it last spent in ("2026-12-02", "2026-12"), None without a periodic quota."""
    period: float = 0.0
    """What it spent in that period."""

    def in_period(self, key: str | None) -> float:
        """What counts against its quota in period `key` (None: a lifetime quota, everything it spent)."""
        if key is None:
            return self.cost
        return self.period if key == self.period_key else 0.0


@dataclass(frozen=True)
class ModelSpend:
    """One model's lifetime totals, whole numbers: samples, and units charged for (samples or tokens)."""

    samples: int = 0
    units: int = 0


@dataclass(frozen=True)
class LedgerView:
    state: ControlState
    since: float
    tenants: dict[str, Spend]
    models: dict[str, ModelSpend] = field(default_factory=dict)


@dataclass(frozen=True)
class Charge:
    """A served query: `id` is charged once; `deviation` goes to the tenant's own debt (see the controller);
    `reservation` is the quota reservation it settles, if any; `period` the quota period it counts in.
    `models` holds each model's (samples, units). A query the policy did not allocate (a client naming a
    backend model) is charged to its tenant and the models but does not move the controller."""

    id: str
    tenant: str
    samples: int
    cost: float
    models: dict[str, tuple[int, int]] = field(default_factory=dict)
    deviation: float = 0.0
    reservation: str | None = None
    allocated: bool = True
    period: str | None = None


@dataclass(frozen=True)
class Hold:
    """A reservation against a tenant's quota: `amount` more under id `reservation`, lapsing after `seconds`;
    measured against the tenant's spend in `period` when its quota is periodic, else all it ever spent."""

    tenant: str
    reservation: str
    amount: float
    quota: float
    seconds: float
    period: str | None = None


class LedgerUnavailable(Exception):
    """The shared ledger cannot be reached and the gateway is configured to fail closed."""


class Ledger(Protocol):
    kind: StoreKind

    async def view(self, tenant: str | None = None) -> LedgerView:
        """The ledger, with every tenant's spend, or only `tenant`'s (what serving a query needs)."""
        ...

    async def reserve(self, hold: Hold) -> float:
        """Hold up to `hold.amount` more of the tenant's quota for `hold.seconds`; how much was granted (0: none
        left). A query reserves before each round the most that round can cost."""
        ...

    async def charge(self, charge: Charge) -> bool:
        """Record a served query (and settle its reservation); False when its id was charged already."""
        ...

    async def release(self, tenant: str, reservation: str) -> None:
        """Give back a reservation whose query drew nothing."""
        ...

    async def restart(self, state: ControlState) -> LedgerView:
        """A new window from `state` (a new target): debt, queries and cost start again from zero (the models'
        lifetime totals and the tenants' periods go on)."""
        ...

    async def maintain(self) -> None:
        """Called about once a second: reconnect, replay, notice a restarted store."""
        ...

    def health(self) -> dict[str, Any]:
        """What `/readyz` and the dashboard show of the store."""
        ...
