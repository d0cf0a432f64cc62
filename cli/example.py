"""`apportion example`: a synthetic outcome file to try the other commands on."""

from __future__ import annotations

import argparse
from pathlib import Path

from cli.options import Parser, positive_int
from files.outcomes import write_jsonl
from oracle.synthetic import SKILL, synthetic_outcomes

HELP = "write a synthetic outcome file to try the other commands on"
DESCRIPTION = "Write a synthetic outcome file (documented in oracle/synthetic.py): same seed, same file."
EXAMPLES = """\
examples:
  apportion example --out out/example.jsonl
  apportion example --out small.jsonl --questions 50 --samples 8 --seed 1
  apportion example --out out/strong.jsonl --model strong --skill 4.5   # the same questions, a stronger model

Then try: apportion frontier --outcomes out/example.jsonl
     or:  apportion evaluate --outcomes out/example.jsonl --outcomes out/strong.jsonl --price strong=20
"""
PARENTS = ()


def add_arguments(parser: Parser) -> None:
    parser.add_argument("--out", required=True, help="where to write the outcome file (.jsonl)")
    parser.add_argument("--questions", type=positive_int, default=400, help="number of questions (400)")
    parser.add_argument("--samples", type=positive_int, default=32, help="samples per question (32)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (0)")
    parser.add_argument("--model", default="synthetic", help="the model name written in each record (synthetic)")
    parser.add_argument(
        "--skill",
        type=float,
        default=SKILL,
        help=f"how able the model is ({SKILL:g}; 4.5 is a strong one): files with the same seed and number of "
        "questions share their questions, so several of them make a fleet",
    )


def run(args: argparse.Namespace) -> int:
    questions = synthetic_outcomes(args.questions, args.samples, args.seed, args.model, args.skill)
    count = write_jsonl(Path(args.out), (q.to_record() for q in questions))
    print(f"wrote {count} synthetic questions with {args.samples} samples each of model {args.model} to {args.out}")
    return 0
