"""Benchmark the oracle at scale: solve at a budget and the whole frontier, 1,000,000 questions × 8 actions.

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

import numpy as np

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
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "solver.json")
    args = parser.parse_args()

    ks = 2.0 ** np.arange(8)  # 1, 2, 4, ..., 128 samples
    acc = curves(args.questions, ks)
    argmax = timed(lambda: np.argmax(acc, axis=1), args.repeats)
    solved = timed(lambda: solve(acc, ks, args.budget), args.repeats)
    front = timed(lambda: frontier(acc, ks), args.repeats)
    solution = solve(acc, ks, args.budget)
    curve = frontier(acc, ks)
    report = {
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
        "frontier_vertices": int(curve.avg_cost.size),
        "machine": f"{platform.machine()}, {platform.python_implementation()} {platform.python_version()}, "
        f"numpy {np.__version__}",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"{args.questions:,} questions × {ks.size} actions, budget {args.budget:g} samples")
    for name in ("argmax", "solve", "frontier"):
        row = report[name]
        print(f"  {name:<9} first {row['first_s']:.3f} s   median {row['median_s']:.3f} s")
    print(f"  solve = {report['solve_vs_argmax']:.1f} argmax passes, frontier = {report['frontier_vs_argmax']:.1f}")
    print(f"  solve accuracy {solution.accuracy:.6f} at mean cost {solution.avg_cost:.4f}", end="; ")
    print(f"LP bound {solution.upper_bound:.6f}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
