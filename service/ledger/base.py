"""What every ledger is: where the fleet's spend is recorded, and what serving reads back from it.

Two stores keep it: in-process for one gateway (`local`), or Redis for replicas that share it (`redis_store`),
with `fallback` choosing between them while Redis is away. All of them run the arithmetic of
`control.BudgetController` and charge each request id once, however often a retry or a replay presents it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from service.ledger.control import ControlState

StoreKind = Literal["local", "redis"]


@dataclass(frozen=True)
class Spend:
    queries: int = 0
    samples: int = 0


@dataclass(frozen=True)
class LedgerView:
    state: ControlState
    since: float
    tenants: dict[str, Spend]


class LedgerUnavailable(Exception):
    """The shared ledger cannot be reached and the gateway is configured to fail closed."""


class Ledger(Protocol):
    kind: StoreKind

    async def view(self, tenant: str | None = None) -> LedgerView:
        """The ledger, with every tenant's spend, or only `tenant`'s (what serving a query needs)."""
        ...

    async def charge(self, request_id: str, tenant: str, samples: int) -> bool:
        """Record a served query; False when `request_id` was charged already (nothing changes)."""
        ...

    async def restart(self, state: ControlState) -> LedgerView:
        """A new window from `state` (a new target): debt, queries and samples start again from zero."""
        ...
