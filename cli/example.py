"""`apportion example`: a synthetic outcome file to try the other commands on."""

from __future__ import annotations

import argparse
from pathlib import Path

from cli.options import Subcommands, add_command, positive_int
from files.outcomes import write_jsonl
from oracle.synthetic import synthetic_outcomes


def register(sub: Subcommands) -> None:
    parser = add_command(
        sub,
        "example",
        run,
        help="write a synthetic outcome file to try the other commands on",
        description="Write a synthetic outcome file (documented in oracle/synthetic.py): same seed, same file.",
    )
    parser.add_argument("--out", required=True, help="where to write the outcome file (.jsonl)")
    parser.add_argument("--questions", type=positive_int, default=400, help="number of questions (400)")
    parser.add_argument("--samples", type=positive_int, default=32, help="samples per question (32)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (0)")


def run(args: argparse.Namespace) -> int:
    questions = synthetic_outcomes(args.questions, args.samples, args.seed)
    count = write_jsonl(Path(args.out), (q.to_record() for q in questions))
    print(f"wrote {count} synthetic questions with {args.samples} samples each to {args.out}")
    return 0
