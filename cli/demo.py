"""`apportion demo`: the whole serving path on one machine, no GPU and no Redis.

Trains the default policy on half of an outcome file (synthetic unless one is given), starts the simulator
and the gateway on loopback, sends a stream of the other half's questions through the gateway, and compares
what it spent and how often it was right with uniform allocation at the same mean samples. With two outcome
files (one per model), the cascade instead (`cli.demo_fleet`).
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
from tqdm import tqdm

from allocator.data import Outcomes
from allocator.registry import DEFAULT_POLICY, POLICIES
from cli.options import Parser, UsageError, positive_float, positive_int, price, source
from files.models import load_model
from files.outcomes import read_outcomes
from oracle.costs import uniform_mix
from oracle.curves import DEFAULT_ACTIONS
from oracle.outcomes import Question, is_right
from oracle.synthetic import synthetic_outcomes

HELP = "simulator + gateway on this machine: spend and accuracy against uniform"
DESCRIPTION = (
    "Train the default policy on half the questions, start the simulated backend "
    "and the gateway on loopback, send the other half through it, and compare with uniform "
    "allocation at the same spend. No GPU, no Redis."
)
EXAMPLES = """\
examples:
  apportion demo
  apportion demo --outcomes ../shared/data/gsm8k-llama2-13b.jsonl --budget 4 --queries 2000
  apportion demo --outcomes out/example.jsonl --outcomes out/strong.jsonl --price strong=20 --budget 8
"""
PARENTS = ()


def add_arguments(parser: Parser) -> None:
    parser.add_argument(
        "--outcomes",
        action="append",
        type=source,
        metavar="[NAME=]FILE",
        help="recorded samples (default: a synthetic file); twice, one file per model, to serve the cascade",
    )
    parser.add_argument(
        "--price", action="append", type=price, default=[], metavar="NAME=X", help="a model's price per sample (1)"
    )
    parser.add_argument("--model", metavar="MODEL_DIR", help="serve this model instead of training one")
    parser.add_argument(
        "--budget", type=positive_float, default=4.0, help="target mean cost per query: samples × price (4)"
    )
    parser.add_argument("--queries", type=positive_int, default=1000, help="queries to send (1000)")
    parser.add_argument("--concurrency", type=positive_int, default=16, help="queries in flight (16)")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="simulated backend delay per request (0)")
    parser.add_argument("--seed", type=int, default=0, help="seed for the split and the stream (0)")


def run(args: argparse.Namespace) -> int:
    if args.outcomes and len(args.outcomes) > 1:
        from cli.demo_fleet import run_fleet

        return run_fleet(args)
    if args.price:
        raise UsageError("--price needs two outcome files (a cascade); one model's cost is its samples")
    questions = list(read_outcomes(args.outcomes[0].path)) if args.outcomes else list(synthetic_outcomes(400, 32))
    random.Random(args.seed).shuffle(questions)
    half = len(questions) // 2
    training, serving = questions[:half], questions[half:] or questions
    if args.model:
        policy, _ = load_model(Path(args.model))
    else:
        print(f"training the {DEFAULT_POLICY} policy on {len(training)} questions at {args.budget:g} samples per query")
        policy = POLICIES[DEFAULT_POLICY]().fit(Outcomes.read(training, DEFAULT_ACTIONS), args.budget)
    stream = [serving[i % len(serving)] for i in range(args.queries)]
    random.Random(args.seed + 1).shuffle(stream)
    from service.app import create_app
    from service.server_thread import ServerThread
    from service.settings import Settings
    from service.simulator import Simulator, create_simulator_app

    simulator = Simulator(questions, latency=args.latency_ms / 1000)
    with ServerThread(create_simulator_app(simulator)) as backend:
        settings = Settings(backends=[backend + "/v1"], target_samples=args.budget)
        with ServerThread(create_app(settings, policy=policy)) as gateway:
            print(f"simulated backend on {backend}/v1, gateway on {gateway}/v1; sending {len(stream)} queries")
            texts = [question.question for question in stream]
            answers = [d["answer"] for d in asyncio.run(send_stream(gateway, texts, args.concurrency, args.seed))]
            ledger = httpx.get(f"{gateway}/v1/budget").json()
    summary = _summary(stream, answers, ledger)
    print(_report(summary))
    print(json.dumps(summary))
    return 0


async def send_stream(gateway: str, texts: list[str], concurrency: int, seed: int) -> list[dict[str, Any]]:
    """Every text through the gateway's chat endpoint, `concurrency` at a time; each reply's `apportion` object,
    in the order of `texts`."""
    gate = asyncio.Semaphore(concurrency)
    decisions: list[dict[str, Any]] = [{}] * len(texts)
    rng = random.Random(seed)
    seeds = [rng.randrange(2**31) for _ in texts]
    async with httpx.AsyncClient(base_url=f"{gateway}/v1", timeout=60) as client:
        with tqdm(total=len(texts), unit="query", desc="serving") as bar:

            async def one(index: int) -> None:
                async with gate:
                    messages = [{"role": "user", "content": texts[index]}]
                    body = {"model": "apportion", "seed": seeds[index], "messages": messages}
                    reply = await client.post("/chat/completions", json=body)
                    reply.raise_for_status()
                    decisions[index] = reply.json()["apportion"]
                    bar.update()

            await asyncio.gather(*(one(i) for i in range(len(texts))))
    return decisions


def _summary(stream: list[Question], answers: list[str | None], ledger: dict[str, Any]) -> dict[str, Any]:
    right = np.array([is_right([q], a) for q, a in zip(stream, answers, strict=True)], dtype=np.float64)
    realized = float(ledger["realized"])
    curves = Outcomes.read(stream, DEFAULT_ACTIONS)
    low, high, share = uniform_mix(curves.cost, realized)
    uniform = float(((1 - share) * curves.acc[:, low] + share * curves.acc[:, high]).mean())
    return {
        "queries": len(stream),
        "target": ledger["target"],
        "realized_samples": realized,
        "accuracy": float(right.mean()),
        "accuracy_stderr": float(right.std(ddof=1) / np.sqrt(right.size)) if right.size > 1 else 0.0,
        "uniform_accuracy": uniform,
        "lambda": ledger["lambda"],
    }


def _report(s: dict[str, Any]) -> str:
    return "\n".join(
        [
            f"queries served          {s['queries']}",
            f"target samples/query    {s['target']:.3f}",
            f"realized samples/query  {s['realized_samples']:.3f}",
            f"accuracy (gateway)      {s['accuracy']:.4f} ± {s['accuracy_stderr']:.4f}",
            f"uniform at same spend   {s['uniform_accuracy']:.4f} (expected, exact majority-vote curves)",
        ]
    )
