"""`apportion frontier`: the oracle's whole accuracy-versus-cost curve, against uniform allocation."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from cli.inputs import load_curves, note_short_questions
from cli.options import Parser, curve_options
from files.outcomes import finite_or_none, write_jsonl
from oracle.frontier import frontier

HELP = "the oracle's whole accuracy-vs-cost curve"
DESCRIPTION = "Compute the oracle's accuracy at every mean cost, against uniform allocation."
EXAMPLES = """\
examples:
  apportion frontier --outcomes gsm8k.jsonl
  apportion frontier --outcomes gsm8k.jsonl --actions 1,2,4,8,16,32 --out frontier.jsonl

Several models: one --outcomes per model, --price NAME=X for each price; cascades are actions too.

The table compares, at each action's cost, giving every question that action (uniform) with the oracle's
allocation at the same mean cost. --out receives every vertex of the frontier as {"avg_cost", "accuracy",
"lambda"}.
"""
PARENTS = (curve_options,)


def add_arguments(parser: Parser) -> None:
    parser.add_argument("--out", metavar="FILE", help="also write every frontier vertex here (.jsonl)")


def run(args: argparse.Namespace) -> int:
    curves = load_curves(args)
    cost = curves.cost
    curve = frontier(curves.acc, cost)
    note_short_questions(curves)
    if args.out:
        write_jsonl(Path(args.out), _frontier_rows(curve.avg_cost, curve.accuracy, curve.lam))
    mean_cost = np.broadcast_to(cost, curves.acc.shape).mean(axis=0)
    mean_acc = curves.acc.mean(axis=0)
    print(f"oracle frontier of {curves.n} questions ({args.aggregator}, cost in {args.cost})")
    width = max(len(action.label()) for action in curves.actions)
    print(f"{'action':>{width}} {'mean cost':>10} {'uniform':>8} {'oracle':>8} {'gain':>7}")
    for action, spend, flat in zip(curves.actions, mean_cost.tolist(), mean_acc.tolist(), strict=True):
        best = curve.accuracy_at(spend)
        gain = round(best - flat, 4) + 0.0  # no "-0.0000" for a gain that is zero up to rounding
        print(f"{action.label():>{width}} {spend:>10.4g} {flat:>8.4f} {best:>8.4f} {gain:>+7.4f}")
    print(
        json.dumps(
            {
                "points": int(curve.avg_cost.size),
                "min_cost": float(curve.avg_cost[0]),
                "max_cost": float(curve.avg_cost[-1]),
                "max_accuracy": float(curve.accuracy[-1]),
                "n": curves.n,
                "out": args.out,
            }
        )
    )
    return 0


def _frontier_rows(avg_cost: np.ndarray, accuracy: np.ndarray, lam: np.ndarray) -> Iterator[dict[str, Any]]:
    for spend, acc, lam_at in zip(avg_cost.tolist(), accuracy.tolist(), lam.tolist(), strict=True):
        yield {"avg_cost": spend, "accuracy": acc, "lambda": finite_or_none(lam_at)}
