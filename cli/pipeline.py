"""`apportion pipeline`: collect → label → train → evaluate in one command, ending with how to serve the result."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from cli.options import Parser, drawing_options, positive_float, positive_int

HELP = "collect, label, train and evaluate in one go"
DESCRIPTION = (
    "Run collect → label → train → evaluate into one directory and print the command that serves the trained policy."
)
EXAMPLES = """\
examples:
  apportion pipeline --questions gsm8k_test.jsonl --backend http://127.0.0.1:8000/v1 --samples 16 --out runs/gsm8k
"""
PARENTS = (drawing_options,)


def add_arguments(parser: Parser) -> None:
    parser.add_argument("--samples", type=positive_int, default=16, help="samples per question (16)")
    parser.add_argument("--budget", type=positive_float, default=4.0, help="mean samples per query to train for (4)")
    parser.add_argument("--out", required=True, metavar="DIR", help="directory for outcomes, labels, model and report")


def run(args: argparse.Namespace) -> int:
    from cli.main import main  # the steps are the commands themselves, with their own checks and messages

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    outcomes, model = out / "outcomes.jsonl", out / "model"
    actions = ",".join(str(2**i) for i in range(args.samples.bit_length()) if 2**i <= args.samples)
    budget = f"{args.budget:g}"
    steps = [
        [
            "collect",
            "--questions",
            args.questions,
            "--backend",
            args.backend,
            "--samples",
            str(args.samples),
            "--concurrency",
            str(args.concurrency),
            "--out",
            str(outcomes),
        ],
        [
            "label",
            "--outcomes",
            str(outcomes),
            "--actions",
            actions,
            "--budget",
            budget,
            "--out",
            str(out / "labels.jsonl"),
        ],
        ["train", "--outcomes", str(outcomes), "--actions", actions, "--budget", budget, "--out", str(model)],
        [
            "evaluate",
            "--outcomes",
            str(outcomes),
            "--actions",
            actions,
            "--budgets",
            budget,
            "--out",
            str(out / "report"),
        ],
    ]
    for number, step in enumerate(steps, start=1):
        print(f"[{number}/{len(steps)}] apportion {shlex.join(step)}", flush=True)
        code = main(step)
        if code:
            print(
                f"pipeline stopped at step {number} ({step[0]}); fix it and run the same command again "
                "(collection resumes where it stopped)"
            )
            return code
    serve = ["apportion", "serve", "--model", str(model), "--backend", args.backend, "--port", "8080"]
    print(f"done: {out / 'report' / 'report.md'} says how the policy did. Serve it with:\n  {shlex.join(serve)}")
    return 0
