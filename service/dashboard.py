"""The budget dashboard: a static page (`/dashboard`, drawn with the vendored uPlot) that polls
`GET /v1/dashboard` every second. No CDN: everything it loads is served from `service/static/`.

The data endpoint takes the same keys as the API: a tenant sees only its own spend, and the page offers the
target form only when the key is the admin's (the `PUT /v1/budget/target` behind it checks again).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse

from service.deps import GatewayDep, TenantDep, budget_view

STATIC = Path(__file__).with_name("static")
dashboard_router = APIRouter()


@dashboard_router.get("/dashboard", include_in_schema=False)
async def page() -> FileResponse:
    return FileResponse(STATIC / "dashboard.html", media_type="text/html")


@dashboard_router.get("/v1/dashboard/access")
async def access(request: Request) -> dict[str, bool]:
    """Whether the data needs a key: the page asks first, rather than collect a 401 on every load."""
    return {"open": bool(request.app.state.tenants.open)}


@dashboard_router.get("/v1/dashboard")
async def data(request: Request, gw: GatewayDep, who: TenantDep) -> dict[str, Any]:
    """Everything the page draws, as the caller may see it."""
    tenants = request.app.state.tenants
    view = budget_view(gw, tenants, await gw.ledger.view(), who)
    return {
        "budget": view.model_dump(by_alias=True),
        "history": gw.history.snapshot(),
        "backends": gw.backend_health,
        "policy": gw.policy.name,
        "models": gw.policy.models(),
        "viewer": {"tenant": who.name, "admin": who.admin, "open": tenants.open},
    }
