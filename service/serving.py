"""One query through the gateway: admission, the tenant's budget from the ledger, a reservation against its
quota, rounds of samples as the policy asks, answers extracted and voted on, the spend charged. Routes
(`service.routes`) only translate HTTP to this."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from typing import Any

from allocator.base import Policy
from answers.extract import extract_answer
from answers.votes import Verdict, aggregate
from service.backends import BackendError, BackendPool, Draw, Sampling
from service.errors import GatewayError
from service.history import History, Served
from service.idempotency import LocalReplies, Replies
from service.ids import new_id
from service.ledger import BudgetController, Charge, Ledger, LedgerUnavailable, LedgerView, Spend
from service.metrics import Metrics
from service.settings import Settings
from service.tenants import Tenant

log = logging.getLogger("apportion.gateway")


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
        replies: Replies | None = None,
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
        self.in_flight: dict[str, int] = {}
        self.replies: Replies = replies or LocalReplies(settings.idempotency_ttl, settings.idempotency_max_bytes)
        """Replies kept for requests with an id (see `service.idempotency`)."""

    @property
    def degraded(self) -> bool:
        """Serving from a local ledger because the shared one is unreachable."""
        return bool(getattr(self.ledger, "degraded", False))

    async def set_target(self, target: float) -> LedgerView:
        """A new fleet target (checked by the controller: `UnreachableTarget` when out of the policy's reach)."""
        return await self.ledger.restart(self.controller.start(target))

    def operating_budget(self, view: LedgerView) -> float:
        return self.controller.operating_budget(view.state)

    async def answer(
        self,
        messages: list[dict[str, Any]],
        tenant: Tenant,
        *,
        sampling: Sampling,
        max_samples: int | None = None,
        budget_hint: float | None = None,
        charge_id: str | None = None,
    ) -> Answered:
        """Draw samples in rounds until the policy stops, vote, and charge the samples drawn to `tenant`."""
        async with self._admitted(tenant):
            started = time.perf_counter()
            view = await self.ledger.view(tenant.name)
            fleet = self.controller.operating_budget(view.state)
            budget = self._tenant_budget(tenant, view, fleet, budget_hint)
            cap = min(max_samples or self.settings.max_samples, self.settings.max_samples)
            reservation = None if tenant.quota is None else new_id()
            try:
                done = await self._draw(messages, sampling, budget, cap, tenant, view, reservation)
            except BaseException:
                if reservation is not None:
                    await self.ledger.release(tenant.name, reservation)
                raise
            samples = len(done.texts)
            charge = Charge(charge_id or new_id(), tenant.name, samples, budget - fleet, reservation)
            if not await self.ledger.charge(charge):
                done.degraded.append("request id already charged: this repeat was not charged again")
            seconds = time.perf_counter() - started
            self._observe(samples, done.verdict, tenant, seconds, done.backend_seconds)
            self.history.record(Served(time.time(), seconds, done.backend_seconds, samples, done.verdict.agreement))
            if self.settings.log_text:
                text = _question_text(messages)
                log.info("question %r answered %r from %d samples", text[:200], done.verdict.answer, samples)
            return done

    async def _draw(
        self,
        messages: list[dict[str, Any]],
        sampling: Sampling,
        budget: float,
        cap: int,
        tenant: Tenant,
        view: LedgerView,
        reservation: str | None,
    ) -> Answered:
        """Rounds of samples, as many as the policy asks at `budget` and `cap` (and the tenant's quota) allow,
        and their vote."""
        text = _question_text(messages)
        lam = self.policy.lam(budget) if self.policy.movable else self.policy.lam()
        answers: list[str | None] = []
        total, degraded, rounds, backend_seconds = Draw(), [], 0, 0.0
        deadline = asyncio.get_running_loop().time() + self.settings.request_timeout
        while (k := min(self.policy.next_samples(text, answers, budget), cap - len(answers))) > 0:
            if reservation is not None:
                k = await self._reserve(tenant, view, reservation, k, first=not answers)
                if k == 0:
                    degraded.append(f"the tenant's budget of samples is spent; answered from {len(answers)} samples")
                    break
            seed = None if sampling.seed is None else sampling.seed + len(answers) + total.failed
            round_sampling = replace(sampling, seed=seed)
            try:
                draw = await self.pool.draw(messages, k, round_sampling, deadline)
            except BackendError as exc:
                self.metrics.backend_errors.labels(exc.kind).inc()
                if not answers:
                    raise _backend_failure(exc, self.settings.request_timeout) from None
                degraded.append(f"round {rounds + 1} failed ({exc.kind}); answered from {len(answers)} samples")
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
        return Answered(
            aggregate(answers), total.texts, total.finish_reasons, total, budget, lam, rounds, degraded, backend_seconds
        )

    def _tenant_budget(self, tenant: Tenant, view: LedgerView, fleet: float, hint: float | None) -> float:
        """The fleet's operating budget, or the tenant's hint capped at what it may ask (by default the fleet
        target), less the tenant's own debt: what it spent above the fleet's budget is repaid from its own
        queries, never from everyone's."""
        if hint is not None:
            hint = min(hint, tenant.max_hint if tenant.max_hint is not None else view.state.target)
        debt = view.tenants.get(tenant.name, Spend()).debt
        return self.controller.tenant_budget(fleet, debt, hint)

    async def _reserve(self, tenant: Tenant, view: LedgerView, reservation: str, k: int, first: bool) -> int:
        """Hold the round's `k` samples against the tenant's quota (or what is left of it), or refuse the query if
        nothing is left for its first round: spend never passes a quota, however many of the tenant's queries run
        at once."""
        assert tenant.quota is not None
        seconds = self.settings.request_timeout + 30  # a reservation outlives its query, then lapses
        granted = await self.ledger.reserve(tenant.name, reservation, k, tenant.quota, seconds)
        if granted == 0 and first:
            spent = view.tenants.get(tenant.name, Spend()).samples
            left = max(tenant.quota - spent, 0)
            held = f", and its queries in flight hold the other {left}" if left else ""
            raise GatewayError(
                429,
                f"tenant {tenant.name!r} has no samples left of its budget of {tenant.quota}: {spent} spent{held}",
                "insufficient_quota",
                "insufficient_quota",
            )
        return granted

    @asynccontextmanager
    async def _admitted(self, tenant: Tenant) -> AsyncIterator[None]:
        """At most the tenant's limit of requests in flight in this process: one tenant cannot take them all."""
        limit = tenant.max_in_flight or self.settings.max_in_flight_per_tenant
        running = self.in_flight.get(tenant.name, 0)
        if running >= limit:
            raise GatewayError(
                429,
                f"tenant {tenant.name!r} already has {running} requests in flight, its limit; retry when one is done",
                "rate_limit_error",
                "too_many_requests_in_flight",
            )
        self.in_flight[tenant.name] = running + 1
        try:
            yield
        finally:
            self.in_flight[tenant.name] -= 1
            if not self.in_flight[tenant.name]:
                del self.in_flight[tenant.name]

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
        budget = self.operating_budget(view)
        lam = self.policy.lam(budget)
        self.metrics.target.set(view.state.target)
        self.metrics.realized.set(view.state.realized)
        self.metrics.operating.set(budget)
        if lam is not None:
            self.metrics.lam.set(lam)
        return view

    async def watch(self, every: float = 1.0, health_every: int = 5) -> None:
        """Forever: the ledger kept up, a point of history each `every` seconds, the backends' health every
        `health_every` points."""
        ticks = 0
        while True:
            try:
                await self.ledger.maintain()
                if ticks % health_every == 0:
                    self.backend_health = await self.pool.health()
                view = await self.publish()
                budget = self.operating_budget(view)
                self.history.tick(view.state.target, view.state.realized, budget, self.policy.lam(budget))
            except LedgerUnavailable:
                pass  # fail closed and Redis away: nothing to draw until it is back
            except Exception:  # the watcher must outlive any one failure, or the ledger is never replayed
                log.exception("the gateway's once-a-second upkeep failed; trying again in a second")
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
    if exc.kind == "rejected":
        message = f"this request failed on every backend that tried it, while they answered others: {exc}"
        return GatewayError(502, message, "bad_gateway", "backend_rejected_request")
    return GatewayError(502, f"the backend failed: {exc}", "bad_gateway", f"backend_{exc.kind}")
