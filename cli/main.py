"""`apportion`: one command line with subcommands; arguments are parsed here and nowhere else."""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn, TypeVar

from allocator.registry import DEFAULT_POLICY, POLICIES
from cli import commands, learn
from cli.outcome_files import DataFileError
from cli.serve_parsers import add_serving_commands
from oracle.costs import COST_UNITS
from oracle.curves import AGGREGATORS
from oracle.errors import OracleInputError

DEFAULT_ACTIONS = "1,2,4,8,16,32"
T = TypeVar("T")

_LABEL_EXAMPLES = """\
examples:
  apportion label --outcomes gsm8k.jsonl --budget 4 --out labels.jsonl
  apportion label --outcomes math.jsonl.gz --actions 1,2,4,8 --budget 3 --aggregator best-of --out labels.jsonl
  apportion label --outcomes runs.jsonl --cost tokens --budget 1500 --out labels.jsonl   # tokens per question

Each line of --out is {"id", "action" (samples k), "expected_accuracy", "cost"}; the last line of stdout
is a JSON summary with budget, lambda, avg_cost, accuracy and n.
"""

_FRONTIER_EXAMPLES = """\
examples:
  apportion frontier --outcomes gsm8k.jsonl
  apportion frontier --outcomes gsm8k.jsonl --actions 1,2,4,8,16,32 --out frontier.jsonl

The table compares, at each action's cost, giving every question that action (uniform) with the oracle's
allocation at the same mean cost. --out receives every vertex of the frontier as {"avg_cost", "accuracy",
"lambda"}.
"""


_TRAIN_EXAMPLES = """\
examples:
  apportion train --outcomes gsm8k.jsonl --budget 4 --out models/gsm8k-b4
  apportion train --outcomes gsm8k.jsonl --budget 4 --policy plugin --out models/gsm8k-plugin

Policies: uniform, heuristic (longer questions get more), imitation-lr and imitation-gbt (a classifier of
the oracle's labels), plugin (predicted accuracy curves; its budget can change later), adaptive (samples in
rounds and stops when the answers agree; the default).
"""

