"""The subcommands: read files, call the pure core, write files and a report."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from cli.outcome_files import DataFileError, read_outcomes, write_jsonl
from cli.report import finite_or_none
from oracle.costs import action_costs, uniform_accuracy
from oracle.curves import Curves, accuracy_curves
from oracle.frontier import frontier as oracle_frontier
from oracle.solver import solve
from oracle.synthetic import synthetic_outcomes

_PROGRESS_FROM_BYTES = 4 * 2**20  # smaller files are read before a bar would be worth drawing


def example(args: argparse.Namespace) -> int:
    questions = synthetic_outcomes(args.questions, args.samples, args.seed)
    count = write_jsonl(Path(args.out), (q.to_record() for q in questions))
    print(f"wrote {count} synthetic questions with {args.samples} samples each to {args.out}")
    return 0


def label(args: argparse.Namespace) -> int:
    curves = _load_curves(args)
    cost = action_costs(curves, args.cost)
    solution = solve(curves.acc, cost, args.budget)
    _note_short_questions(curves)
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


def frontier(args: argparse.Namespace) -> int:
    curves = _load_curves(args)
    cost = action_costs(curves, args.cost)
    curve = oracle_frontier(curves.acc, cost)
    _note_short_questions(curves)
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


def _load_curves(args: argparse.Namespace) -> Curves:
    path = Path(args.outcomes)
    size = path.stat().st_size if path.is_file() else 0
    with tqdm(
        total=size,
        unit="B",
        unit_scale=True,
        desc="reading outcomes",
        file=sys.stderr,
        disable=True if size < _PROGRESS_FROM_BYTES else None,
        leave=False,
    ) as bar:
        curves = accuracy_curves(
            read_outcomes(path, bar.update),
            args.actions,
            args.aggregator,
            draws=args.draws,
            seed=args.seed,
        )
    if not curves.ids:
        raise DataFileError(f"{path}: holds no questions")
    return curves


def _note_short_questions(curves: Curves) -> None:
    short = int(np.sum(curves.recorded < max(curves.ks)))
    if short:
        print(
            f"note: {short} of {len(curves.ids)} questions have fewer than {max(curves.ks)} samples; "
            "their curves are held flat beyond the samples recorded",
            file=sys.stderr,
        )


def _label_rows(
    curves: Curves, actions: np.ndarray, chosen_acc: np.ndarray, chosen_cost: np.ndarray
) -> Iterator[dict[str, Any]]:
    ks = curves.ks
    columns = (curves.ids, actions.tolist(), chosen_acc.tolist(), chosen_cost.tolist())
    for qid, action, acc, cost in zip(*columns, strict=True):
        yield {"id": qid, "action": ks[action], "expected_accuracy": round(acc, 6), "cost": round(cost, 6)}


def _frontier_rows(avg_cost: np.ndarray, accuracy: np.ndarray, lam: np.ndarray) -> Iterator[dict[str, Any]]:
    for spend, acc, price in zip(avg_cost.tolist(), accuracy.tolist(), lam.tolist(), strict=True):
        yield {"avg_cost": spend, "accuracy": acc, "lambda": finite_or_none(price)}
