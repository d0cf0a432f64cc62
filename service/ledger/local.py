"""One process's ledger: the whole fleet when there is one gateway, or the mirror a gateway serves from while
the shared ledger is away."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from service.ledger.base import LedgerView, Spend, StoreKind
from service.ledger.control import BudgetController, ControlState

_REMEMBERED = 1_000_000  # request ids remembered for idempotency


class LocalLedger:
    """One process's ledger."""

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

    async def view(self, tenant: str | None = None) -> LedgerView:
        if tenant is None:
            return LedgerView(self.state, self.since, dict(self.tenants))
        return LedgerView(self.state, self.since, {tenant: self.tenants[tenant]} if tenant in self.tenants else {})

    async def charge(self, request_id: str, tenant: str, samples: int) -> bool:
        if request_id in self.charged:
            return False
        self.charged[request_id] = None
        if len(self.charged) > _REMEMBERED:
            self.charged.popitem(last=False)
        self.state = self.controller.update(self.state, samples)
        spent = self.tenants.get(tenant, Spend())
        self.tenants[tenant] = Spend(spent.queries + 1, spent.samples + samples)
        return True

    async def restart(self, state: ControlState) -> LedgerView:
        self.state = state
        self.since = self.clock()
        return await self.view()
