"""`apportion simulate`: an OpenAI-compatible backend that replays recorded samples (no GPU, no model)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cli.options import Parser

HELP = "an OpenAI-compatible backend that replays recorded samples"
DESCRIPTION = "Serve vLLM's OpenAI API shapes from an outcome file: no GPU, no model."
EXAMPLES = """\
examples:
  apportion simulate --outcomes out/example.jsonl --port 8000
  apportion simulate --outcomes ../shared/data/gsm8k-llama2-13b.jsonl --latency-ms 50

Known questions are answered from their recorded samples; unknown ones from a synthetic model
(service/simulator.py says how).
"""
PARENTS = ()


def add_arguments(parser: Parser) -> None:
    parser.add_argument("--outcomes", required=True, metavar="FILE", help="recorded samples, .jsonl or .jsonl.gz")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (8000)")
    parser.add_argument("--model", default="simulated", help="the model id it reports (simulated)")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="fixed delay per request, in ms (0)")
    parser.add_argument("--log-level", default="warning", choices=("debug", "info", "warning", "error"))


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from files.outcomes import read_outcomes
    from service.simulator import Simulator, create_simulator_app

    questions = list(read_outcomes(Path(args.outcomes)))
    simulator = Simulator(questions, model=args.model, latency=args.latency_ms / 1000)
    print(
        f"simulating {len(simulator.recorded)} recorded questions from {args.outcomes} as model "
        f"{args.model!r} on http://{args.host}:{args.port}/v1",
        file=sys.stderr,
    )
    uvicorn.run(
        create_simulator_app(simulator), host=args.host, port=args.port, log_level=args.log_level, access_log=False
    )
    return 0
