"""The adaptive policy against the published adaptive-sampling rules, on every recorded file given, paired by
question: each policy is cross-validated by question (fitted on four fifths, judged on the rest) at each
budget, and the table gives each rule's accuracy and mean cost, and adaptive's lead over it with the standard
error of the paired per-question difference.

    .venv/bin/python -m bench.adaptive_rules ../shared/data/*.jsonl --budgets 2,4,8

Writes bench/results/adaptive_rules.json and prints a markdown table, a file and budget at a time (about 25
minutes for the six shared files on a 2-core machine).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from allocator.adaptive import Adaptive
from allocator.data import Outcomes
from allocator.evaluate import cross_validate
from allocator.published import PUBLISHED_RULES
from files.outcomes import read_outcomes
from oracle.curves import DEFAULT_ACTIONS

RESULTS = Path(__file__).parent / "results" / "adaptive_rules.json"
POLICIES = {"adaptive": Adaptive} | {rule.name: rule for rule in PUBLISHED_RULES}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--budgets", default="2,4,8")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    budgets = [float(b) for b in args.budgets.split(",")]
    rows = []
    print("| file | budget | policy | accuracy | mean samples | adaptive − policy (± s.e.) |")
    print("|---|---|---|---|---|---|")
    for path in args.files:
        data = Outcomes.read(read_outcomes(path), DEFAULT_ACTIONS)
        for budget in budgets:
            started = time.perf_counter()
            judged = cross_validate(data, POLICIES, [budget])  # uniform (the yardstick) first, then POLICIES
            results = {result.policy: result.decisions for result in judged if result.policy != "oracle"}
            mine = results["adaptive"]
            for name, decisions in results.items():
                lead = mine.accuracy - decisions.accuracy
                error = float(lead.std(ddof=1) / np.sqrt(data.n))
                row = {
                    "file": path.name,
                    "questions": data.n,
                    "budget": budget,
                    "policy": name,
                    "accuracy": decisions.mean_accuracy,
                    "samples": decisions.mean_samples,
                    "adaptive_lead": float(lead.mean()),
                    "lead_stderr": error,
                }
                rows.append(row)
                shown = "" if name == "adaptive" else f"{lead.mean():+.4f} ± {error:.4f}"
                print(
                    f"| {path.stem} | {budget:g} | {name} | {decisions.mean_accuracy:.4f} |"
                    f" {decisions.mean_samples:.2f} | {shown} |"
                )
            print(f"<!-- {path.stem} at {budget:g}: {time.perf_counter() - started:.0f} s -->", file=sys.stderr)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"rows": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
