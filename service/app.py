"""The gateway's FastAPI app, built by a factory: `create_app(settings)` (uvicorn: `--factory`).

Nothing is created at import time. The policy is loaded in the factory, so a bad model stops start-up with
one clear line; connections (aiohttp, Redis) open in the lifespan and close with it.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

import aiohttp
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from allocator.base import Policy
from files.models import load_model
from service.backends import BackendPool
from service.connections import GuardedHttpToolsProtocol
from service.costs import Prices
from service.dashboard import STATIC, dashboard_router
from service.errors import GatewayError, error_body, invalid_request
from service.fleet import discover, parse_backend
from service.idempotency import RedisReplies
from service.ledger import (
    BudgetController,
    ControlState,
    FallbackLedger,
    Ledger,
    LedgerUnavailable,
    LocalLedger,
    RedisLedger,
    UnreachableTarget,
    redis_client,
)
from service.metrics import Metrics
from service.middleware import Edge
from service.routes import chat_completions, router
from service.serving import Gateway
from service.settings import Settings, SettingsError
from service.tenants import Tenants

log = logging.getLogger("apportion.gateway")


def create_app(settings: Settings, *, policy: Policy | None = None) -> FastAPI:
    """The gateway for `settings`; `policy` replaces the model directory (tests hand one in).

    Which backend serves which of the policy's models is asked here, before anything listens: a model no
    backend serves is a `SettingsError`, one line."""
    manifest: dict[str, Any] = {}
    if policy is None:
        if settings.model is None:
            raise SettingsError("--model (or APPORTION_MODEL): a policy from apportion train is required")
        policy, manifest = load_model(settings.model)
    prices = _prices(settings, policy, manifest)
    tenants = Tenants.read(settings.tenants, settings.admin_key.get_secret_value() if settings.admin_key else None)
    fleet = discover([parse_backend(b) for b in settings.backends], policy.models(), settings.backend_model)
    aliases = {name: model for model, backends in fleet.pools.items() for _, name in backends if name and name != model}
    unknown = sorted(set(settings.price_table()) - set(fleet.pools) - set(fleet.direct))
    if unknown:
        known = ", ".join(dict.fromkeys([*fleet.pools, *fleet.direct]))
        raise SettingsError(f"--price {unknown[0]}: no model of that name (the policy's and the backends': {known})")
    prices = replace(prices, aliases=aliases)
    GuardedHttpToolsProtocol.header_timeout = settings.header_timeout  # the servers run one gateway each
    lowest, highest = policy.spend_range()
    controller = BudgetController(lowest, max(highest, lowest), settings.horizon, prices.label)
    start = _starting_state(settings, policy, controller, prices)
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        connector = aiohttp.TCPConnector(limit=1024, limit_per_host=0, keepalive_timeout=30)
        timeout = aiohttp.ClientTimeout(total=settings.backend_timeout, sock_connect=min(5.0, settings.backend_timeout))
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as client:
            options: dict[str, Any] = {
                "fanout": settings.fanout,
                "retries": settings.retries,
                "max_reply_bytes": settings.max_reply_bytes,
            }
            pools = {
                model: BackendPool([url for url, _ in backends], client, models=[n for _, n in backends], **options)
                for model, backends in fleet.pools.items()
            }
            for pool in pools.values():  # backends that were down when the fleet was found: their names now
                for url, ids in (await pool.name_backends()).items():
                    for model_id in ids:
                        fleet.direct.setdefault(model_id, []).append(url)
            direct = {
                model_id: BackendPool(urls, client, model=model_id, **options)
                for model_id, urls in fleet.direct.items()
            }
            redis_client, ledger = await _ledger(settings, controller, start)
            app.state.redis = redis_client
            replies = None
            if redis_client is not None:
                keep, largest = settings.idempotency_ttl, settings.idempotency_max_bytes
                replies = RedisReplies(redis_client, settings.redis_prefix, keep, largest)
            gateway = Gateway(
                policy, pools, ledger, controller, settings, metrics, replies, prices=prices, direct=direct
            )
            app.state.gateway = gateway
            watcher = asyncio.create_task(gateway.watch())
            gc.freeze()  # what start-up made (policy, libraries) lives as long as we do: keep it out of every GC pass
            try:
                yield
            finally:
                watcher.cancel()
                if redis_client is not None:
                    await redis_client.aclose()

    app = GatewayApp(title="apportion", summary="Test-time compute allocation gateway", lifespan=lifespan)
    app.state.tenants = tenants
    app.state.metrics = metrics
    app.edge = Edge(app.fastapi, app.state, metrics, settings, chat_completions)
    if tenants.open:
        log.warning(
            "no tenants file: the API is open, every caller is admitted as tenant %r (give --tenants to require keys)",
            "anonymous",
        )
    app.include_router(router)
    app.include_router(dashboard_router)
    app.mount("/dashboard/static", StaticFiles(directory=STATIC), name="dashboard-static")
    _install_errors(app)
    return app


class GatewayApp(FastAPI):
    """FastAPI behind the `Edge` middleware, which sees every request first: the hot route never enters FastAPI
    (not even its per-request telemetry check, which reads the environment)."""

    edge: ASGIApp

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.edge(scope, receive, send)

    async def fastapi(self, scope: Scope, receive: Receive, send: Send) -> None:
        await super().__call__(scope, receive, send)


def _prices(settings: Settings, policy: Policy, manifest: dict[str, Any]) -> Prices:
    """The cost units: `--cost` and `--price` where given, else what the policy was trained with. Another unit
    than the model's would measure its budgets in the wrong one, so that is refused."""
    trained = manifest.get("cost_unit")
    if settings.cost is not None and trained is not None and settings.cost != trained:
        raise SettingsError(
            f"--cost {settings.cost}: the model was trained with cost in {trained}, and its budgets are in those "
            f"units; train it again with --cost {settings.cost}"
        )
    return Prices({**policy.prices_, **settings.price_table()}, settings.cost or trained or "samples")


