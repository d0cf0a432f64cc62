"""Thin routes: parse the request, find the tenant, call the `Gateway` on `app.state`, shape the reply."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from service.backends import Sampling
from service.deps import GatewayDep, TenantDep, budget_view
from service.errors import GatewayError
from service.ledger import UnreachableTarget
from service.protocol import (
    BudgetView,
    ChatRequest,
    ChatResponse,
    Choice,
    Decision,
    ErrorResponse,
    ModelCard,
    ModelList,
    ReplyMessage,
    SolveRequest,
    SolveResponse,
    TargetChange,
    Usage,
)
from service.serving import Answered, Gateway, new_id

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
) -> Validated:
    if body.stream:
        raise GatewayError(
            400,
            "stream is not supported: apportion must see every sample before it answers",
            "invalid_request_error",
            "stream_unsupported",
            "stream",
        )
    if body.n not in (None, 1):
        raise GatewayError(
            400,
            "n must be 1: apportion chooses how many samples to draw and returns one answer",
            "invalid_request_error",
            "unsupported_value",
            "n",
        )
    if body.model not in (gw.settings.served_model, *gw.known_models):
        raise GatewayError(
            404,
            f"model {body.model!r} does not exist; GET /v1/models lists what this gateway serves",
            "invalid_request_error",
            "model_not_found",
            "model",
        )
    settings = gw.settings
    sampling = Sampling(
        temperature=settings.temperature if body.temperature is None else body.temperature,
        top_p=settings.top_p if body.top_p is None else body.top_p,
        max_tokens=body.max_completion_tokens or body.max_tokens or settings.max_tokens,
        seed=body.seed,
        stop=body.stop,
    )
    messages = [message.model_dump(exclude_none=True) for message in body.messages]
    greedy = sampling.temperature == 0  # every sample would be the same: one is enough (and vLLM refuses n > 1)
    done = await gw.answer(
        messages,
        who,
        sampling=sampling,
        max_samples=1 if greedy else body.max_samples,
        budget_hint=body.budget,
        request_id=body.request_id or x_request_id,
    )
    reply = ChatResponse(
        id=f"chatcmpl-{new_id()}",
        created=int(time.time()),
        model=body.model,
        choices=[Choice(message=ReplyMessage(content=_winning_text(done)), finish_reason=_finish(done))],
        usage=Usage(
            prompt_tokens=done.usage.prompt_tokens,
            completion_tokens=done.usage.completion_tokens,
            total_tokens=done.usage.prompt_tokens + done.usage.completion_tokens,
        ),
        apportion=_decision(gw, done),
    )
    return Validated(reply)


@router.post("/v1/solve", response_model=SolveResponse)
async def solve(body: SolveRequest, gw: GatewayDep, who: TenantDep) -> Validated:
    settings = gw.settings
    sampling = Sampling(settings.temperature, settings.top_p, settings.max_tokens)
    done = await gw.answer(
        [{"role": "user", "content": body.question}], who, sampling=sampling, max_samples=body.max_samples
    )
    v = done.verdict
    reply = SolveResponse(
        answer=v.answer, samples=len(done.texts), votes=v.votes, agreement=v.agreement, text=_winning_text(done)
    )
    return Validated(reply)


@router.get("/v1/models")
async def models(gw: GatewayDep) -> ModelList:
    return ModelList(data=[ModelCard(id=gw.settings.served_model, created=gw.started)])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request, gw: GatewayDep) -> JSONResponse:
    backends = await gw.pool.health()
    checks: dict[str, Any] = {"backends": backends}
    ready = any(state.startswith("up") for state in backends.values())
    redis = request.app.state.redis
    if redis is not None:
        try:
            checks["redis"] = "up" if await redis.ping() else "down"
        except Exception as exc:  # any failure to answer a ping means not ready
            checks["redis"] = f"down ({type(exc).__name__})"
        ready = ready and (checks["redis"] == "up" or gw.settings.redis_failure == "open")
    return JSONResponse({"ready": ready, **checks}, status_code=200 if ready else 503)


@router.get("/metrics")
async def metrics(gw: GatewayDep) -> Response:
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


def _decision(gw: Gateway, done: Answered) -> Decision:
    v = done.verdict
    return Decision(
        answer=v.answer,
        samples=len(done.texts),
        votes=v.votes,
        agreement=v.agreement,
        policy=gw.policy.name,
        lam=done.lam,
        budget=done.budget,
        rounds=done.rounds,
        failed_samples=done.usage.failed,
        degraded=done.degraded,
    )


def _winning_text(done: Answered) -> str:
    return done.texts[done.verdict.sample] if done.texts else ""


def _finish(done: Answered) -> str:
    return done.finish_reasons[done.verdict.sample] if done.finish_reasons else "stop"
