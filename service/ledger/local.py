"""One process's ledger: the whole fleet when there is one gateway, or the mirror a gateway serves from while
the shared ledger is away."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from service.ledger.base import Charge, Hold, LedgerView, ModelSpend, Spend, StoreKind
from service.ledger.control import BudgetController, ControlState

_REMEMBERED = 1_000_000  # request ids remembered for idempotency


class LocalLedger:
    kind: StoreKind = "local"

    def __init__(
        self, controller: BudgetController, state: ControlState, clock: Callable[[], float] = time.time
    ) -> None:
        self.controller = controller
        self.clock = clock
        self.state = state
        self.since = clock()
        self.tenants: dict[str, Spend] = {}
        self.models: dict[str, ModelSpend] = {}
        self.charged: OrderedDict[str, None] = OrderedDict()
        self.reserved: dict[str, dict[str, tuple[float, float]]] = {}
        """Per tenant: reservation id → (amount, monotonic time it lapses)."""

    async def view(self, tenant: str | None = None) -> LedgerView:
        if tenant is None:
            return LedgerView(self.state, self.since, dict(self.tenants), dict(self.models))
        mine = {tenant: self.tenants[tenant]} if tenant in self.tenants else {}
        return LedgerView(self.state, self.since, mine, dict(self.models))

    async def reserve(self, hold: Hold) -> float:
        now = time.monotonic()
        held = self.reserved.setdefault(hold.tenant, {})
        for lapsed in [key for key, (_, until) in held.items() if until <= now]:
            del held[lapsed]
        spent = self.tenants.get(hold.tenant, Spend()).in_period(hold.period)
        room = hold.quota - spent - sum(amount for amount, _ in held.values())
        granted = max(min(hold.amount, room), 0.0)
        if granted > 0:
            held[hold.reservation] = (held.get(hold.reservation, (0.0, 0.0))[0] + granted, now + hold.seconds)
        return granted

    async def charge(self, charge: Charge) -> bool:
        if charge.reservation is not None:
            self.reserved.get(charge.tenant, {}).pop(charge.reservation, None)
        if charge.id in self.charged:
            return False
        self.charged[charge.id] = None
        if len(self.charged) > _REMEMBERED:
            self.charged.popitem(last=False)
        if charge.allocated:
            self.state = self.controller.update(self.state, charge.cost, charge.deviation)
        for model, (samples, units) in charge.models.items():
            had = self.models.get(model, ModelSpend())
            self.models[model] = ModelSpend(had.samples + samples, had.units + units)
        self.tenants[charge.tenant] = spent_after(self.tenants.get(charge.tenant, Spend()), charge, self.controller)
        return True

    async def release(self, tenant: str, reservation: str) -> None:
        self.reserved.get(tenant, {}).pop(reservation, None)

    async def restart(self, state: ControlState) -> LedgerView:
        self.state = state
        self.since = self.clock()
        return await self.view()

    async def maintain(self) -> None:
        """Nothing to keep up: the process is the store."""

    def health(self) -> dict[str, Any]:
        return {"store": "local"}


def spent_after(spent: Spend, charge: Charge, controller: BudgetController) -> Spend:
    """A tenant's spend after `charge` (the arithmetic the Redis script repeats)."""
    debt = controller.tenant_debt(spent.debt, charge.deviation) if charge.allocated else spent.debt
    period = spent.in_period(charge.period) + charge.cost if charge.period is not None else 0.0
    return replace(
        spent,
        queries=spent.queries + 1,
        samples=spent.samples + charge.samples,
        cost=spent.cost + charge.cost,
        debt=debt,
        period_key=charge.period,
        period=period,
    )
