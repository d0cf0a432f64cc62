"""Benchmark the default query features: milliseconds per query, batched and one query at a time.

Questions are the project's own synthetic ones unless --outcomes names a recorded file; the feature set is
fitted once, then timed transforming every question.

    python bench/query_features.py [--outcomes FILE] [--out bench/results/query_features.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from features.text import query_features
from files.outcomes import read_outcomes
from oracle.synthetic import synthetic_outcomes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--outcomes", type=Path, help="recorded outcome file whose questions to use")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "query_features.json")
    args = parser.parse_args()
    source = read_outcomes(args.outcomes) if args.outcomes else synthetic_outcomes(1000, 1)
    texts = [question.question for question in source]
    features = query_features().fit(texts)
    batched = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        features.transform(texts)
        batched.append((time.perf_counter() - start) / len(texts) * 1e3)
    single = []
    for text in texts[:300]:
        start = time.perf_counter()
        features.transform([text])
        single.append((time.perf_counter() - start) * 1e3)
    report = {
        "questions": len(texts),
        "source": str(args.outcomes or "synthetic"),
        "mean_chars": statistics.mean(len(t) for t in texts),
        "batched_ms_per_query": statistics.median(batched),
        "single_ms_per_query_p50": statistics.median(single),
        "single_ms_per_query_p99": sorted(single)[int(0.99 * len(single)) - 1],
        "target_ms_per_query": 0.2,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
