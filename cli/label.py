"""`apportion label`: the oracle's action for every question at a mean-cost budget."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from cli.inputs import load_curves, note_short_questions
from cli.options import Parser, curve_options, positive_float
from files.outcomes import finite_or_none, write_jsonl
from oracle.action_curves import ActionCurves
from oracle.costs import uniform_accuracy
from oracle.solver import solve

HELP = "label each question with the oracle's sample count at a budget"
DESCRIPTION = "Solve the oracle at a mean-cost budget and write one label per question."
EXAMPLES = """\
examples:
  apportion label --outcomes gsm8k.jsonl --budget 4 --out labels.jsonl
  apportion label --outcomes math.jsonl.gz --actions 1,2,4,8 --budget 3 --aggregator best-of --out labels.jsonl
  apportion label --outcomes runs.jsonl --cost tokens --budget 1500 --out labels.jsonl   # tokens per question

Several models: one --outcomes per model (NAME=FILE names it), prices per sample with --price:
  apportion label --outcomes small=a.jsonl --outcomes large=b.jsonl --price large=20 --budget 8 --out labels.jsonl

Each line of --out is {"id", "model", "action" (samples k), "expected_accuracy", "cost"}, and for a cascade
(k samples of the model, then "then_samples" of "then" when the top answer's share is below "escalate_below")
those fields too; the last line of stdout is a JSON summary with budget, lambda, avg_cost, accuracy, n, and
each model's questions and mean spend. Costs and budgets are in --cost units times the prices.
"""
PARENTS = (curve_options,)


def add_arguments(parser: Parser) -> None:
    parser.add_argument("--budget", type=positive_float, required=True, help="mean cost per question allowed")
    parser.add_argument("--out", required=True, metavar="FILE", help="where to write the labels (.jsonl)")


def run(args: argparse.Namespace) -> int:
    curves = load_curves(args)
    cost = curves.cost
    solution = solve(curves.acc, cost, args.budget)
    note_short_questions(curves)
    rows = np.arange(curves.n)
    chosen = solution.actions
    chosen_cost = np.broadcast_to(cost, curves.acc.shape)[rows, chosen]
    chosen_acc = curves.acc[rows, chosen]
    write_jsonl(Path(args.out), _label_rows(curves, chosen, chosen_acc, chosen_cost))

    counts = np.bincount(chosen, minlength=len(curves.actions))
    n = curves.n
    uniform = uniform_accuracy(curves.acc, cost, args.budget)
    routed = _random_routing(curves, args.budget)
    models = {
        model: {
            "questions": int(sum(counts[c] for c, a in enumerate(curves.actions) if a.model == model)),
            "spend": float(curves.spend_on(model)[rows, chosen].mean()),
        }
        for model in curves.models
    }
    print(f"labelled {n} questions at a budget of {args.budget:g} {args.cost} per question")
    width = max(len(action.label()) for action in curves.actions)
    print(f"{'action':>{width}} {'questions':>10} {'share':>7}")
    for action, count in zip(curves.actions, counts.tolist(), strict=True):
        if count or not action.cascade:
            print(f"{action.label():>{width}} {count:>10} {count / n:>7.1%}")
    print(
        f"oracle accuracy {solution.accuracy:.4f} at mean cost {solution.avg_cost:.4g} (λ = {solution.lam:.4g}); "
        f"one action for every question at the same budget: {uniform:.4f}"
        + (f"; random routing between the models: {routed:.4f}" if routed is not None else "")
    )
    summary: dict[str, Any] = {
        "budget": args.budget,
        "lambda": solution.lam,
        "avg_cost": solution.avg_cost,
        "accuracy": solution.accuracy,
        "n": n,
        "upper_bound": solution.upper_bound,
        "uniform_accuracy": finite_or_none(uniform),
        **({"random_routing_accuracy": finite_or_none(routed)} if routed is not None else {}),
        "actions": {
            action.label(): count for action, count in zip(curves.actions, counts.tolist(), strict=True) if count
        },
        "models": models,
        "prices": {
            model: float(curves.unit_cost[0, i]) if args.cost == "samples" else None
            for i, model in enumerate(curves.models)
        },
        "aggregator": args.aggregator,
        "cost_unit": args.cost,
        "out": str(args.out),
    }
    if args.draws:
        chosen_err = curves.stderr[rows, chosen]
        summary["accuracy_stderr"] = float(np.sqrt(np.sum(chosen_err**2)) / n)
    print(json.dumps(summary))
    return 0


def _label_rows(
    curves: ActionCurves, chosen: np.ndarray, chosen_acc: np.ndarray, chosen_cost: np.ndarray
) -> Iterator[dict[str, Any]]:
    columns = (curves.ids, chosen.tolist(), chosen_acc.tolist(), chosen_cost.tolist())
    for qid, column, acc, cost in zip(*columns, strict=True):
        action = curves.actions[column]
        yield {"id": qid, **action.record(), "expected_accuracy": round(acc, 6), "cost": round(cost, 6)}


def _random_routing(curves: ActionCurves, budget: float) -> float | None:
    """With several models, the baseline model choice is measured from: each query to the cheapest model's
    smallest action or the dearest's, at random, in the share that spends the budget (None with one model)."""
    if len(curves.models) < 2:
        return None
    ends = list(curves.single_sample_ends())
    cost = np.broadcast_to(curves.cost, curves.acc.shape)[:, ends]
    return uniform_accuracy(curves.acc[:, ends], cost, budget)
