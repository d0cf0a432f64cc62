"""Benchmark the oracle at scale: solve at a budget and the whole frontier, 1,000,000 questions × 8 actions;
and a fleet case: 1,000,000 questions × 90 actions (3 models × 6 k, and the cascades `oracle.actions.menu`
offers between them), whose costs differ by question (a cascade's expected cost depends on how often it
escalates), solved at a budget in cost units.

Times are compared with one numpy argmax pass over the same (n, K) array, measured in the same run, so the
ratios say how many "passes" each costs whatever the machine. The first call of each pays the operating
system for fresh memory (page faults, slow on these VMs); later calls reuse it. Both are reported.

    python bench/solver.py [--questions 1000000] [--repeats 5] [--out bench/results/solver.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from oracle.actions import menu
from oracle.frontier import frontier
from oracle.solver import solve


def curves(n: int, ks: np.ndarray, seed: int = 0) -> np.ndarray:
    """Rising, saturating accuracy curves with noise: easy, hard and in-between questions."""
    rng = np.random.default_rng(seed)
    base = rng.beta(0.7, 0.7, size=(n, 1))
    ceiling = rng.uniform(0, 1, size=(n, 1))
    rate = rng.uniform(0, 0.3, size=(n, 1))
    rise = (1 - base) * ceiling * (1 - np.exp(-rate * ks[None, :]))
    return np.clip(base + rise + rng.normal(0, 0.01, size=(n, ks.size)), 0, 1)


FLEET = {"small": 1.0, "medium": 5.0, "large": 20.0}  # price per sample
FLEET_KS = (1, 2, 4, 8, 16, 32)


def fleet_curves(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, int]:
    """(acc, cost) over every action of a three-model menu: each model's majority curves are `curves` lifted
    by its strength; a cascade escalates with a per-question chance that falls as the cheap model's accuracy
    rises, and its accuracy and expected cost blend the two models' by that chance."""
    rng = np.random.default_rng(seed)
    ks = np.array(FLEET_KS, dtype=np.float64)
    own = {}
    for strength, model in zip((0.0, 0.35, 0.6), FLEET, strict=True):
        base = curves(n, ks, seed=seed + len(own) + 1)
        own[model] = base + strength * (1 - base) * rng.uniform(0.5, 1.0, size=(n, 1))
    actions = menu(dict.fromkeys(FLEET, max(FLEET_KS)), FLEET_KS, FLEET)
    acc = np.empty((n, len(actions)))
    cost = np.empty((n, len(actions)))
    for column, action in enumerate(actions):
        first = own[action.model][:, FLEET_KS.index(action.samples)]
        cost[:, column] = action.samples * FLEET[action.model]
        if action.then is None:
            acc[:, column] = first
            continue
        then = own[action.then][:, FLEET_KS.index(action.then_samples)]
        escalates = np.clip((1 - first) * action.below * 1.5 + rng.normal(0, 0.05, n), 0, 1)
        acc[:, column] = (1 - escalates) * first + escalates * np.maximum(then, first)
        cost[:, column] += escalates * action.then_samples * FLEET[action.then]
    return acc, cost, len(actions)


def timed(fn: Callable[[], object], repeats: int) -> dict[str, float]:
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        seconds.append(time.perf_counter() - start)
    return {"first_s": seconds[0], "median_s": statistics.median(seconds[1:] or seconds)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--questions", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--budget", type=float, default=8.0)
    parser.add_argument("--fleet-budget", type=float, default=8.0, help="in price units (a small sample costs 1)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "solver.json")
    args = parser.parse_args()

    report = single_model(args) | {"fleet": several_models(args)}
    report["machine"] = (
        f"{platform.machine()}, {platform.python_implementation()} {platform.python_version()}, numpy {np.__version__}"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"{args.questions:,} questions × {len(report['actions'])} actions, budget {args.budget:g} samples")
    for name in ("argmax", "solve", "frontier"):
        row = report[name]
        print(f"  {name:<9} first {row['first_s']:.3f} s   median {row['median_s']:.3f} s")
    print(f"  solve = {report['solve_vs_argmax']:.1f} argmax passes, frontier = {report['frontier_vs_argmax']:.1f}")
    print(f"  solve accuracy {report['solve_accuracy']:.6f} at mean cost {report['solve_avg_cost']:.4f}", end="; ")
    print(f"LP bound {report['lp_bound']:.6f}")
    fleet = report["fleet"]
    print(
        f"{args.questions:,} questions × {fleet['actions']} fleet actions (costs per question), "
        f"budget {args.fleet_budget:g}"
    )
    for name in ("argmax", "solve"):
        row = fleet[name]
        print(f"  {name:<9} first {row['first_s']:.3f} s   median {row['median_s']:.3f} s")
    print(f"  solve = {fleet['solve_vs_argmax']:.1f} argmax passes")
    print(f"  accuracy {fleet['accuracy']:.6f} at mean cost {fleet['avg_cost']:.4f}; LP bound {fleet['lp_bound']:.6f}")
    print(f"wrote {args.out}")


def single_model(args: argparse.Namespace) -> dict[str, Any]:
    ks = 2.0 ** np.arange(8)  # 1, 2, 4, ..., 128 samples
    acc = curves(args.questions, ks)
    argmax = timed(lambda: np.argmax(acc, axis=1), args.repeats)
    solved = timed(lambda: solve(acc, ks, args.budget), args.repeats)
    front = timed(lambda: frontier(acc, ks), args.repeats)
    solution = solve(acc, ks, args.budget)
    return {
        "questions": args.questions,
        "actions": ks.astype(int).tolist(),
        "budget": args.budget,
        "argmax": argmax,
        "solve": solved,
        "frontier": front,
        "solve_vs_argmax": solved["median_s"] / argmax["median_s"],
        "frontier_vs_argmax": front["median_s"] / argmax["median_s"],
        "solve_avg_cost": solution.avg_cost,
        "solve_accuracy": solution.accuracy,
        "lp_bound": solution.upper_bound,
        "frontier_vertices": int(frontier(acc, ks).avg_cost.size),
    }


def several_models(args: argparse.Namespace) -> dict[str, Any]:
    acc, cost, count = fleet_curves(args.questions)
    argmax = timed(lambda: np.argmax(acc, axis=1), args.repeats)
    solved = timed(lambda: solve(acc, cost, args.fleet_budget), args.repeats)
    solution = solve(acc, cost, args.fleet_budget)
    return {
        "models": FLEET,
        "actions": count,
        "budget": args.fleet_budget,
        "argmax": argmax,
        "solve": solved,
        "solve_vs_argmax": solved["median_s"] / argmax["median_s"],
        "avg_cost": solution.avg_cost,
        "accuracy": solution.accuracy,
        "lp_bound": solution.upper_bound,
    }


if __name__ == "__main__":
    main()
