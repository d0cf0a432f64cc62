"""`apportion evaluate`: cross-validate every policy against the oracle, or judge one saved model."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from allocator.data import Outcomes
from allocator.evaluate import Reference, Result, cost_to_reach, cross_validate
from allocator.learned import PlugIn
from allocator.registry import policies_for
from allocator.routing import RandomRouting, weak_and_strong
from cli.inputs import load_outcomes, quietly
from cli.options import Parser, budgets, learning_options
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
  apportion evaluate --outcomes llama.jsonl --outcomes gpt4.jsonl --price gpt-4=20 --budgets 4,8,12 --out reports/pair

With several models the report also has every model alone at each k, random routing, the best fixed cascade,
each model's share of the spend, and the cost at which each policy first reaches 95% of the dearest model's
single-sample accuracy.
"""
PARENTS = (learning_options,)


def add_arguments(parser: Parser) -> None:
    parser.add_argument("--model", metavar="MODEL_DIR", help="a model from apportion train, judged on --outcomes")
    parser.add_argument(
        "--budgets",
        type=budgets,
        default=budgets("2,4,8"),
        metavar="B,B,...",
        help="mean cost per query to compare at (2,4,8), in --cost units times the prices (with one model at "
        "price 1: samples); a saved model is judged at the budget it was "
        "trained for, except a plugin model, whose budget can move",
    )
    parser.add_argument("--out", required=True, metavar="REPORT_DIR", help="directory for the report files")


@quietly
def run(args: argparse.Namespace) -> int:
    data = load_outcomes(args)
    several = len(data.models) > 1
    meta: dict[str, Any] = {
        "outcomes": ", ".join(str(source.path) for source in args.outcomes),
        "questions": data.n,
        "actions": list(data.ks) if not several else [a.label() for a in data.actions if not a.cascade],
        "models": list(data.models),
        "prices": data.curves.prices,
        "cost_unit": args.cost,
    }
    if args.model:
        results, meta["protocol"] = _evaluate_model(args, data)
    else:
        baseline = "random-routing" if several else "uniform"
        policies = {name: make for name, make in policies_for(len(data.models)).items() if name != baseline}
        with tqdm(total=len(args.budgets) * len(policies), desc="evaluating", file=sys.stderr) as bar:
            results = []
            for result in cross_validate(data, policies, args.budgets, folds=args.folds, seed=args.seed):
                results.append(result)
                bar.update(result.policy in policies)
        meta["protocol"] = f"{args.folds}-fold cross-validation by question"
        if several:
            meta["cost_to_reach"] = _cost_to_reach(args, data, policies)
    paths = write_report(Path(args.out), data, results, meta)
    _print_table(results)
    print(json.dumps({"out": str(args.out), "files": [p.name for p in paths], "results": len(results)}))
    return 0


def _cost_to_reach(args: argparse.Namespace, data: Outcomes, policies: dict[str, Any]) -> dict[str, Any]:
    """The mean cost at which each policy first reaches 95% of the strongest model's single-sample accuracy,
    over a grid of budgets up to that sample's cost."""
    weak, strong = weak_and_strong(data)
    target = 0.95 * float(data.acc[:, strong].mean())
    reference_cost = float(data.mean_cost[strong])
    grid = [round(float(b), 3) for b in np.linspace(data.mean_cost[weak], reference_cost, 20)]
    reaching = {"random-routing": RandomRouting} | {n: m for n, m in policies.items() if n != "imitation-lr"}
    costs = cost_to_reach(data, reaching, target, grid, folds=args.folds, seed=args.seed)
    model = data.actions[strong]
    return {
        "target": target,
        "share": 0.95,
        "model": f"{model.model}×{model.samples}",
        "reference_cost": reference_cost,
        "grid": grid,
        "costs": costs,
    }


def _evaluate_model(args: argparse.Namespace, data: Outcomes) -> tuple[list[Result], str]:
    policy, manifest = load_model(Path(args.model))
    trained = list(data.ks) if len(data.models) == 1 else [a.record() for a in data.actions]
    if manifest["actions"] != trained:
        raise DataFileError(f"{args.model}: trained for other actions than these outcomes give ({manifest['actions']})")
    moves = isinstance(policy, PlugIn) or (len(data.models) > 1 and policy.movable)
    judged_at = args.budgets if moves else [float(manifest["budget"])]
    if judged_at != args.budgets:
        print(f"note: a {manifest['policy']} model is judged at its training budget, {judged_at[0]:g}", file=sys.stderr)
    results: list[Result] = []
    for budget in judged_at:
        reference = Reference.at(data, budget)
        decisions = policy.evaluate(data, seed=args.seed, budget=budget)
        results += [*reference.results(), Result(manifest["policy"], decisions, reference)]
    return results, f"model {args.model} on held-out outcomes"


def _print_table(results: list[Result]) -> None:
    width = max(14, *(len(r.policy) for r in results))
    print(f"{'budget':>6} {'policy':<{width}} {'accuracy':>8} {'cost':>8} {'samples':>8} {'captured':>9}")
    for result in results:
        captured = result.gain_captured
        shown = f"{captured:>9.0%}" if captured == captured else f"{'–':>9}"
        print(
            f"{result.budget:>6g} {result.policy:<{width}} {result.accuracy:>8.4f} {result.cost:>8.3f} "
            f"{result.samples:>8.3f} {shown}"
        )