_EVALUATE_EXAMPLES = """\
examples:
  apportion evaluate --outcomes gsm8k.jsonl --budgets 2,4,8 --out reports/gsm8k
  apportion evaluate --outcomes held-out.jsonl --model models/gsm8k-b4 --out reports/held-out
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        """One line naming what is wrong, instead of argparse's usage dump."""
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = _build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except (DataFileError, OracleInputError) as exc:
        print(f"apportion {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("apportion: interrupted; no output was written", file=sys.stderr)
        return 130


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="apportion",
        description="Decide how many samples each LLM query deserves under a compute budget.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)

    example = sub.add_parser(
        "example",
        help="write a synthetic outcome file to try the other commands on",
        description="Write a synthetic outcome file (documented in oracle/synthetic.py): same seed, same file.",
    )
    example.add_argument("--out", required=True, help="where to write the outcome file (.jsonl)")
    example.add_argument("--questions", type=_positive_int, default=400, help="number of questions (400)")
    example.add_argument("--samples", type=_positive_int, default=32, help="samples per question (32)")
    example.add_argument("--seed", type=int, default=0, help="random seed (0)")
    example.set_defaults(run=commands.example)

    reading = _Parser(add_help=False)  # every command that reads an outcome file
    reading.add_argument("--outcomes", required=True, metavar="FILE", help="recorded samples, .jsonl or .jsonl.gz")
    reading.add_argument(
        "--actions",
        type=_actions,
        default=_actions(DEFAULT_ACTIONS),
        metavar="K,K,...",
        help=f"the sample counts to choose from ({DEFAULT_ACTIONS})",
    )

    common = _Parser(add_help=False, parents=[reading])
    common.add_argument(
        "--aggregator",
        choices=AGGREGATORS,
        default="majority",
        help="how k samples become one answer: majority vote, best-of by score, or pass@k (majority)",
    )
    common.add_argument(
        "--cost",
        choices=COST_UNITS,
        default="samples",
        help="cost of an action: k samples, or k times the question's mean tokens per sample (samples)",
    )
    common.add_argument(
        "--draws",
        type=_positive_int,
        default=None,
        metavar="N",
        help="estimate majority vote from N random orders of the samples instead of exactly",
    )
    common.add_argument("--seed", type=int, default=0, help="seed for --draws (0)")

    label = sub.add_parser(
        "label",
        parents=[common],
        help="label each question with the oracle's sample count at a budget",
        description="Solve the oracle at a mean-cost budget and write one label per question.",
        epilog=_LABEL_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    label.add_argument("--budget", type=_finite_float, required=True, help="mean cost per question allowed")
    label.add_argument("--out", required=True, metavar="FILE", help="where to write the labels (.jsonl)")
    label.set_defaults(run=commands.label)

    front = sub.add_parser(
        "frontier",
        parents=[common],
        help="the oracle's whole accuracy-vs-cost curve",
        description="Compute the oracle's accuracy at every mean cost, against uniform allocation.",
        epilog=_FRONTIER_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    front.add_argument("--out", metavar="FILE", help="also write every frontier vertex here (.jsonl)")
    front.set_defaults(run=commands.frontier)

    learning = _Parser(add_help=False, parents=[reading])
    learning.add_argument("--folds", type=_at_least_two, default=5, help="cross-validation folds, by question (5)")
    learning.add_argument("--seed", type=int, default=0, help="seed for folds and replays (0)")

    fit = sub.add_parser(
        "train",
        parents=[learning],
        help="fit an allocation policy and save it as a model directory",
        description="Fit a policy on recorded outcomes at a budget (majority vote, cost in samples) and save it "
        "with a manifest that records its held-out metrics.",
        epilog=_TRAIN_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    fit.add_argument("--budget", type=_finite_float, required=True, help="mean samples per query to aim for")
    fit.add_argument(
        "--policy", choices=POLICIES, default=DEFAULT_POLICY, help=f"which policy to fit ({DEFAULT_POLICY})"
    )
    fit.add_argument("--out", required=True, metavar="MODEL_DIR", help="directory to write the model to")
    fit.set_defaults(run=learn.train)

    judge = sub.add_parser(
        "evaluate",
        parents=[learning],
        help="compare policies, or judge a trained model, against the oracle",
        description="Cross-validate every policy (or judge one saved model on held-out outcomes) and write "
        "report.json, report.md, frontier.png and decisions.jsonl.",
        epilog=_EVALUATE_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    judge.add_argument("--model", metavar="MODEL_DIR", help="a model from apportion train, judged on --outcomes")
    judge.add_argument(
        "--budgets",
        type=_budgets,
        default=_budgets("2,4,8"),
        metavar="B,B,...",
        help="mean samples per query to compare at (2,4,8); a saved model is judged at the budget it was "
        "trained for, except a plugin model, whose budget can move",
    )
    judge.add_argument("--out", required=True, metavar="REPORT_DIR", help="directory for the report files")
    judge.set_defaults(run=learn.evaluate)
    add_serving_commands(sub, _finite_float, _positive_int)
    return parser


def _actions(text: str) -> tuple[int, ...]:
    try:
        ks = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of sample counts") from None
    if any(k < 1 for k in ks) or len(set(ks)) != len(ks):
        raise argparse.ArgumentTypeError(f"{text!r}: sample counts must be distinct and at least 1")
    return ks


def _number(convert: Callable[[str], T], kind: str, accept: Callable[[T], bool], rule: str) -> Callable[[str], T]:
    """An argparse type: `convert`, then `accept`, with one-line messages naming the offending text."""

    def parse(text: str) -> T:
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {kind}") from None
        if not accept(value):
            raise argparse.ArgumentTypeError(f"{text!r} {rule}")
        return value

    return parse


def _budgets(text: str) -> list[float]:
    return [_finite_float(part) for part in text.split(",")]


_finite_float = _number(float, "a number", lambda v: math.isfinite(v) and v > 0, "must be a positive, finite number")
_positive_int = _number(int, "a whole number", lambda v: v >= 1, "must be at least 1")
_at_least_two = _number(int, "a whole number", lambda v: v >= 2, "must be at least 2")


if __name__ == "__main__":
    sys.exit(main())
