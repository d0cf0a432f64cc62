"""OpenAI-compatible backends (vLLM, llama.cpp, the simulator) behind one async pool.

A round of k samples is one request with `n = k` where the engine honours `n` (vLLM: the children share the
prompt's KV cache), or k requests with `n = 1` where it does not (llama.cpp answers one choice whatever `n`
says; the pool notices and remembers). Requests go to the backend with the fewest outstanding requests;
failures are retried on another backend with backoff, and a circuit breaker keeps a failing one out.
"""

from __future__ import annotations

import asyncio
import functools
import json
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import aiohttp
from pydantic_core import from_json, to_json
from yarl import URL

from service.breaker import CircuitBreaker

Fanout = Literal["auto", "n", "parallel"]
_JSON = {"content-type": "application/json"}
ErrorKind = Literal[
    "connect", "timeout", "status", "malformed", "disconnected", "refused", "unavailable", "rejected", "too_large"
]


class BackendError(Exception):
    """A backend could not give samples. `kind` feeds the metrics; `status` is the backend's HTTP status."""

    def __init__(self, kind: ErrorKind, message: str, status: int | None = None, out_of_time: bool = False) -> None:
        super().__init__(message)
        self.kind = kind
        self.status = status
        self.out_of_time = out_of_time
        """The query's deadline passed (no retry can help)."""


@dataclass(frozen=True)
class Sampling:
    """Explicit sampling parameters: vLLM would otherwise apply the model's own generation config."""

    temperature: float
    top_p: float
    max_tokens: int
    seed: int | None = None
    stop: str | list[str] | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    """Other request parameters the engine honours, sent as they are (`user`, ...)."""


@dataclass
class Draw:
    """The samples one round produced, and what the ones that failed cost us."""

    texts: list[str] = field(default_factory=list)
    finish_reasons: list[str] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)
    backend_seconds: float = 0.0

    def add(self, other: Draw) -> None:
        self.texts += other.texts
        self.finish_reasons += other.finish_reasons
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        self.failed += other.failed
        self.errors += other.errors
        self.backend_seconds = max(self.backend_seconds, other.backend_seconds)


@dataclass
class Backend:
    url: str
    breaker: CircuitBreaker
    fanout: Fanout
    outstanding: int = 0
    model: str | None = None
    last_success: float = float("-inf")
    """When it last answered a request (monotonic)."""

    @functools.cached_property
    def chat_url(self) -> URL:
        """Parsed once: aiohttp would parse a string on every request."""
        return URL(f"{self.url}/chat/completions")