def _starting_state(settings: Settings, policy: Policy, controller: BudgetController, prices: Prices) -> ControlState:
    """The fleet target, resolved and checked here once: the one given, else the model's own budget (brought
    within what the policy can spend, which a budget beyond its dearest plan is not)."""
    if settings.target_samples is not None and (settings.target_cost is not None or prices.label != "samples"):
        raise SettingsError(
            "--target-samples is the target when cost is plain samples; here cost is in "
            f"{prices.label}: give --target-cost"
        )
    given = settings.target_cost if settings.target_cost is not None else settings.target_samples
    if given is None:
        target = min(max(policy.budget_, controller.lowest), controller.highest)
        if target != policy.budget_:
            log.warning("the model's budget %g is out of the policy's reach; the target is %g", policy.budget_, target)
    else:
        target = given
    try:
        return controller.start(target)
    except UnreachableTarget as exc:
        flag = "target-samples" if settings.target_samples is not None else "target-cost"
        raise SettingsError(f"--{flag} (or APPORTION_{flag.upper().replace('-', '_')}): {exc}") from None


async def _ledger(settings: Settings, controller: BudgetController, start: ControlState) -> tuple[Any, Ledger]:
    local = LocalLedger(controller, start)
    if settings.redis is None:
        return None, local
    client = redis_client(settings.redis)
    shared = RedisLedger(client, controller, settings.redis_prefix)
    ledger = FallbackLedger(shared, local, fail_open=settings.redis_failure == "open")
    try:
        await shared.join(start)
    except Exception as exc:  # Redis down at start: the fallback's rule decides whether to serve
        if settings.redis_failure == "closed":
            raise LedgerUnavailable(f"Redis at {settings.redis} is unreachable: {exc}") from None
        ledger.degraded = True
    return client, ledger


def _install_errors(app: FastAPI) -> None:
    """OpenAI's error format for every failure, whoever raised it."""

    @app.exception_handler(GatewayError)
    async def gateway_error(request: Request, exc: GatewayError) -> JSONResponse:
        return error_body(exc.status, str(exc), exc.kind, exc.code, exc.param)

    @app.exception_handler(LedgerUnavailable)
    async def ledger_down(request: Request, exc: LedgerUnavailable) -> JSONResponse:
        return error_body(503, str(exc), "service_unavailable", "ledger_unavailable")

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return invalid_request(exc.errors())

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        code = "request_too_large" if exc.status_code == 413 else None
        return error_body(exc.status_code, str(exc.detail), code=code)

    @app.exception_handler(Exception)
    async def crash(request: Request, exc: Exception) -> JSONResponse:
        return error_body(500, "internal error in the gateway; see its log", "server_error", "internal_error")


def create_app_from_environment() -> FastAPI:
    """For `uvicorn --factory` and worker processes: settings from `APPORTION_*` variables alone."""
    return create_app(Settings())  # type: ignore[call-arg]
