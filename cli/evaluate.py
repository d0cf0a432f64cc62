"""`apportion evaluate`: cross-validate every policy against the oracle, or judge one saved model."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tqdm import tqdm

from allocator.data import Outcomes
from allocator.evaluate import Reference, Result, cross_validate
from allocator.learned import PlugIn
from allocator.registry import POLICIES
from cli.options import Parser, budgets, learning_options, load_outcomes, quietly
from files.errors import DataFileError
from files.models import load_model
from files.report import write_report

HELP = "compare policies, or judge a trained model, against the oracle"
DESCRIPTION = (
    "Cross-validate every policy (or judge one saved model on held-out outcomes) and write "
    "report.json, report.md, frontier.png and decisions.jsonl."
)
EXAMPLES = """\
examples:
  apportion evaluate --outcomes gsm8k.jsonl --budgets 2,4,8 --out reports/gsm8k
  apportion evaluate --outcomes held-out.jsonl --model models/gsm8k-b4 --out reports/held-out
"""
PARENTS = (learning_options,)


def add_arguments(parser: Parser) -> None:
    parser.add_argument("--model", metavar="MODEL_DIR", help="a model from apportion train, judged on --outcomes")
    parser.add_argument(
        "--budgets",
        type=budgets,
        default=budgets("2,4,8"),
        metavar="B,B,...",
        help="mean samples per query to compare at (2,4,8); a saved model is judged at the budget it was "
        "trained for, except a plugin model, whose budget can move",
    )
    parser.add_argument("--out", required=True, metavar="REPORT_DIR", help="directory for the report files")


@quietly
def run(args: argparse.Namespace) -> int:
    data = load_outcomes(args)
    if args.model:
        results, protocol = _evaluate_model(args, data)
    else:
        with tqdm(total=len(args.budgets) * (len(POLICIES) - 1), desc="evaluating", file=sys.stderr) as bar:
            policies = {name: make for name, make in POLICIES.items() if name != "uniform"}
            results = []
            for result in cross_validate(data, policies, args.budgets, folds=args.folds, seed=args.seed):
                results.append(result)
                bar.update(result.policy not in {"oracle", "uniform"})
        protocol = f"{args.folds}-fold cross-validation by question"
    meta = {"outcomes": str(args.outcomes), "questions": data.n, "actions": list(data.ks), "protocol": protocol}
    paths = write_report(Path(args.out), data, results, meta)
    _print_table(results)
    print(json.dumps({"out": str(args.out), "files": [p.name for p in paths], "results": len(results)}))
    return 0


def _evaluate_model(args: argparse.Namespace, data: Outcomes) -> tuple[list[Result], str]:
    policy, manifest = load_model(Path(args.model))
    if tuple(manifest["actions"]) != data.ks:
        raise DataFileError(f"{args.model}: trained for actions {manifest['actions']}, not {list(data.ks)}")
    judged_at = args.budgets if isinstance(policy, PlugIn) else [float(manifest["budget"])]
    if judged_at != args.budgets:
        print(f"note: a {manifest['policy']} model is judged at its training budget, {judged_at[0]:g}", file=sys.stderr)
    results: list[Result] = []
    for budget in judged_at:
        if isinstance(policy, PlugIn):
            policy.with_budget(budget)
        reference = Reference.at(data, budget)
        results += [*reference.results(), Result(manifest["policy"], policy.evaluate(data, seed=args.seed), reference)]
    return results, f"model {args.model} on held-out outcomes"


def _print_table(results: list[Result]) -> None:
    print(f"{'budget':>6} {'policy':<14} {'accuracy':>8} {'samples':>8} {'captured':>9}")
    for result in results:
        captured = result.gain_captured
        shown = f"{captured:>9.0%}" if captured == captured else f"{'–':>9}"
        print(f"{result.budget:>6g} {result.policy:<14} {result.accuracy:>8.4f} {result.samples:>8.3f} {shown}")
