"""`apportion example`: a synthetic outcome file to try the other commands on."""

from __future__ import annotations

import argparse
from pathlib import Path

from cli.options import Parser, positive_int
from files.outcomes import write_jsonl
from oracle.synthetic import synthetic_outcomes

HELP = "write a synthetic outcome file to try the other commands on"
DESCRIPTION = "Write a synthetic outcome file (documented in oracle/synthetic.py): same seed, same file."
EXAMPLES = """\
examples:
  apportion example --out out/example.jsonl
  apportion example --out small.jsonl --questions 50 --samples 8 --seed 1

Then try: apportion frontier --outcomes out/example.jsonl
"""
PARENTS = ()


def add_arguments(parser: Parser) -> None:
    parser.add_argument("--out", required=True, help="where to write the outcome file (.jsonl)")
    parser.add_argument("--questions", type=positive_int, default=400, help="number of questions (400)")
    parser.add_argument("--samples", type=positive_int, default=32, help="samples per question (32)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (0)")


def run(args: argparse.Namespace) -> int:
    questions = synthetic_outcomes(args.questions, args.samples, args.seed)
    count = write_jsonl(Path(args.out), (q.to_record() for q in questions))
    print(f"wrote {count} synthetic questions with {args.samples} samples each to {args.out}")
    return 0
