"""What routes depend on: the serving `Gateway` on `app.state`, the calling tenant, and the budget as that
tenant may see it. Typed aliases keep the routes short (`gw: GatewayDep, who: TenantDep`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from service.errors import GatewayError
from service.ledger import LedgerView, Spend
from service.protocol import BudgetView, ModelSpendView, TenantSpend
from service.serving import Gateway
from service.tenants import Tenant, Tenants


async def gateway(request: Request) -> Gateway:  # async: a plain function would cost a thread hop per request
    return request.app.state.gateway  # type: ignore[no-any-return]


async def tenant(request: Request, authorization: Annotated[str | None, Header()] = None) -> Tenant:
    return authenticate(request.app.state.tenants, authorization)


def authenticate(tenants: Tenants, authorization: str | None) -> Tenant:
    """The tenant an `Authorization` header names, or a 401."""
    found = tenants.identify(authorization)
    if found is None:
        raise GatewayError(
            401, "a valid API key is required (Authorization: Bearer KEY)", "invalid_request_error", "invalid_api_key"
        )
    return found


GatewayDep = Annotated[Gateway, Depends(gateway)]
TenantDep = Annotated[Tenant, Depends(tenant)]


def budget_view(gw: Gateway, tenants: Tenants, view: LedgerView, who: Tenant) -> BudgetView:
    known = tenants.by_name()
    rows = []
    for name in sorted(set(view.tenants) | {name for name, t in known.items() if not t.admin}):
        if who.admin or tenants.open or name == who.name:
            spend, tenant = view.tenants.get(name, Spend()), known.get(name)
            quota = None if tenant is None else tenant.quota
            period = None if tenant is None else tenant.period
            left = None if quota is None else max(quota - spend.in_period(tenant.period_key() if tenant else None), 0)
            rows.append(
                TenantSpend(
                    tenant=name,
                    queries=spend.queries,
                    samples=spend.samples,
                    cost=spend.cost,
                    quota=quota,
                    period=period,
                    left=left,
                )
            )
    models = [
        ModelSpendView(
            model=name,
            price=gw.prices.price(name),
            samples=totals.samples,
            units=totals.units,
            cost=gw.prices.price(name) * totals.units,
        )
        for name, totals in sorted(view.models.items())
    ]
    budget = gw.operating_budget(view)
    return BudgetView(
        unit=gw.prices.label,
        target=view.state.target,
        realized=view.state.realized,
        operating_budget=budget,
        lam=gw.policy.lam(budget),
        queries=view.state.queries,
        cost=view.state.cost,
        since=view.since,
        store=gw.ledger.kind,
        degraded=gw.degraded,
        ledger_wiped_at=gw.ledger.health().get("ledger_wiped_at"),
        tenants=rows,
        models=models if who.admin or tenants.open else [],
    )
