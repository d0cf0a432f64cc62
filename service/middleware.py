"""The gateway's one middleware: pure ASGI, around every request, FastAPI included.

It does what every route needs (a request-body limit, request counts and latency by route) and sends the
hot route, `POST /v1/chat/completions`, straight to its handler: the body is validated by pydantic's JSON
parser and the tenant identified here, skipping FastAPI's per-request telemetry check, Starlette's error and
exception middlewares, the router, and FastAPI's body reading, validation and dependency injection (a py-spy
profile put those at over a quarter of the gateway's CPU per query). The handler is the very function the
FastAPI route declares, so the API schema, the other routes and the error format stay FastAPI's. What the hot
route gives up is FastAPI's native OpenTelemetry span; Prometheus metrics are recorded here for every route.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import ValidationError
from starlette.datastructures import State
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.deps import authenticate
from service.errors import GatewayError, error_body, invalid_request
from service.ledger import LedgerUnavailable
from service.metrics import Metrics
from service.protocol import ChatRequest
from service.serving import Gateway
from service.settings import Settings
from service.tenants import Tenant

log = logging.getLogger("apportion.gateway")
Handler = Callable[[ChatRequest, Gateway, Tenant, str | None], Awaitable[Response]]
CHAT_ROUTE = "/v1/chat/completions"


class TooLarge(Exception):
    """The request body passed the limit while it was read."""


class SlowBody(Exception):
    """The client stopped sending its request's body."""


def _slow_body_reply(seconds: float) -> Response:
    message = f"the request's body did not arrive within {seconds:g} s"
    return error_body(408, message, "invalid_request_error", "request_timeout")


class Edge:
    """Wraps the whole app (Starlette's own middleware stack included): see the module's docstring."""

    def __init__(self, app: ASGIApp, state: State, metrics: Metrics, settings: Settings, chat: Handler) -> None:
        self.app, self.state, self.metrics, self.chat = app, state, metrics, chat
        self.limit, self.body_timeout = settings.max_request_bytes, settings.body_timeout
        self.chat_requests: dict[int, Any] = {}  # the chat route's counters by status, labelled once
        self.chat_latency = metrics.latency.labels(CHAT_ROUTE)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        headers = dict(scope["headers"])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._too_large_reply()(scope, receive, send)
            self._count(None, 413, started)
        elif scope["path"] == CHAT_ROUTE and scope["method"] == "POST":
            reply = await self._chat(receive, headers)
            await reply(scope, receive, send)
            self._count_chat(reply.status_code, started)
        else:
            status = await self._forward(scope, receive, send)
            self._count(scope.get("route"), status, started)

    async def _forward(self, scope: Scope, receive: Receive, send: Send) -> int:
        """Any other request, through FastAPI, with its body counted as it is read; the reply's status."""
        seen, status = 0, 500

        body_done, deadline = False, self._body_deadline()

        async def counted() -> Message:
            nonlocal seen, body_done
            if body_done:  # the body is in: what follows is a wait for the client to go, with no deadline
                return await receive()
            message = await self._receive(receive, deadline)
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise TooLarge
            body_done = message["type"] != "http.request" or not message.get("more_body")
            return message

        async def recorded(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, counted, recorded)
        except TooLarge:
            await self._too_large_reply()(scope, receive, recorded)
        except SlowBody:
            await _slow_body_reply(self.body_timeout)(scope, receive, recorded)
        return status

    async def _chat(self, receive: Receive, headers: dict[bytes, bytes]) -> Response:
        """The reply to a chat completion, whatever went wrong (errors in OpenAI's format)."""
        try:
            return await self._answer_chat(receive, headers)
        except TooLarge:
            return self._too_large_reply()
        except SlowBody:
            return _slow_body_reply(self.body_timeout)
        except GatewayError as exc:
            return error_body(exc.status, str(exc), exc.kind, exc.code, exc.param)
        except LedgerUnavailable as exc:
            return error_body(503, str(exc), "service_unavailable", "ledger_unavailable")
        except Exception:
            log.exception("unexpected error answering a chat completion")
            return error_body(500, "internal error in the gateway; see its log", "server_error", "internal_error")

    async def _answer_chat(self, receive: Receive, headers: dict[bytes, bytes]) -> Response:
        body = await self._body(receive)
        kind = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        if not (kind == b"application/json" or kind.endswith(b"+json")):
            message = "the body must be JSON (Content-Type: application/json)"
            raise GatewayError(400, message, "invalid_request_error", "invalid_value")
        try:
            request = ChatRequest.model_validate_json(body)
        except ValidationError as exc:
            errors = exc.errors(include_url=False)
            if errors and errors[0]["type"] == "json_invalid":  # as FastAPI: unparseable before unauthorised
                return invalid_request(errors)
            authenticate(self.state.tenants, _text(headers.get(b"authorization")))
            return invalid_request(errors)
        who = authenticate(self.state.tenants, _text(headers.get(b"authorization")))
        return await self.chat(request, self.state.gateway, who, _text(headers.get(b"x-request-id")))

    async def _body(self, receive: Receive) -> bytes:
        parts: list[bytes] = []
        size = 0
        deadline = self._body_deadline()
        while True:
            message = await self._receive(receive, deadline)
            if message["type"] == "http.disconnect":
                raise GatewayError(400, "the client went away before sending the whole body", "invalid_request_error")
            part = message.get("body", b"")
            size += len(part)
            if size > self.limit:
                raise TooLarge
            parts.append(part)
            if not message.get("more_body"):
                return b"".join(parts)

    async def _receive(self, receive: Receive, deadline: float) -> Message:
        """The next part of a request's body, or `SlowBody` past `deadline` (the loop's clock): a client gets
        the body timeout for its whole body, however it trickles it in."""
        try:
            async with asyncio.timeout_at(deadline):
                return await receive()
        except TimeoutError:
            raise SlowBody from None

    def _body_deadline(self) -> float:
        return asyncio.get_running_loop().time() + self.body_timeout

    def _too_large_reply(self) -> Response:
        return error_body(413, f"request body over {self.limit} bytes", "invalid_request_error", "request_too_large")

    def _count(self, route: Any, status: int, started: float) -> None:
        """By route template, not raw path: unknown paths would explode the labels."""
        name = getattr(route, "path", "unmatched")
        self.metrics.requests.labels(name, str(status)).inc()
        self.metrics.latency.labels(name).observe(time.perf_counter() - started)

    def _count_chat(self, status: int, started: float) -> None:
        counter = self.chat_requests.get(status)
        if counter is None:
            counter = self.chat_requests[status] = self.metrics.requests.labels(CHAT_ROUTE, str(status))
        counter.inc()
        self.chat_latency.observe(time.perf_counter() - started)


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode("latin-1")
