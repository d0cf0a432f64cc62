"""`apportion train`: fit a policy on an outcome file and save it as a model directory."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from allocator.base import check_budget
from allocator.evaluate import cross_validate
from allocator.registry import DEFAULT_POLICY, POLICIES
from allocator.replay import STATE_FEATURES
from cli.options import Parser, learning_options, load_outcomes, positive_float, quietly
from files.models import file_sha256, save_model
from files.report import summary_row

HELP = "fit an allocation policy and save it as a model directory"
DESCRIPTION = (
    "Fit a policy on recorded outcomes at a budget (majority vote, cost in samples) and save it "
    "with a manifest that records its held-out metrics."
)
EXAMPLES = """\
examples:
  apportion train --outcomes gsm8k.jsonl --budget 4 --out models/gsm8k-b4
  apportion train --outcomes gsm8k.jsonl --budget 4 --policy plugin --out models/gsm8k-plugin

Policies: uniform, heuristic (longer questions get more), imitation-lr and imitation-gbt (a classifier of
the oracle's labels), plugin (predicted accuracy curves; its budget can change later), adaptive (samples in
rounds and stops when the answers agree; the default).
"""
PARENTS = (learning_options,)


def add_arguments(parser: Parser) -> None:
    parser.add_argument("--budget", type=positive_float, required=True, help="mean samples per query to aim for")
    parser.add_argument(
        "--policy", choices=POLICIES, default=DEFAULT_POLICY, help=f"which policy to fit ({DEFAULT_POLICY})"
    )
    parser.add_argument("--out", required=True, metavar="MODEL_DIR", help="directory to write the model to")


@quietly
def run(args: argparse.Namespace) -> int:
    data = load_outcomes(args)
    check_budget(data.ks, args.budget)  # before the oracle, whose own message is about mean costs
    make = POLICIES[args.policy]
    print(f"training {args.policy} on {data.n} questions at a budget of {args.budget:g} samples", file=sys.stderr)
    results = list(cross_validate(data, {args.policy: make}, [args.budget], folds=args.folds, seed=args.seed))
    held_out = summary_row(results[-1])
    policy = make().fit(data, args.budget)
    manifest: dict[str, Any] = {
        "policy": args.policy,
        "actions": list(data.ks),
        "costs": data.cost.tolist(),
        "budget": args.budget,
        "description": policy.description(),
        "features": _feature_config(args.policy),
        "training_data": {
            "path": str(args.outcomes),
            "sha256": file_sha256(Path(args.outcomes)),
            "questions": data.n,
        },
        "metrics": {"protocol": f"{args.folds}-fold cross-validation by question", **held_out},
    }
    save_model(Path(args.out), policy, manifest)
    print(
        f"saved to {args.out}; held out ({args.folds}-fold): accuracy {held_out['accuracy']:.4f} at "
        f"{held_out['mean_samples']:.3f} samples (uniform {held_out['uniform_accuracy']:.4f}, "
        f"oracle {held_out['oracle_accuracy']:.4f})"
    )
    print(json.dumps({"model": str(args.out), "policy": args.policy, **held_out}))
    return 0


def _feature_config(policy: str) -> dict[str, Any]:
    if policy == "adaptive":
        return {"vote_state": list(STATE_FEATURES)}
    if policy == "uniform":
        return {}
    return {
        "text_statistics": True,
        "words": {"analyzer": "word", "ngram_range": [1, 2], "hashed": True, "tfidf": True},
        "chars": {"analyzer": "char_wb", "ngram_range": [3, 4], "hashed": True, "tfidf": True},
    }
