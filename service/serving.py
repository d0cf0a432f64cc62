"""One query through the gateway: operating budget from the ledger, rounds of samples as the policy asks,
answers extracted and voted on, the spend charged. Routes (`service.routes`) only translate HTTP to this."""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import re
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from allocator.base import Policy
from answers.extract import extract_answer
from answers.votes import Verdict, aggregate
from service.backends import BackendError, BackendPool, Draw, Sampling
from service.errors import GatewayError
from service.history import History, Served
from service.ledger import BudgetController, Ledger, LedgerUnavailable, LedgerView
from service.metrics import Metrics
from service.settings import Settings
from service.tenants import Tenant

log = logging.getLogger("apportion.gateway")
_ids = itertools.count()
_id_prefix = secrets.token_hex(8)


def new_id() -> str:
    """A unique id (64 random bits per process, then a counter), without a random draw per request."""
    return f"{_id_prefix}{next(_ids):x}"


def _new_prefix() -> None:
    global _id_prefix
    _id_prefix = secrets.token_hex(8)


os.register_at_fork(after_in_child=_new_prefix)  # a forked worker must not repeat its parent's ids


@dataclass
class Answered:
    """What the gateway did for one query."""

    verdict: Verdict
    texts: list[str]
    finish_reasons: list[str]
    usage: Draw
    budget: float
    lam: float | None
    rounds: int
    degraded: list[str] = field(default_factory=list)
    backend_seconds: float = 0.0


