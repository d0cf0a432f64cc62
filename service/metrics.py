"""Prometheus metrics. With several uvicorn workers, set PROMETHEUS_MULTIPROC_DIR: every worker writes its
values there and `/metrics` sums them (gauges take the most recent value written by any worker)."""

from __future__ import annotations

import os
from typing import get_args

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess

from service.backends import ErrorKind

ERROR_KINDS = (*get_args(ErrorKind), "partial")
_SECONDS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class Metrics:
    """The gateway's metrics, on a registry of its own so that several apps can live in one process."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("apportion_requests", "Requests by route and status", ["route", "status"], registry=r)
        self.latency = Histogram("apportion_request_seconds", "Time to answer", ["route"], buckets=_SECONDS, registry=r)
        self.backend_time = Histogram(
            "apportion_backend_seconds", "Time spent waiting for backends per request", buckets=_SECONDS, registry=r
        )
        self.overhead = Histogram(
            "apportion_overhead_seconds",
            "The gateway's own time per request (total - backend)",
            buckets=_SECONDS,
            registry=r,
        )
        self.samples = Histogram(
            "apportion_samples_per_request",
            "Samples drawn per query",
            buckets=(1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64),
            registry=r,
        )
        self.samples_total = Counter("apportion_samples", "Samples drawn, by tenant", ["tenant"], registry=r)
        by_model = ["model", "tenant"]
        self.cost_total = Counter("apportion_cost", "Cost charged, by model and tenant", by_model, registry=r)
        self.model_samples = Counter(
            "apportion_model_samples", "Samples drawn, by model and tenant", by_model, registry=r
        )
        self.model_tokens = Counter(
            "apportion_model_completion_tokens", "Completion tokens the backends reported", by_model, registry=r
        )
        self.queries_by_models = Counter(
            "apportion_queries_by_models",
            "Queries by how many models answered them (2: escalated in a cascade)",
            ["models"],
            registry=r,
        )
        self._per_model: dict[tuple[str, str], tuple[Counter, Counter, Counter]] = {}
        self.agreement = Histogram(
            "apportion_agreement",
            "Share of samples agreeing with the answer",
            buckets=(0.2, 0.4, 0.5, 0.6, 0.8, 0.99, 1),
            registry=r,
        )
        self.backend_errors = Counter("apportion_backend_errors", "Backend failures by kind", ["kind"], registry=r)
        for kind in ERROR_KINDS:  # exported at zero from the start, so alerts and dashboards see the series
            self.backend_errors.labels(kind)
        gauge = {"multiprocess_mode": "mostrecent", "registry": r}
        self.lam = Gauge("apportion_lambda", "The policy's price per unit of cost at the operating budget", **gauge)  # type: ignore[arg-type]
        self.target = Gauge("apportion_target_cost", "Fleet target: mean cost per query", **gauge)  # type: ignore[arg-type]
        self.realized = Gauge("apportion_realized_cost", "Realized mean cost per query in the window", **gauge)  # type: ignore[arg-type]
        self.operating = Gauge("apportion_operating_budget", "Budget the next query is served at", **gauge)  # type: ignore[arg-type]

    def per_model(self, model: str, tenant: str) -> tuple[Counter, Counter, Counter]:
        """Cost, samples and tokens counters of one model and tenant, labelled once: `labels()` takes a lock and
        builds a key on every call, and the hot path would call it three times per model per query. Bounded: models
        come from the backends, tenants from the tenants file."""
        found = self._per_model.get((model, tenant))
        if found is None:
            found = self._per_model[model, tenant] = (
                self.cost_total.labels(model, tenant),
                self.model_samples.labels(model, tenant),
                self.model_tokens.labels(model, tenant),
            )
        return found

    def exposition(self) -> bytes:
        """The text format; in multiprocess mode, every worker's values combined."""
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            combined = CollectorRegistry()
            multiprocess.MultiProcessCollector(combined)  # type: ignore[no-untyped-call]
            return generate_latest(combined)
        return generate_latest(self.registry)
