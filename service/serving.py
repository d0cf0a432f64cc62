"""One query through the gateway: admission, the tenant's budget from the ledger, a reservation against its
quota, rounds of samples as the policy asks, answers extracted and voted on, the spend charged. Routes
(`service.routes`) only translate HTTP to this."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from typing import Any

from allocator.base import Policy
from allocator.plans import majority
from answers.extract import extract_answer
from answers.votes import Verdict, verdict_for
from service.backends import BackendError, BackendPool, Draw, Sampling
from service.costs import Prices
from service.errors import GatewayError
from service.history import History, Served
from service.idempotency import LocalReplies, Replies
from service.ids import new_id
from service.ledger import BudgetController, Charge, Hold, Ledger, LedgerUnavailable, LedgerView, Spend
from service.metrics import Metrics
from service.settings import Settings
from service.tenants import Tenant

log = logging.getLogger("apportion.gateway")


@dataclass
class ModelUse:
    """What one model gave a query: samples, the completion tokens its backend reported, and their cost."""

    samples: int = 0
    tokens: int = 0
    cost: float = 0.0


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
    models: dict[str, ModelUse] = field(default_factory=dict)

    @property
    def cost(self) -> float:
        return total_cost(self.models)


def total_cost(models: Mapping[str, ModelUse]) -> float:
    return sum(use.cost for use in models.values())


@dataclass
class _Query:
    """One query being drawn: the tenant, its quota reservation, and what each model gave so far."""

    tenant: Tenant
    view: LedgerView
    reservation: str | None
    sampling: Sampling
    deadline: float
    drawn: dict[str, list[str | None]] = field(default_factory=dict)
    answers: list[str | None] = field(default_factory=list)
    """Every sample's answer in the order drawn (what the verdict's sample index points into)."""
    failed: dict[str, int] = field(default_factory=dict)
    total: Draw = field(default_factory=Draw)
    models: dict[str, ModelUse] = field(default_factory=dict)
    degraded: list[str] = field(default_factory=list)
    rounds: int = 0
    backend_seconds: float = 0.0
    overspend: float = 0.0
    """What this query counts for in the controller while it runs: at least its budget, minus the target."""


class Gateway:
    """The serving logic; it only sees the policy, a backend pool per model and a ledger handed to it."""

    def __init__(
        self,
        policy: Policy,
        pools: Mapping[str, BackendPool],
        ledger: Ledger,
        controller: BudgetController,
        settings: Settings,
        metrics: Metrics,
        replies: Replies | None = None,
        *,
        prices: Prices | None = None,
        direct: Mapping[str, BackendPool] | None = None,
    ) -> None:
        self.policy = policy
        self.pools = dict(pools)
        """The policy's models' backends, by the policy's model name."""
        self.direct = dict(direct or {})
        """Every backend model id's backends: a request naming one skips the policy."""
        self.ledger = ledger
        self.controller = controller
        self.settings = settings
        self.metrics = metrics
        self.prices = prices or Prices({})
        self.pattern = re.compile(settings.answer_pattern) if settings.answer_pattern else None
        self.history = History()
        self.backend_health: dict[str, str] = {}
        self.started = int(time.time())
        self.in_flight: dict[str, int] = {}
        self.in_flight_overspend = 0.0
        """The sum of the running queries' `overspend` (see `BudgetController.operating_budget`)."""
        self.replies: Replies = replies or LocalReplies(settings.idempotency_ttl, settings.idempotency_max_bytes)
        """Replies kept for requests with an id (see `service.idempotency`)."""

    @property
    def known_models(self) -> list[str]:
        """The backends' own model ids, which clients may ask for too."""
        return list(self.direct)

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
        model: str | None = None,
    ) -> Answered:
        """Draw samples in rounds as the policy's plan asks, vote, and charge their cost to `tenant`.

        `model`, a backend model id, skips the policy: one sample of it, charged to the tenant and the model
        but outside the fleet's target (the policy did not choose it)."""
        async with self._admitted(tenant):
            started = time.perf_counter()
            view = await self.ledger.view(tenant.name)
            fleet = self.controller.operating_budget(view.state, self.in_flight_overspend)
            budget = fleet if model is not None else self._tenant_budget(tenant, view, fleet, budget_hint)
            cap = min(max_samples or self.settings.max_samples, self.settings.max_samples)
            loop = asyncio.get_running_loop()
            query = _Query(
                tenant,
                view,
                None if tenant.quota is None else new_id(),
                sampling,
                loop.time() + self.settings.request_timeout,
            )
            if model is None:
                self._count_in_flight(query, budget - view.state.target)
            try:
                done = await (
                    self._direct(messages, model, budget, query) if model else self._draw(messages, budget, cap, query)
                )
            except BaseException:
                if query.reservation is not None:
                    await self.ledger.release(tenant.name, query.reservation)
                raise
            finally:
                self._count_in_flight(query, 0.0)
            samples = len(done.texts)
            charge = Charge(
                charge_id or new_id(),
                tenant.name,
                samples,
                done.cost,
                {name: (use.samples, self.prices.units(use.samples, use.tokens)) for name, use in done.models.items()},
                budget - fleet,
                query.reservation,
                allocated=model is None,
                period=tenant.period_key(),
            )
            if not await self.ledger.charge(charge):
                done.degraded.append("request id already charged: this repeat was not charged again")
            seconds = time.perf_counter() - started
            self._observe(done, tenant, seconds)
            self.history.record(
                Served(time.time(), seconds, done.backend_seconds, samples, done.verdict.agreement, _costs(done))
            )
            if self.settings.log_text:
                text = _question_text(messages)
                log.info("question %r answered %r from %d samples", text[:200], done.verdict.answer, samples)
            return done

    async def _draw(self, messages: list[dict[str, Any]], budget: float, cap: int, query: _Query) -> Answered:
        """Rounds as the policy's plan asks at `budget`, as far as `cap` (and the tenant's quota) allow, and the
        plan's verdict on them."""
        text = _question_text(messages)
        lam = self.policy.lam(budget) if self.policy.movable else self.policy.lam()
        plan = self.policy.plan(text, budget)
        target = query.view.state.target
        while (step := plan.next(query.drawn)) is not None:
            model, k = step
            k = min(k, cap - len(query.answers))
            if k <= 0 or not await self._round(messages, model, k, query):
                break
            self._count_in_flight(query, max(total_cost(query.models), budget) - target)
            if query.total.failed and not plan.adaptive:
                break
        return self._answered(query, plan.answer(query.drawn), budget, lam)

    def _count_in_flight(self, query: _Query, overspend: float) -> None:
        self.in_flight_overspend += overspend - query.overspend
        query.overspend = overspend

    async def _direct(self, messages: list[dict[str, Any]], model: str, budget: float, query: _Query) -> Answered:
        """One sample of a backend model a client named."""
        await self._round(messages, model, 1, query, self.direct[model])
        return self._answered(query, majority(query.answers), budget, None)

    async def _round(
        self, messages: list[dict[str, Any]], model: str, k: int, query: _Query, pool: BackendPool | None = None
    ) -> bool:
        """Draw up to `k` samples of `model` into `query`; False when nothing more can be drawn."""
        if query.reservation is not None:
            k = await self._reserve(query, model, k)
            if k == 0:
                query.degraded.append(f"the tenant's budget is spent; answered from {len(query.answers)} samples")
                return False
        mine = query.drawn.setdefault(model, [])
        failed = query.failed.get(model, 0)
        seed = None if query.sampling.seed is None else query.sampling.seed + len(mine) + failed
        try:
            draw = await (pool or self.pools[model]).draw(
                messages, k, replace(query.sampling, seed=seed), query.deadline
            )
        except BackendError as exc:
            self.metrics.backend_errors.labels(exc.kind).inc()
            if not query.answers:
                raise _backend_failure(exc, self.settings.request_timeout) from None
            query.degraded.append(
                f"round {query.rounds + 1} ({model}) failed ({exc.kind}); answered from {len(query.answers)} samples"
            )
            return False
        query.rounds += 1
        query.total.add(draw)
        query.backend_seconds += draw.backend_seconds
        use = query.models.setdefault(model, ModelUse())
        use.samples += len(draw.texts)
        use.tokens += draw.completion_tokens
        use.cost = self.prices.cost(model, use.samples, use.tokens)
        if draw.failed:
            query.failed[model] = failed + draw.failed
            self.metrics.backend_errors.labels("partial").inc(draw.failed)
            query.degraded.append(f"{draw.failed} of {k} samples of {model} failed; answered from the rest")
        answers = [extract_answer(t, self.pattern) for t in draw.texts]
        mine += answers
        query.answers += answers
        return True

    def _answered(self, query: _Query, winner: str | None, budget: float, lam: float | None) -> Answered:
        return Answered(
            verdict_for(query.answers, winner),
            query.total.texts,
            query.total.finish_reasons,
            query.total,
            budget,
            lam,
            query.rounds,
            query.degraded,
            query.backend_seconds,
            query.models,
        )

    def _tenant_budget(self, tenant: Tenant, view: LedgerView, fleet: float, hint: float | None) -> float:
        """The fleet's operating budget, or the tenant's hint capped at what it may ask (by default the fleet
        target), less the tenant's own debt: what it spent above the fleet's budget is repaid from its own
        queries, never from everyone's. A hint never buys more than the cap, even on credit (a tenant served
        below the fleet's budget has a negative debt, which its queries without a hint get back)."""
        debt = view.tenants.get(tenant.name, Spend()).debt
        if hint is None:
            return self.controller.tenant_budget(fleet, debt)
        cap = tenant.max_hint if tenant.max_hint is not None else view.state.target
        return min(self.controller.tenant_budget(fleet, debt, min(hint, cap)), max(cap, self.controller.lowest))

    async def _reserve(self, query: _Query, model: str, k: int) -> int:
        """Hold the most the round's `k` samples can cost against the tenant's quota (or what is left of it),
        and say how many samples that allows; refuse the query if nothing is left for its first round. Spend
        never passes a quota, however many of the tenant's queries run at once."""
        tenant = query.tenant
        assert tenant.quota is not None and query.reservation is not None
        each = self.prices.most(model, query.sampling.max_tokens)
        seconds = self.settings.request_timeout + 30  # a reservation outlives its query, then lapses
        hold = Hold(tenant.name, query.reservation, k * each, tenant.quota, seconds, tenant.period_key())
        granted = int(await self.ledger.reserve(hold) / each + 1e-9)
        if granted == 0 and not query.answers:
            spent = query.view.tenants.get(tenant.name, Spend()).in_period(hold.period)
            left = max(tenant.quota - spent, 0)
            held = f", and its queries in flight hold the other {left:g}" if left else ""
            period = f" for this {'day' if tenant.period == 'daily' else 'month'}" if tenant.period else ""
            raise GatewayError(
                429,
                f"tenant {tenant.name!r} has nothing left of its budget of {tenant.quota:g} {self.prices.label}"
                f"{period}: {spent:g} spent{held}; one sample of {model} may cost {each:g}",
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
                if not self.in_flight:
                    self.in_flight_overspend = 0.0  # nothing runs: no rounding left over

    def _observe(self, done: Answered, tenant: Tenant, seconds: float) -> None:
        m = self.metrics
        samples = len(done.texts)
        m.samples.observe(samples)
        m.samples_total.labels(tenant.name).inc(samples)
        for model, use in done.models.items():
            cost, samples_of_model, tokens = m.per_model(model, tenant.name)
            cost.inc(use.cost)
            samples_of_model.inc(use.samples)
            tokens.inc(use.tokens)
        m.queries_by_models.labels(str(len(done.models))).inc()
        m.agreement.observe(done.verdict.agreement)
        m.backend_time.observe(done.backend_seconds)
        m.overhead.observe(max(seconds - done.backend_seconds, 0.0))

    async def health(self) -> dict[str, str]:
        """Each backend's reachability and breaker state (as its policy model's pool sees it), asked once."""
        report: dict[str, str] = {}
        for pool in [*self.pools.values(), *self.direct.values()]:
            unseen = [b for b in pool.backends if b.url not in report]
            if unseen:
                report |= await pool.health(unseen)
        return report

    def models_ready(self, health: Mapping[str, str]) -> dict[str, bool]:
        """Per policy model: whether some backend of it is up."""
        return {
            model: any(health.get(b.url, "").startswith("up") for b in pool.backends)
            for model, pool in self.pools.items()
        }

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
                    self.backend_health = await self.health()
                view = await self.publish()
                budget = self.operating_budget(view)
                self.history.tick(view.state.target, view.state.realized, budget, self.policy.lam(budget))
            except LedgerUnavailable:
                pass  # fail closed and Redis away: nothing to draw until it is back
            except Exception:  # the watcher must outlive any one failure, or the ledger is never replayed
                log.exception("the gateway's once-a-second upkeep failed; trying again in a second")
            ticks += 1
            await asyncio.sleep(every)


def _costs(done: Answered) -> dict[str, float]:
    return {model: use.cost for model, use in done.models.items()}


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
