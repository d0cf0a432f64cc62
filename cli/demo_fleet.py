"""`apportion demo` with two outcome files: the cascade served end to end, against always asking the strong model
and random routing at the same cost.

The cascading policy is trained on half the questions both models answered; the simulator serves both models
from one process, the gateway cascades across them at the target cost, and the other half is sent through
it. The baselines are expected values on the same stream, from the recorded samples: the strong model's
single-sample accuracy at its price, and random routing's mix of one weak or one strong sample that costs
what the gateway realized.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from numpy.typing import NDArray

from allocator.cascade import CascadingAdaptive
from allocator.data import Outcomes
from cli.demo import send_stream
from cli.options import UsageError
from files.models import load_model
from files.outcomes import read_fleet
from oracle.actions import Action, parse_prices
from oracle.curves import DEFAULT_ACTIONS
from oracle.errors import OracleInputError
from oracle.fleet import Fleet
from oracle.outcomes import is_right


def run_fleet(args: argparse.Namespace) -> int:
    try:
        fleet = read_fleet(args.outcomes)
        prices = parse_prices(args.price, fleet.models)
        data = Outcomes.of_fleet(fleet, DEFAULT_ACTIONS, prices, "samples")
    except OracleInputError as exc:
        raise UsageError(str(exc)) from None
    order = list(range(fleet.n))
    random.Random(args.seed).shuffle(order)
    half = max(fleet.n // 2, 1)
    training, serving = np.array(order[:half]), np.array(order[half:] or order)
    if args.model:
        policy, _ = load_model(Path(args.model))
        if not isinstance(policy, CascadingAdaptive):
            raise UsageError(f"{args.model}: a {policy.name} policy; two outcome files need a cascading one")
    else:
        priced = ", ".join(f"{model} at {price:g}" for model, price in prices.items())
        print(f"training the cascading policy on {half} questions at {args.budget:g} cost per query ({priced})")
        policy = CascadingAdaptive().fit(data.subset(training), args.budget)
    stream = [int(serving[i % serving.size]) for i in range(args.queries)]
    random.Random(args.seed + 1).shuffle(stream)
    from service.app import create_app
    from service.server_thread import ServerThread
    from service.settings import Settings
    from service.simulator import Simulator, create_simulator_app

    simulator = Simulator.fleet({model: fleet.of(model) for model in fleet.models}, args.latency_ms / 1000)
    with ServerThread(create_simulator_app(simulator)) as backend:
        settings = Settings(backends=[backend + "/v1"], target_cost=args.budget)
        with ServerThread(create_app(settings, policy=policy)) as gateway:
            print(f"simulated {' and '.join(fleet.models)} on {backend}/v1, gateway on {gateway}/v1")
            texts = [fleet.answers[q][0].question for q in stream]
            replies = asyncio.run(send_stream(gateway, texts, args.concurrency, args.seed))
            ledger = httpx.get(f"{gateway}/v1/budget").json()
    cheap, dear = policy.models_
    summary = fleet_summary(fleet, data, stream, replies, ledger, (cheap, dear))
    print(_report(summary))
    print(json.dumps(summary))
    return 0


def fleet_summary(
    fleet: Fleet,
    data: Outcomes,
    stream: list[int],
    decisions: list[dict[str, Any]],
    ledger: dict[str, Any],
    models: tuple[str, str],
) -> dict[str, Any]:
    """The gateway's accuracy, cost and escalation share on `stream`, beside always-strong and random routing
    at the cost it realized (expected values from the recorded samples, on the same queries)."""
    rows = np.array(stream)
    right = np.array([is_right(fleet.answers[q], d["answer"]) for q, d in zip(stream, decisions, strict=True)])
    cost = np.array([d["cost"] for d in decisions])
    weak, strong = (_single(data, model)[rows] for model in models)
    weak_cost, strong_cost = (data.curves.prices[model] for model in models)
    realized = float(ledger["realized"])
    share = float(np.clip((realized - weak_cost) / (strong_cost - weak_cost), 0.0, 1.0))
    routing = (1 - share) * weak + share * strong
    return {
        "queries": len(stream),
        "models": list(models),
        "target": ledger["target"],
        "realized_cost": realized,
        "mean_cost_of_replies": float(cost.mean()),
        "accuracy": float(right.mean()),
        "accuracy_stderr": _stderr(right.astype(np.float64)),
        "escalated_share": float(np.mean([len(d["models"]) == 2 for d in decisions])),
        "strong_only_share": float(np.mean([list(d["models"]) == [models[1]] for d in decisions])),
        "always_strong_accuracy": float(strong.mean()),
        "always_strong_cost": strong_cost,
        "random_routing_accuracy": float(routing.mean()),
        "random_routing_stderr": _stderr(routing),
        "gain_over_random_routing": float(right.mean() - routing.mean()),
        "gain_stderr": _stderr(right - routing),
    }


def _single(data: Outcomes, model: str) -> NDArray[np.float64]:
    """Each question's chance that one sample of `model` is right."""
    column = data.actions.index(Action(model, 1))
    return np.asarray(data.curves.acc[:, column])


def _stderr(values: NDArray[np.float64]) -> float:
    return float(values.std(ddof=1) / np.sqrt(values.size)) if values.size > 1 else 0.0


def _report(s: dict[str, Any]) -> str:
    weak, strong = s["models"]
    return "\n".join(
        [
            f"queries served             {s['queries']}",
            f"target cost/query          {s['target']:.3f}",
            f"realized cost/query        {s['realized_cost']:.3f}",
            f"accuracy (cascade)         {s['accuracy']:.4f} ± {s['accuracy_stderr']:.4f}",
            f"escalated to {strong:<13} {s['escalated_share']:.1%} (straight to it: {s['strong_only_share']:.1%})",
            f"random routing, same cost  {s['random_routing_accuracy']:.4f} ± {s['random_routing_stderr']:.4f} "
            f"(expected; cascade ahead by {s['gain_over_random_routing']:+.4f} ± {s['gain_stderr']:.4f})",
            f"always {strong:<19} {s['always_strong_accuracy']:.4f} at cost {s['always_strong_cost']:g} per query",
            f"({weak} alone is the cheap end of random routing)",
        ]
    )