class BackendPool:
    """Draws samples from several backends. `client` is shared (one connection pool for all of them).

    aiohttp rather than httpx: measured in `bench/gateway.py`, httpx's pool cost the gateway over 1 ms of CPU
    per request at 32 in flight, which capped one process at about 270 queries per second.
    """

    def __init__(
        self,
        urls: Sequence[str],
        client: aiohttp.ClientSession,
        *,
        model: str | None = None,
        models: Sequence[str | None] | None = None,
        fanout: Fanout = "auto",
        retries: int = 2,
        backoff: float = 0.05,
        breaker_threshold: int = 5,
        breaker_cooldown: float = 5.0,
        max_reply_bytes: int = 1_048_576,
    ) -> None:
        self.client = client
        self.retries = retries
        self.backoff = backoff
        self.max_reply_bytes = max_reply_bytes
        """Per sample asked for: a reply larger than this times n is refused before it fills memory."""
        # the model name each backend is sent (None: the first it lists, asked by `models()`)
        names = list(models) if models is not None else [model] * len(urls)
        self.backends = [
            Backend(url.rstrip("/"), CircuitBreaker(breaker_threshold, breaker_cooldown), fanout, model=name)
            for url, name in zip(urls, names, strict=True)
        ]
        self.errors: dict[ErrorKind, int] = {}

    async def draw(
        self, messages: list[dict[str, Any]], k: int, sampling: Sampling, deadline: float | None = None
    ) -> Draw:
        """k samples for `messages`, before `deadline` (the event loop's clock) if one is given. Some may fail
        (`Draw.failed`); raises `BackendError` only if all do."""
        draw = Draw()
        try:
            backend = self._pick(set())
            if backend is not None and backend.fanout != "parallel":
                draw.add(await self._request(messages, k, sampling, backend, deadline))
            missing = k - len(draw.texts) - draw.failed
            if missing > 0:  # the engine ignores n, or fan-out was configured: one request per sample
                offset = len(draw.texts)
                seeds = [None if sampling.seed is None else sampling.seed + offset + i for i in range(missing)]
                single = [self._single(messages, sampling, seed, deadline) for seed in seeds]
                for part in await asyncio.gather(*single):
                    draw.add(part)
        except BackendError as exc:
            if not draw.texts:
                raise
            draw.failed = k - len(draw.texts)
            draw.errors.append(str(exc))
        if not draw.texts:
            raise BackendError("unavailable", "; ".join(draw.errors) or "no backend gave a sample")
        return draw

    async def _single(
        self, messages: list[dict[str, Any]], sampling: Sampling, seed: int | None, deadline: float | None
    ) -> Draw:
        one = replace(sampling, seed=seed)
        try:
            return await self._request(messages, 1, one, None, deadline)
        except BackendError as exc:
            return Draw(failed=1, errors=[str(exc)])

    async def _request(
        self,
        messages: list[dict[str, Any]],
        n: int,
        sampling: Sampling,
        first: Backend | None,
        deadline: float | None,
    ) -> Draw:
        """One request, retried on other backends (with backoff) when a backend fails.

        A failure counts against a backend's breaker only when the backend is at fault: when another attempt
        at the same request succeeded, or when the backend answered nobody else while this request failed
        everywhere. A request that fails on every backend while they serve others is poison (its content,
        not their health): it gets a 502 of its own and costs no backend anything.
        """
        started = time.monotonic()
        failed: list[Backend] = []
        tried: set[str] = set()
        last: BackendError | None = None
        for attempt in range(self.retries + 1):
            backend = first if attempt == 0 and first is not None else self._pick(tried)
            if backend is None:
                backend = self._pick(set()) if tried else None
            if backend is None:
                break
            tried.add(backend.url)
            try:
                draw = await self._call(backend, messages, n, sampling, deadline)
            except BackendError as exc:
                last = exc
                self.errors[exc.kind] = self.errors.get(exc.kind, 0) + 1
                if exc.kind == "refused" or exc.out_of_time:
                    raise
                if exc.kind != "connect":  # refused connections were counted at once: they follow the backend
                    failed.append(backend)
                pause = self.backoff * 2**attempt * (0.5 + random.random())
                await asyncio.sleep(pause if deadline is None else max(min(pause, deadline - _now()), 0.0))
                continue
            for other in failed:
                if other is not backend:
                    other.breaker.failed()
            return draw
        if last is None:
            raise BackendError("unavailable", "every backend's circuit breaker is open")
        blamed = {id(b): b for b in failed if b.last_success <= started}
        for backend in blamed.values():
            backend.breaker.failed()
        if failed and not blamed:
            raise BackendError("rejected", str(last))
        raise last

    def _pick(self, exclude: set[str]) -> Backend | None:
        """The closed backend with the fewest outstanding requests; else one whose breaker lets a probe through."""
        candidates = sorted((b for b in self.backends if b.url not in exclude), key=lambda b: b.outstanding)
        for backend in candidates:
            if backend.breaker.state == "closed":
                return backend
        return next((b for b in candidates if b.breaker.allows()), None)

    async def _call(
        self, backend: Backend, messages: list[dict[str, Any]], n: int, sampling: Sampling, deadline: float | None
    ) -> Draw:
        """One backend request. Only a refused connection is counted against the backend here: whether any
        other failure is the backend's or the request's is for `_request` to tell."""
        body: dict[str, Any] = {
            "model": backend.model or "default",
            "messages": messages,
            "n": n,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "max_tokens": sampling.max_tokens,
        }
        if sampling.seed is not None:
            body["seed"] = sampling.seed
        if sampling.stop is not None:
            body["stop"] = sampling.stop
        body.update(sampling.extra)
        timeout, out_of_time = None, False  # None: the session's, a backend's own limit
        if deadline is not None:
            remaining = deadline - _now()
            if remaining <= 0:
                raise BackendError("timeout", "the query ran out of time", out_of_time=True)
            if remaining < (self.client.timeout.total or float("inf")):
                timeout, out_of_time = aiohttp.ClientTimeout(total=remaining), True
        backend.outstanding += 1
        started = time.perf_counter()
        try:
            post = self.client.post(backend.chat_url, data=to_json(body), headers=_JSON, timeout=timeout)
            async with post as response:
                status, payload = response.status, await _read(response, self.max_reply_bytes * n + 4096)
        except TimeoutError:
            raise BackendError("timeout", f"{backend.url} timed out", out_of_time=out_of_time) from None
        except aiohttp.ClientConnectorError as exc:
            backend.breaker.failed()
            raise BackendError("connect", f"{backend.url} unreachable ({type(exc).__name__}: {exc})") from None
        except aiohttp.ClientError as exc:  # it accepted the request, then hung up or sent a broken reply
            message = f"{backend.url} broke off its reply ({type(exc).__name__}: {exc})"
            raise BackendError("disconnected", message) from None
        finally:
            backend.outstanding -= 1
        seconds = time.perf_counter() - started
        if 400 <= status < 500 and status not in (408, 429):
            backend.breaker.succeeded()  # the backend is healthy; the request is what it refused
            raise BackendError("refused", f"backend refused the request: {_message(payload)}", status)
        if status != 200:
            raise BackendError("status", f"{backend.url} answered {status}: {_message(payload)}")
        try:
            draw = _parse(from_json(payload), seconds, n)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise BackendError("malformed", f"{backend.url} sent a malformed reply ({exc})") from None
        backend.breaker.succeeded()
        backend.last_success = time.monotonic()
        if backend.fanout == "auto" and n > 1:
            backend.fanout = "parallel" if len(draw.texts) < n else "n"
        return draw

    async def name_backends(self) -> dict[str, list[str]]:
        """Ask each backend that has no model name yet what it serves and name it after the first; by URL, the
        model ids each of those listed (backends that could not be asked are left out)."""
        found: dict[str, list[str]] = {}
        for backend in self.backends:
            if backend.model is not None:
                continue
            try:
                async with self.client.get(f"{backend.url}/models") as response:
                    ids = [str(card["id"]) for card in json.loads(await response.read())["data"]]
            except (aiohttp.ClientError, TimeoutError, ValueError, KeyError, TypeError):
                continue
            backend.model = ids[0] if ids else None
            found[backend.url] = ids
        return found

    async def health(self, backends: Sequence[Backend] | None = None) -> dict[str, str]:
        """Each backend's reachability and breaker state, for `/readyz` and the dashboard."""
        report: dict[str, str] = {}
        for backend in self.backends if backends is None else backends:
            try:
                async with self.client.get(f"{backend.url}/models", timeout=aiohttp.ClientTimeout(2.0)) as response:
                    reachable = response.status == 200
            except (aiohttp.ClientError, TimeoutError):
                reachable = False
            report[backend.url] = f"{'up' if reachable else 'down'}, breaker {backend.breaker.state}"
        return report


