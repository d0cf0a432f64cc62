"""`apportion frontier`: the oracle's whole accuracy-versus-cost curve, against uniform allocation."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from cli.options import Parser, curve_options, load_curves, note_short_questions
from files.outcomes import finite_or_none, write_jsonl
from oracle.costs import action_costs
from oracle.frontier import frontier

HELP = "the oracle's whole accuracy-vs-cost curve"
DESCRIPTION = "Compute the oracle's accuracy at every mean cost, against uniform allocation."
EXAMPLES = """\
examples:
  apportion frontier --outcomes gsm8k.jsonl
  apportion frontier --outcomes gsm8k.jsonl --actions 1,2,4,8,16,32 --out frontier.jsonl

The table compares, at each action's cost, giving every question that action (uniform) with the oracle's
allocation at the same mean cost. --out receives every vertex of the frontier as {"avg_cost", "accuracy",
"lambda"}.
"""
PARENTS = (curve_options,)


def add_arguments(parser: Parser) -> None:
    parser.add_argument("--out", metavar="FILE", help="also write every frontier vertex here (.jsonl)")


def run(args: argparse.Namespace) -> int:
    curves = load_curves(args)
    cost = action_costs(curves, args.cost)
    curve = frontier(curves.acc, cost)
    note_short_questions(curves)
    if args.out:
        write_jsonl(Path(args.out), _frontier_rows(curve.avg_cost, curve.accuracy, curve.lam))
    mean_cost = np.broadcast_to(cost, curves.acc.shape).mean(axis=0)
    mean_acc = curves.acc.mean(axis=0)
    print(f"oracle frontier of {len(curves.ids)} questions from {args.outcomes}", end=" ")
    print(f"({args.aggregator}, cost in {args.cost})")
    print(f"{'samples':>9} {'mean cost':>10} {'uniform':>8} {'oracle':>8} {'gain':>7}")
    for k, spend, flat in zip(curves.ks, mean_cost.tolist(), mean_acc.tolist(), strict=True):
        best = curve.accuracy_at(spend)
        gain = round(best - flat, 4) + 0.0  # no "-0.0000" for a gain that is zero up to rounding
        print(f"{k:>9} {spend:>10.4g} {flat:>8.4f} {best:>8.4f} {gain:>+7.4f}")
    print(
        json.dumps(
            {
                "points": int(curve.avg_cost.size),
                "min_cost": float(curve.avg_cost[0]),
                "max_cost": float(curve.avg_cost[-1]),
                "max_accuracy": float(curve.accuracy[-1]),
                "n": len(curves.ids),
                "out": args.out,
            }
        )
    )
    return 0


def _frontier_rows(avg_cost: np.ndarray, accuracy: np.ndarray, lam: np.ndarray) -> Iterator[dict[str, Any]]:
    for spend, acc, lam_at in zip(avg_cost.tolist(), accuracy.tolist(), lam.tolist(), strict=True):
        yield {"avg_cost": spend, "accuracy": acc, "lambda": finite_or_none(lam_at)}
