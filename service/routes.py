"""Thin routes: parse the request, find the tenant, call the `Gateway` on `app.state`, shape the reply."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from service.backends import Sampling
from service.chat import chat_reply, replay_headers, winning_text
from service.deps import GatewayDep, TenantDep, authenticate, budget_view
from service.errors import GatewayError
from service.ledger import UnreachableTarget
from service.protocol import (
    BudgetView,
    ChatRequest,
    ChatResponse,
    ErrorResponse,
    ModelCard,
    ModelList,
    SolveRequest,
    SolveResponse,
    TargetChange,
)
from service.streaming import stream_reply
from service.tenants import Tenants

ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse} for status in (400, 401, 403, 404, 413, 429, 502, 503, 504)
}
router = APIRouter(responses=ERRORS)


class Validated(Response):
    """A reply already built from a validated model: FastAPI would otherwise validate it a second time."""

    media_type = "application/json"

    def __init__(self, model: BaseModel) -> None:
        super().__init__(model.model_dump_json(by_alias=True))


@router.post("/v1/chat/completions", response_model=ChatResponse)
async def chat_completions(
    body: ChatRequest, gw: GatewayDep, who: TenantDep, x_request_id: Annotated[str | None, Header()] = None
) -> Response:
    reply, replayed = await chat_reply(body, gw, who, x_request_id)
    if body.stream:
        include_usage = body.stream_options is not None and body.stream_options.include_usage
        return stream_reply(reply, include_usage, replay_headers(replayed))
    return Response(reply, media_type="application/json", headers=replay_headers(replayed))


@router.post("/v1/solve", response_model=SolveResponse)
async def solve(body: SolveRequest, gw: GatewayDep, who: TenantDep) -> Validated:
    settings = gw.settings
    sampling = Sampling(settings.temperature, settings.top_p, settings.max_tokens)
    done = await gw.answer(
        [{"role": "user", "content": body.question}], who, sampling=sampling, max_samples=body.max_samples
    )
    v = done.verdict
    reply = SolveResponse(
        answer=v.answer, samples=len(done.texts), votes=v.votes, agreement=v.agreement, text=winning_text(done)
    )
    return Validated(reply)


@router.get("/v1/models")
async def models(gw: GatewayDep) -> ModelList:
    """The gateway's own model first (the policy chooses), then every backend model (asked for by name, one
    sample, no policy)."""
    names = [gw.settings.served_model, *(m for m in gw.known_models if m != gw.settings.served_model)]
    return ModelList(
        data=[
            ModelCard(id=name, created=gw.started, owned_by="apportion" if i == 0 else "backend")
            for i, name in enumerate(names)
        ]
    )


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request, gw: GatewayDep) -> JSONResponse:
    backends = await gw.health()
    models = gw.models_ready(backends)
    checks: dict[str, Any] = {"models": {m: "up" if up else "down" for m, up in models.items()}, "backends": backends}
    ready = all(models.values())
    checks["ledger"] = gw.ledger.health()
    redis = request.app.state.redis
    if redis is not None:
        try:
            checks["redis"] = "up" if await redis.ping() else "down"
        except Exception as exc:  # any failure to answer a ping means not ready
            checks["redis"] = f"down ({type(exc).__name__})"
        ready = ready and (checks["redis"] == "up" or gw.settings.redis_failure == "open")
    return JSONResponse({"ready": ready, **checks}, status_code=200 if ready else 503)


@router.get("/metrics")
async def metrics(request: Request, gw: GatewayDep, authorization: Annotated[str | None, Header()] = None) -> Response:
    """Prometheus text. It names every tenant and its spend: with tenants configured, only the admin key reads
    it, unless `--public-metrics`."""
    tenants: Tenants = request.app.state.tenants
    if not (gw.settings.public_metrics or tenants.open or authenticate(tenants, authorization).admin):
        message = "the metrics name every tenant: they need the admin key (or start the gateway with --public-metrics)"
        raise GatewayError(403, message, "permission_denied", "admin_required")
    await gw.publish()
    return Response(gw.metrics.exposition(), media_type="text/plain; version=0.0.4; charset=utf-8")


@router.get("/v1/budget")
async def budget(request: Request, gw: GatewayDep, who: TenantDep) -> BudgetView:
    return budget_view(gw, request.app.state.tenants, await gw.publish(), who)


@router.put("/v1/budget/target")
async def set_target(request: Request, body: TargetChange, gw: GatewayDep, who: TenantDep) -> BudgetView:
    if not who.admin:
        raise GatewayError(403, "only the admin key may change the fleet target", "permission_denied", "admin_required")
    try:
        await gw.set_target(body.target)
    except UnreachableTarget as exc:
        raise GatewayError(400, str(exc), "invalid_request_error", "target_out_of_range", "target") from None
    return budget_view(gw, request.app.state.tenants, await gw.publish(), who)
