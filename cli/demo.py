"""`apportion demo`: the whole serving path on one machine, no GPU and no Redis.

Trains the default policy on half of an outcome file (synthetic unless one is given), starts the simulator
and the gateway on loopback, sends a stream of the other half's questions through the gateway, and compares
what it spent and how often it was right with uniform allocation at the same mean samples.
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
from answers.extract import canonical
from cli.options import Parser, positive_float, positive_int
from files.models import load_model
from files.outcomes import read_outcomes
from oracle.costs import uniform_mix
from oracle.curves import DEFAULT_ACTIONS
from oracle.outcomes import Question
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
"""
PARENTS = ()


def add_arguments(parser: Parser) -> None:
    parser.add_argument("--outcomes", metavar="FILE", help="recorded samples (default: a synthetic file)")
    parser.add_argument("--model", metavar="MODEL_DIR", help="serve this model instead of training one")
    parser.add_argument("--budget", type=positive_float, default=4.0, help="target mean samples per query (4)")
    parser.add_argument("--queries", type=positive_int, default=1000, help="queries to send (1000)")
    parser.add_argument("--concurrency", type=positive_int, default=16, help="queries in flight (16)")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="simulated backend delay per request (0)")
    parser.add_argument("--seed", type=int, default=0, help="seed for the split and the stream (0)")


def run(args: argparse.Namespace) -> int:
    questions = list(read_outcomes(Path(args.outcomes))) if args.outcomes else list(synthetic_outcomes(400, 32))
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
            answers = asyncio.run(_send(gateway, stream, args.concurrency, args.seed))
            ledger = httpx.get(f"{gateway}/v1/budget").json()
    summary = _summary(stream, answers, ledger)
    print(_report(summary))
    print(json.dumps(summary))
    return 0


async def _send(gateway: str, stream: list[Question], concurrency: int, seed: int) -> list[str | None]:
    """Every question through the gateway's chat endpoint, `concurrency` at a time, in order of the stream."""
    gate = asyncio.Semaphore(concurrency)
    answers: list[str | None] = [None] * len(stream)
    rng = random.Random(seed)
    seeds = [rng.randrange(2**31) for _ in stream]
    async with httpx.AsyncClient(base_url=f"{gateway}/v1", timeout=60) as client:
        with tqdm(total=len(stream), unit="query", desc="serving") as bar:

            async def one(index: int) -> None:
                async with gate:
                    body = {
                        "model": "apportion",
                        "seed": seeds[index],
                        "messages": [{"role": "user", "content": stream[index].question}],
                    }
                    reply = await client.post("/chat/completions", json=body)
                    reply.raise_for_status()
                    answers[index] = reply.json()["apportion"]["answer"]
                    bar.update()

            await asyncio.gather(*(one(i) for i in range(len(stream))))
    return answers


def _summary(stream: list[Question], answers: list[str | None], ledger: dict[str, Any]) -> dict[str, Any]:
    right = np.array([_is_right(q, a) for q, a in zip(stream, answers, strict=True)], dtype=np.float64)
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


def _is_right(question: Question, answer: str | None) -> bool:
    """Right when a recorded sample gave this answer and was marked correct, or it is the gold answer."""
    if answer is None:
        return False
    for sample in question.samples:
        if sample.answer is not None and canonical(sample.answer) == answer:
            return sample.correct
    return question.gold is not None and canonical(question.gold) == answer


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
