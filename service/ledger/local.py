"""One process's ledger: the whole fleet when there is one gateway, or the mirror a gateway serves from while
the shared ledger is away."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from service.ledger.base import Charge, LedgerView, Spend, StoreKind
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
        self.charged: OrderedDict[str, None] = OrderedDict()
        self.reserved: dict[str, dict[str, tuple[int, float]]] = {}
        """Per tenant: reservation id → (samples, monotonic time it lapses)."""

    async def view(self, tenant: str | None = None) -> LedgerView:
        if tenant is None:
            return LedgerView(self.state, self.since, dict(self.tenants))
        return LedgerView(self.state, self.since, {tenant: self.tenants[tenant]} if tenant in self.tenants else {})

    async def reserve(self, tenant: str, reservation: str, samples: int, quota: int, seconds: float) -> int:
        now = time.monotonic()
        held = self.reserved.setdefault(tenant, {})
        for lapsed in [key for key, (_, until) in held.items() if until <= now]:
            del held[lapsed]
        room = quota - self.tenants.get(tenant, Spend()).samples - sum(amount for amount, _ in held.values())
        granted = max(min(samples, room), 0)
        if granted:
            held[reservation] = (held.get(reservation, (0, 0.0))[0] + granted, now + seconds)
        return granted

    async def charge(self, charge: Charge) -> bool:
        if charge.reservation is not None:
            self.reserved.get(charge.tenant, {}).pop(charge.reservation, None)
        if charge.id in self.charged:
            return False
        self.charged[charge.id] = None
        if len(self.charged) > _REMEMBERED:
            self.charged.popitem(last=False)
        self.state = self.controller.update(self.state, charge.samples, charge.deviation)
        spent = self.tenants.get(charge.tenant, Spend())
        debt = self.controller.tenant_debt(spent.debt, charge.deviation)
        self.tenants[charge.tenant] = Spend(spent.queries + 1, spent.samples + charge.samples, debt)
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
