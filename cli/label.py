"""`apportion label`: the oracle's action for every question at a mean-cost budget."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from cli.options import Parser, curve_options, load_curves, note_short_questions, positive_float
from files.outcomes import finite_or_none, write_jsonl
from oracle.costs import action_costs, uniform_accuracy
from oracle.curves import Curves
from oracle.solver import solve

HELP = "label each question with the oracle's sample count at a budget"
DESCRIPTION = "Solve the oracle at a mean-cost budget and write one label per question."
EXAMPLES = """\
examples:
  apportion label --outcomes gsm8k.jsonl --budget 4 --out labels.jsonl
  apportion label --outcomes math.jsonl.gz --actions 1,2,4,8 --budget 3 --aggregator best-of --out labels.jsonl
  apportion label --outcomes runs.jsonl --cost tokens --budget 1500 --out labels.jsonl   # tokens per question

Each line of --out is {"id", "action" (samples k), "expected_accuracy", "cost"}; the last line of stdout
is a JSON summary with budget, lambda, avg_cost, accuracy and n.
"""
PARENTS = (curve_options,)


def add_arguments(parser: Parser) -> None:
    parser.add_argument("--budget", type=positive_float, required=True, help="mean cost per question allowed")
    parser.add_argument("--out", required=True, metavar="FILE", help="where to write the labels (.jsonl)")


def run(args: argparse.Namespace) -> int:
    curves = load_curves(args)
    cost = action_costs(curves, args.cost)
    solution = solve(curves.acc, cost, args.budget)
    note_short_questions(curves)
    rows = np.arange(len(curves.ids))
    chosen_cost = np.broadcast_to(cost, curves.acc.shape)[rows, solution.actions]
    chosen_acc = curves.acc[rows, solution.actions]
    write_jsonl(Path(args.out), _label_rows(curves, solution.actions, chosen_acc, chosen_cost))

    counts = np.bincount(solution.actions, minlength=len(curves.ks))
    n = len(curves.ids)
    uniform = uniform_accuracy(curves.acc, cost, args.budget)
    print(f"labelled {n} questions from {args.outcomes} at a budget of {args.budget:g} {args.cost} per question")
    print(f"{'samples':>9} {'questions':>10} {'share':>7}")
    for k, count in zip(curves.ks, counts.tolist(), strict=True):
        print(f"{k:>9} {count:>10} {count / n:>7.1%}")
    print(
        f"oracle accuracy {solution.accuracy:.4f} at mean cost {solution.avg_cost:.4g} (λ = {solution.lam:.4g}); "
        f"uniform allocation at the same budget: {uniform:.4f}"
    )
    summary: dict[str, Any] = {
        "budget": args.budget,
        "lambda": solution.lam,
        "avg_cost": solution.avg_cost,
        "accuracy": solution.accuracy,
        "n": n,
        "upper_bound": solution.upper_bound,
        "uniform_accuracy": finite_or_none(uniform),
        "actions": dict(zip(map(str, curves.ks), counts.tolist(), strict=True)),
        "aggregator": args.aggregator,
        "cost_unit": args.cost,
        "out": str(args.out),
    }
    if args.draws:
        chosen_err = curves.stderr[rows, solution.actions]
        summary["accuracy_stderr"] = float(np.sqrt(np.sum(chosen_err**2)) / n)
    print(json.dumps(summary))
    return 0


def _label_rows(
    curves: Curves, actions: np.ndarray, chosen_acc: np.ndarray, chosen_cost: np.ndarray
) -> Iterator[dict[str, Any]]:
    ks = curves.ks
    columns = (curves.ids, actions.tolist(), chosen_acc.tolist(), chosen_cost.tolist())
    for qid, action, acc, cost in zip(*columns, strict=True):
        yield {"id": qid, "action": ks[action], "expected_accuracy": round(acc, 6), "cost": round(cost, 6)}
