"""A chat completion, from a validated request to the bytes of its reply: every parameter honoured or refused by
name, the request id made idempotent per tenant, the samples drawn and voted on, the reply built."""

from __future__ import annotations

import time
from typing import Any

from service.backends import Sampling
from service.errors import GatewayError
from service.idempotency import answer_once, body_fingerprint, request_key
from service.ids import new_id
from service.protocol import (
    PASSED_THROUGH,
    REQUEST_ID_LENGTH,
    ChatRequest,
    ChatResponse,
    Choice,
    Decision,
    ModelUsage,
    ReplyMessage,
    Usage,
)
from service.serving import Answered, Gateway
from service.tenants import Tenant

_TOOLS = "tool and function calls are not supported: apportion votes on the final answers of plain completions"
_LOGPROBS = "logprobs are not supported: the votes are on extracted answers, which do not use them"
REFUSED = {
    "tools": _TOOLS,
    "tool_choice": _TOOLS,
    "parallel_tool_calls": _TOOLS,
    "functions": _TOOLS,
    "function_call": _TOOLS,
    "logprobs": _LOGPROBS,
    "top_logprobs": _LOGPROBS,
    "audio": "audio output is not supported",
    "modalities": "only text output is supported",
    "prediction": "predicted outputs are not supported",
    "reasoning_effort": "reasoning_effort is not passed on: engines serving open models do not read it alike",
    "store": "stored completions are not supported",
    "metadata": "metadata goes with stored completions, which are not supported",
    "service_tier": "there are no service tiers: every query is served at the fleet's budget",
    "web_search_options": "web search is not supported",
}
"""Parameters of OpenAI's chat API that are refused with a 400 naming them, and why (the README has the table
of every parameter)."""


async def chat_reply(body: ChatRequest, gw: Gateway, who: Tenant, header_id: str | None) -> tuple[bytes, bool]:
    """The reply's bytes, and whether they are a stored reply to an exact replay of the request's id."""
    _check(body, gw)
    request_id = body.request_id or header_id or None
    if request_id is None:
        return await _answer(body, gw, who, None), False
    if len(request_id) > REQUEST_ID_LENGTH:
        message = f"x-request-id: at most {REQUEST_ID_LENGTH} characters"
        raise GatewayError(400, message, "invalid_request_error", "invalid_value", "x-request-id")
    key = request_key(who.name, request_id)
    fingerprint = body_fingerprint(body.model_dump_json(exclude={"request_id"}))
    return await answer_once(
        gw.replies, key, fingerprint, lambda: _answer(body, gw, who, key), gw.settings.request_timeout
    )


def _check(body: ChatRequest, gw: Gateway) -> None:
    for name in body.model_extra or {}:
        reason = REFUSED.get(name, f"{name} is not a parameter apportion knows")
        raise GatewayError(400, f"{name}: {reason}", "invalid_request_error", "unsupported_parameter", name)
    if body.stream_options is not None and not body.stream:
        message = "stream_options is only allowed with stream: true"
        raise GatewayError(400, message, "invalid_request_error", "invalid_value", "stream_options")
    if body.n not in (None, 1):
        message = "n must be 1: apportion chooses how many samples to draw and returns one answer"
        raise GatewayError(400, message, "invalid_request_error", "unsupported_value", "n")
    if body.model not in (gw.settings.served_model, *gw.known_models):
        message = f"model {body.model!r} does not exist; GET /v1/models lists what this gateway serves"
        raise GatewayError(404, message, "invalid_request_error", "model_not_found", "model")


async def _answer(body: ChatRequest, gw: Gateway, who: Tenant, charge_id: str | None) -> bytes:
    settings = gw.settings
    sampling = Sampling(
        temperature=settings.temperature if body.temperature is None else body.temperature,
        top_p=settings.top_p if body.top_p is None else body.top_p,
        max_tokens=body.max_completion_tokens or body.max_tokens or settings.max_tokens,
        seed=body.seed,
        stop=body.stop,
        extra={name: getattr(body, name) for name in PASSED_THROUGH if getattr(body, name) is not None},
    )
    messages = [message.model_dump(exclude_none=True) for message in body.messages]
    greedy = sampling.temperature == 0  # every sample would be the same: one is enough (and vLLM refuses n > 1)
    direct = body.model if body.model != settings.served_model else None  # a backend model, named by the client
    done = await gw.answer(
        messages,
        who,
        sampling=sampling,
        max_samples=1 if greedy else body.max_samples,
        budget_hint=body.budget,
        charge_id=charge_id,
        model=direct,
    )
    reply = ChatResponse(
        id=f"chatcmpl-{new_id()}",
        created=int(time.time()),
        model=body.model,
        choices=[Choice(message=ReplyMessage(content=winning_text(done)), finish_reason=_finish(done))],
        usage=Usage(
            prompt_tokens=done.usage.prompt_tokens,
            completion_tokens=done.usage.completion_tokens,
            total_tokens=done.usage.prompt_tokens + done.usage.completion_tokens,
        ),
        apportion=decision(gw, done),
    )
    return reply.model_dump_json(by_alias=True).encode()


def decision(gw: Gateway, done: Answered) -> Decision:
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
        cost=done.cost,
        models={
            name: ModelUsage(samples=use.samples, tokens=use.tokens, cost=use.cost) for name, use in done.models.items()
        },
    )


def winning_text(done: Answered) -> str:
    return done.texts[done.verdict.sample] if done.texts else ""


def _finish(done: Answered) -> str:
    return done.finish_reasons[done.verdict.sample] if done.finish_reasons else "stop"


def replay_headers(replayed: bool) -> dict[str, Any]:
    return {"apportion-replayed": "true"} if replayed else {}
