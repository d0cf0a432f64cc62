"""What the benchmarks serve: synthetic outcome files, models fitted on them, request bodies, and the Python
HTTP clients that read every reply (where a benchmark must check what each reply says)."""

from __future__ import annotations

import json
import ssl
import time
from pathlib import Path
from typing import Any

import httpx

from allocator.data import Outcomes
from allocator.registry import POLICIES
from files.models import save_model
from files.outcomes import write_jsonl
from oracle.curves import DEFAULT_ACTIONS
from oracle.outcomes import Question
from oracle.synthetic import synthetic_outcomes

BUDGET = 4.0
SHARD = 16  # connections per httpx client (see clients_for)


def write_outcomes(path: Path, questions: int, seed: int) -> list[Question]:
    """What `apportion example` writes, kept in memory too."""
    drawn = list(synthetic_outcomes(questions, 32, seed))
    write_jsonl(path, (q.to_record() for q in drawn))
    return drawn


def train(directory: Path, policy_name: str, questions: list[Question], budget: float = BUDGET) -> float:
    """Fit and save a model; seconds taken. No cross-validation (`apportion train` runs five folds first,
    minutes for the adaptive policy): serving needs only the fitted policy."""
    started = time.perf_counter()
    policy = POLICIES[policy_name]().fit(Outcomes.read(questions, DEFAULT_ACTIONS), budget)
    manifest = {
        "policy": policy_name,
        "actions": list(DEFAULT_ACTIONS),
        "budget": budget,
        "description": policy.description(),
        "training_data": {"path": "synthetic (bench/)", "questions": len(questions)},
        "metrics": {"protocol": "none: trained by a benchmark without cross-validation"},
    }
    save_model(directory, policy, manifest)
    return time.perf_counter() - started


def chat_body(model: str, question: str, seed: int, n: int | None = None, **extra: Any) -> bytes:
    """Pre-encoded, so the load generator spends its CPU on HTTP only."""
    body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": question}], "seed": seed}
    if n is not None:  # what the gateway itself sends a backend for one round of n samples
        body |= {"n": n, "temperature": 0.8, "top_p": 1.0, "max_tokens": 512}
    return json.dumps(body | extra).encode()


def clients_for(base: str, concurrency: int) -> list[httpx.AsyncClient]:
    """One httpx client per `SHARD` connections: httpcore's pool scans every connection it holds on every
    request (an expiry check with a poll() each), so one client of 256 connections costs ~6 ms of CPU per
    request here. Measured: 2.4 ms per request at 32 connections in one client, 0.7 ms in clients of 16."""
    shared = ssl.create_default_context()  # unused on http://, but each client would otherwise build one
    count = -(-concurrency // SHARD)
    limits = httpx.Limits(max_connections=SHARD, max_keepalive_connections=SHARD)
    return [httpx.AsyncClient(base_url=base, limits=limits, timeout=120.0, verify=shared) for _ in range(count)]
