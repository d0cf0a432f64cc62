"""The gateway's FastAPI app, built by a factory: `create_app(settings)` (uvicorn: `--factory`).

Nothing is created at import time. The policy is loaded in the factory, so a bad model stops start-up with
one clear line; connections (aiohttp, Redis) open in the lifespan and close with it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from allocator.base import Policy
from allocator.control import BudgetController
from files.models import load_model
from service.backends import BackendPool
from service.dashboard import STATIC, dashboard_router
from service.ledger import FallbackLedger, Ledger, LedgerUnavailable, LocalLedger, RedisLedger, redis_client
from service.metrics import Metrics
from service.routes import router
from service.serving import Gateway, GatewayError
from service.settings import Settings, SettingsError
from service.tenants import Tenants

_STATUS_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    403: "permission_denied",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
}


def create_app(settings: Settings, *, policy: Policy | None = None) -> FastAPI:
    """The gateway for `settings`; `policy` replaces the model directory (tests hand one in)."""
    if policy is None:
        if settings.model is None:
            raise SettingsError("--model (or APPORTION_MODEL): a policy from apportion train is required")
        policy, _ = load_model(settings.model)
    tenants = Tenants.read(settings.tenants, settings.admin_key.get_secret_value() if settings.admin_key else None)
    lowest, highest = policy.spend_range()
    controller = BudgetController(lowest, max(highest, lowest), settings.horizon)
    target = settings.target_samples if settings.target_samples is not None else policy.budget_
    controller.start(target)
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        connector = aiohttp.TCPConnector(limit=1024, limit_per_host=0, keepalive_timeout=30)
        timeout = aiohttp.ClientTimeout(total=settings.backend_timeout, connect=min(5.0, settings.backend_timeout))
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as client:
            pool = BackendPool(
                settings.backends,
                client,
                model=settings.backend_model,
                fanout=settings.fanout,
                retries=settings.retries,
            )
            redis_client, ledger = await _ledger(settings, controller, target)
            app.state.redis = redis_client
            gateway = Gateway(policy, pool, ledger, controller, settings, metrics)
            gateway.known_models = await pool.models()
            app.state.gateway = gateway
            watcher = asyncio.create_task(gateway.watch())
            try:
                yield
            finally:
                watcher.cancel()
                if redis_client is not None:
                    await redis_client.aclose()

    app = FastAPI(title="apportion", summary="Test-time compute allocation gateway", lifespan=lifespan)
    app.state.tenants = tenants
    app.state.metrics = metrics
    app.include_router(router)
    app.include_router(dashboard_router)
    app.mount("/dashboard/static", StaticFiles(directory=STATIC), name="dashboard-static")
    _install_errors(app)
    app.add_middleware(RequestMetrics, metrics=metrics)
    app.add_middleware(BodyLimit, limit=settings.max_request_bytes)
    return app


async def _ledger(settings: Settings, controller: BudgetController, target: float) -> tuple[Any, Ledger]:
    local = LocalLedger(controller, target)
    if settings.redis is None:
        return None, local
    client = redis_client(settings.redis)
    shared = RedisLedger(client, controller, settings.redis_prefix)
    ledger = FallbackLedger(shared, local, fail_open=settings.redis_failure == "open")
    try:
        await shared.start(target)
    except Exception as exc:  # Redis down at start: the fallback's rule decides whether to serve
        if settings.redis_failure == "closed":
            raise LedgerUnavailable(f"Redis at {settings.redis} is unreachable: {exc}") from None
        ledger.degraded = True
    return client, ledger


def error_body(
    status: int, message: str, kind: str | None = None, code: str | None = None, param: str | None = None
) -> JSONResponse:
    kind = kind or _STATUS_TYPES.get(status, "server_error")
    body = {"error": {"message": message, "type": kind, "param": param, "code": code}}
    return JSONResponse(body, status_code=status)


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
        first = exc.errors()[0]
        where = [str(part) for part in first.get("loc", ()) if part != "body"]
        param = ".".join(where) or None
        return error_body(
            400,
            f"{param + ': ' if param else ''}{first.get('msg', 'invalid request')}",
            "invalid_request_error",
            "invalid_value",
            param,
        )

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        code = "request_too_large" if exc.status_code == 413 else None
        return error_body(exc.status_code, str(exc.detail), code=code)

    @app.exception_handler(Exception)
    async def crash(request: Request, exc: Exception) -> JSONResponse:
        return error_body(500, "internal error in the gateway; see its log", "server_error", "internal_error")


class RequestMetrics:
    """Counts and times every request by route template (not raw path: unknown paths would explode labels)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), 500

        async def record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record)
        finally:
            route = scope.get("route")
            name = getattr(route, "path", "unmatched")
            self.metrics.requests.labels(name, str(status)).inc()
            self.metrics.latency.labels(name).observe(time.perf_counter() - started)


class BodyLimit:
    """Refuses request bodies over `limit` bytes with 413, whether or not they declare their length."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await _too_large(self.limit, scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise _TooLarge()
            return message

        try:
            await self.app(scope, counted, send)
        except _TooLarge:
            await _too_large(self.limit, scope, receive, send)


class _TooLarge(HTTPException):
    """Raised while the body is read; FastAPI passes HTTP exceptions through its body parsing untouched."""

    def __init__(self) -> None:
        super().__init__(413, "request body too large")


async def _too_large(limit: int, scope: Scope, receive: Receive, send: Send) -> None:
    response = error_body(413, f"request body over {limit} bytes", "invalid_request_error", "request_too_large")
    await response(scope, receive, send)


def create_app_from_environment() -> FastAPI:
    """For `uvicorn --factory` and worker processes: settings from `APPORTION_*` variables alone."""
    return create_app(Settings())  # type: ignore[call-arg]