def _now() -> float:
    return asyncio.get_running_loop().time()


def _parse(reply: Any, seconds: float, n: int) -> Draw:
    """The samples of a chat reply: at most the `n` asked for, however many it holds."""
    choices = reply["choices"][:n]
    texts = [str(choice["message"]["content"] or "") for choice in choices]
    usage = reply.get("usage") or {}
    return Draw(
        texts=texts,
        finish_reasons=[str(choice.get("finish_reason") or "stop") for choice in choices],
        prompt_tokens=_tokens(usage, "prompt_tokens"),
        completion_tokens=_tokens(usage, "completion_tokens"),
        backend_seconds=seconds,
    )


def _tokens(usage: Any, key: str) -> int:
    value = usage.get(key) or 0
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**53:
        raise ValueError(f"usage.{key} is not a count of tokens: {str(value)[:40]}")
    return value


async def _read(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """The reply's body, refused past `limit` bytes (before reading it, when its length is declared)."""
    declared = response.content_length
    if declared is not None and declared > limit:
        raise BackendError("too_large", f"the backend's reply of {declared} bytes is over the limit of {limit}")
    body = await response.content.read(limit + 1)
    while len(body) <= limit and not response.content.at_eof():
        body += await response.content.read(limit + 1 - len(body))
    if len(body) > limit:
        raise BackendError("too_large", f"the backend's reply is over the limit of {limit} bytes")
    return body


def _message(payload: bytes) -> str:
    """The error message an OpenAI-style error body carries, or the body's start."""
    try:
        return str(json.loads(payload)["error"]["message"])[:300]
    except (ValueError, KeyError, TypeError):
        return payload[:300].decode("utf-8", "replace") or "no body"
