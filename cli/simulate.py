"""`apportion simulate`: an OpenAI-compatible backend that replays recorded samples (no GPU, no model)."""

from __future__ import annotations

import argparse
import sys

from cli.options import Parser, UsageError, source
from oracle.outcomes import Question

HELP = "an OpenAI-compatible backend that replays recorded samples"
DESCRIPTION = "Serve vLLM's OpenAI API shapes from an outcome file: no GPU, no model."
EXAMPLES = """\
examples:
  apportion simulate --outcomes out/example.jsonl --port 8000
  apportion simulate --outcomes ../shared/data/gsm8k-llama2-13b.jsonl --latency-ms 50
  apportion simulate --outcomes small=llama.jsonl --outcomes large=gpt4.jsonl   # two models, one process

Known questions are answered from their recorded samples; unknown ones from a synthetic model
(service/simulator.py says how).
"""
PARENTS = ()


def add_arguments(parser: Parser) -> None:
    parser.add_argument(
        "--outcomes",
        required=True,
        action="append",
        type=source,
        metavar="[NAME=]FILE",
        help="recorded samples, .jsonl or .jsonl.gz; repeat it to serve several models, each under its NAME "
        "(default: the file's model field; a single file is served as --model)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (8000)")
    parser.add_argument(
        "--model", default="simulated", help="the model id a single unnamed file is served as (simulated)"
    )
    parser.add_argument("--latency-ms", type=float, default=0.0, help="fixed delay per request, in ms (0)")
    parser.add_argument("--log-level", default="warning", choices=("debug", "info", "warning", "error"))


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from files.outcomes import model_name, read_outcomes
    from service.simulator import Simulator, create_simulator_app

    models: dict[str, list[Question]] = {}
    for given in args.outcomes:
        questions = list(read_outcomes(given.path))
        name = model_name(given, questions[0] if questions else None)
        if len(args.outcomes) == 1 and given.name is None:
            name = args.model
        if name in models:
            raise UsageError(f"model {name!r} is given twice; name each file: --outcomes NAME=FILE")
        models[name] = questions
    simulator = Simulator.fleet(models, latency=args.latency_ms / 1000)
    for name, replay in simulator.replays.items():
        print(f"simulating {len(replay)} recorded questions as model {name!r}", file=sys.stderr)
    print(f"on http://{args.host}:{args.port}/v1", file=sys.stderr)
    uvicorn.run(
        create_simulator_app(simulator), host=args.host, port=args.port, log_level=args.log_level, access_log=False
    )
    return 0
