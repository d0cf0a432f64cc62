"""What every ledger is: where the fleet's spend is recorded, and what serving reads back from it.

Two stores keep it: in-process for one gateway (`local`), or Redis for replicas that share it (`redis_store`),
with `fallback` choosing between them while Redis is away. All of them run the arithmetic of
`control.BudgetController`, charge each request id once however often a retry or a replay presents it, and
hold tenants' quotas with reservations: before each round a query reserves what that round may draw, and its
charge settles the reservation, atomically, so that concurrent queries can never spend past a quota.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol

from service.ledger.control import ControlState

StoreKind = Literal["local", "redis"]


@dataclass(frozen=True)
class Spend:
    queries: int = 0
    samples: int = 0
    debt: float = 0.0
    """Samples the tenant spent above the fleet's operating budget (hints), still to repay from its own."""


@dataclass(frozen=True)
class LedgerView:
    state: ControlState
    since: float
    tenants: dict[str, Spend]


@dataclass(frozen=True)
class Charge:
    """A served query: `id` is charged once; `deviation` goes to the tenant's own debt (see the controller);
    `reservation` is the quota reservation it settles, if any."""

    id: str
    tenant: str
    samples: int
    deviation: float = 0.0
    reservation: str | None = None


class LedgerUnavailable(Exception):
    """The shared ledger cannot be reached and the gateway is configured to fail closed."""


class Ledger(Protocol):
    kind: StoreKind

    async def view(self, tenant: str | None = None) -> LedgerView:
        """The ledger, with every tenant's spend, or only `tenant`'s (what serving a query needs)."""
        ...

    async def reserve(self, tenant: str, reservation: str, samples: int, quota: int, seconds: float) -> int:
        """Hold up to `samples` more of `tenant`'s quota under `reservation` for `seconds`; how many were granted
        (0: none left). A query reserves before each round what that round will draw."""
        ...

    async def charge(self, charge: Charge) -> bool:
        """Record a served query (and settle its reservation); False when its id was charged already."""
        ...

    async def release(self, tenant: str, reservation: str) -> None:
        """Give back a reservation whose query drew nothing."""
        ...

    async def restart(self, state: ControlState) -> LedgerView:
        """A new window from `state` (a new target): debt, queries and samples start again from zero."""
        ...

    async def maintain(self) -> None:
        """Called about once a second: reconnect, replay, notice a restarted store."""
        ...

    def health(self) -> dict[str, Any]:
        """What `/readyz` and the dashboard show of the store."""
        ...