class Gateway:
    """The serving logic; it only sees the policy, a backend pool and a ledger handed to it."""

    def __init__(
        self,
        policy: Policy,
        pool: BackendPool,
        ledger: Ledger,
        controller: BudgetController,
        settings: Settings,
        metrics: Metrics,
    ) -> None:
        self.policy = policy
        self.pool = pool
        self.ledger = ledger
        self.controller = controller
        self.settings = settings
        self.metrics = metrics
        self.pattern = re.compile(settings.answer_pattern) if settings.answer_pattern else None
        self.history = History()
        self.backend_health: dict[str, str] = {}
        self.known_models: list[str] = []
        """The backends' own model ids, which clients may ask for too."""
        self.started = int(time.time())

    @property
    def degraded(self) -> bool:
        """Serving from a local ledger because the shared one is unreachable."""
        return bool(getattr(self.ledger, "degraded", False))

    async def set_target(self, target: float) -> LedgerView:
        """A new fleet target (checked by the controller: `UnreachableTarget` when out of the policy's reach)."""
        return await self.ledger.restart(self.controller.start(target))

    def operating_budget(self, view: LedgerView) -> float:
        return self._budget(view, None)

    async def answer(
        self,
        messages: list[dict[str, Any]],
        tenant: Tenant,
        *,
        sampling: Sampling,
        max_samples: int | None = None,
        budget_hint: float | None = None,
        request_id: str | None = None,
    ) -> Answered:
        """Draw samples in rounds until the policy stops, vote, and charge the samples drawn to `tenant`."""
        started = time.perf_counter()
        view = await self.ledger.view(tenant.name)
        self._check_quota(view, tenant)
        budget = self._budget(view, budget_hint)
        lam = self.policy.lam(budget) if self.policy.movable else self.policy.lam()
        text = _question_text(messages)
        cap = min(max_samples or self.settings.max_samples, self.settings.max_samples)
        answers: list[str | None] = []
        total, degraded, rounds, backend_seconds = Draw(), [], 0, 0.0
        deadline = asyncio.get_running_loop().time() + self.settings.request_timeout
        while (k := min(self.policy.next_samples(text, answers, budget), cap - len(answers))) > 0:
            seed = None if sampling.seed is None else sampling.seed + len(answers) + total.failed
            round_sampling = Sampling(sampling.temperature, sampling.top_p, sampling.max_tokens, seed, sampling.stop)
            try:
                draw = await self.pool.draw(messages, k, round_sampling, deadline)
            except BackendError as exc:
                kind = exc.kind
                self.metrics.backend_errors.labels(kind).inc()
                if not answers:
                    raise _backend_failure(exc, self.settings.request_timeout) from None
                degraded.append(f"round {rounds + 1} failed ({kind}); answered from {len(answers)} samples")
                break
            rounds += 1
            total.add(draw)
            backend_seconds += draw.backend_seconds
            if draw.failed:
                self.metrics.backend_errors.labels("partial").inc(draw.failed)
                degraded.append(f"{draw.failed} of {k} samples failed; answered from the rest")
            answers += [extract_answer(t, self.pattern) for t in draw.texts]
            if draw.failed and not self.policy.adaptive:
                break
        verdict = aggregate(answers)
        charged = await self.ledger.charge(request_id or new_id(), tenant.name, len(answers))
        if not charged:
            degraded.append("request id already charged: this repeat was not charged again")
        seconds = time.perf_counter() - started
        self._observe(len(answers), verdict, tenant, seconds, backend_seconds)
        self.history.record(Served(time.time(), seconds, backend_seconds, len(answers), verdict.agreement))
        if self.settings.log_text:
            log.info("question %r answered %r from %d samples", text[:200], verdict.answer, len(answers))
        return Answered(
            verdict=verdict,
            texts=total.texts,
            finish_reasons=total.finish_reasons,
            usage=total,
            budget=budget,
            lam=lam,
            rounds=rounds,
            degraded=degraded,
            backend_seconds=backend_seconds,
        )

    def _budget(self, view: LedgerView, hint: float | None) -> float:
        """The controller's operating budget; a request's hint replaces it, within what the policy can spend."""
        lowest, highest = self.policy.spend_range()
        budget = hint if hint is not None else self.controller.operating_budget(view.state)
        return float(min(max(budget, lowest), highest))

    def _check_quota(self, view: LedgerView, tenant: Tenant) -> None:
        if tenant.quota is None:
            return
        spent = view.tenants.get(tenant.name)
        if spent is not None and spent.samples >= tenant.quota:
            raise GatewayError(
                429,
                f"tenant {tenant.name!r} has spent its budget of {tenant.quota} samples",
                "insufficient_quota",
                "insufficient_quota",
            )

    def _observe(self, samples: int, verdict: Verdict, tenant: Tenant, seconds: float, backend: float) -> None:
        m = self.metrics
        m.samples.observe(samples)
        m.samples_total.labels(tenant.name).inc(samples)
        m.agreement.observe(verdict.agreement)
        m.backend_time.observe(backend)
        m.overhead.observe(max(seconds - backend, 0.0))

    async def publish(self) -> LedgerView:
        """Refresh the budget gauges from the ledger (for `/metrics` and the dashboard)."""
        view = await self.ledger.view()
        budget = self._budget(view, None)
        lam = self.policy.lam(budget)
        self.metrics.target.set(view.state.target)
        self.metrics.realized.set(view.state.realized)
        self.metrics.operating.set(budget)
        if lam is not None:
            self.metrics.lam.set(lam)
        return view

    async def watch(self, every: float = 1.0, health_every: int = 5) -> None:
        """Forever: a point of history each `every` seconds, the backends' health every `health_every` points."""
        ticks = 0
        while True:
            try:
                if ticks % health_every == 0:
                    self.backend_health = await self.pool.health()
                view = await self.publish()
                budget = self._budget(view, None)
                self.history.tick(view.state.target, view.state.realized, budget, self.policy.lam(budget))
            except LedgerUnavailable:
                pass  # fail closed and Redis away: nothing to draw until it is back
            ticks += 1
            await asyncio.sleep(every)


def _question_text(messages: list[dict[str, Any]]) -> str:
    """The last user message: what text-feature policies judge the query by."""
    for message in reversed(messages):
        if message.get("role") == "user":
            return str(message.get("content") or "")
    return str(messages[-1].get("content") or "")


def _backend_failure(exc: BackendError, timeout: float) -> GatewayError:
    if exc.kind == "timeout":
        return GatewayError(504, f"the backends did not answer within {timeout:g} s", "timeout", "backend_timeout")
    if exc.kind == "refused":
        return GatewayError(400, str(exc), "invalid_request_error", "backend_refused")
    if exc.kind in ("unavailable", "connect"):
        return GatewayError(503, f"no backend is available: {exc}", "service_unavailable", "backend_unavailable")
    return GatewayError(502, f"the backend failed: {exc}", "bad_gateway", f"backend_{exc.kind}")
