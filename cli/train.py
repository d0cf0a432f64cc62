"""`apportion train`: fit a policy on an outcome file and save it as a model directory."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from allocator.base import check_budget
from allocator.evaluate import cross_validate
from allocator.registry import DEFAULT_POLICY, FLEET_POLICIES, POLICIES, policies_for
from allocator.replay import STATE_FEATURES
from cli.inputs import load_outcomes, quietly
from cli.options import Parser, UsageError, learning_options, positive_float
from files.models import file_sha256, save_model
from files.outcomes import Source
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

  apportion train --outcomes llama=llama.jsonl --outcomes gpt4=gpt4.jsonl --price gpt4=20 --budget 8 \\
      --out models/cascade

Policies: uniform, heuristic (longer questions get more), imitation-lr and imitation-gbt (a classifier of
the oracle's labels), plugin (predicted accuracy curves; its budget can change later), adaptive (samples in
rounds and stops when the answers agree; the default). With several models (one --outcomes each): adaptive
samples the cheap model in rounds and escalates to the dear one when its answers disagree; router learns from
the text which queries need the dear model (RouteLLM); fixed-cascade is the best single cascade (Mixture of
Thoughts); imitation-lr and plugin choose a model and k from the text.
"""
PARENTS = (learning_options,)


def add_arguments(parser: Parser) -> None:
    parser.add_argument("--budget", type=positive_float, required=True, help="mean samples per query to aim for")
    parser.add_argument(
        "--policy",
        choices=list(dict.fromkeys([*POLICIES, *FLEET_POLICIES])),
        default=DEFAULT_POLICY,
        help=f"which policy to fit ({DEFAULT_POLICY}; with several models: router, imitation-lr, plugin, "
        "fixed-cascade, random-routing or adaptive, which cascades)",
    )
    parser.add_argument("--out", required=True, metavar="MODEL_DIR", help="directory to write the model to")


@quietly
def run(args: argparse.Namespace) -> int:
    data = load_outcomes(args)
    check_budget(data.mean_cost, args.budget)  # before the oracle, whose own message is about mean costs
    available = policies_for(len(data.models))
    if args.policy not in available:
        several = "several models" if len(data.models) > 1 else "one model"
        raise UsageError(f"--policy {args.policy} does not apply to {several}: choose from {', '.join(available)}")
    make = available[args.policy]
    print(f"training {args.policy} on {data.n} questions at a budget of {args.budget:g} {args.cost}", file=sys.stderr)
    results = list(cross_validate(data, {args.policy: make}, [args.budget], folds=args.folds, seed=args.seed))
    held_out = summary_row(results[-1])
    policy = make().fit(data, args.budget)
    manifest: dict[str, Any] = {
        "policy": args.policy,
        "actions": list(data.ks) if len(data.models) == 1 else [a.record() for a in data.actions],
        "costs": data.mean_cost.tolist(),
        "models": list(data.models),
        "prices": data.curves.prices,
        "cost_unit": args.cost,
        "budget": args.budget,
        "description": policy.description(),
        "features": _feature_config(args.policy),
        "training_data": _training_data(args.outcomes, data.n),
        "metrics": {"protocol": f"{args.folds}-fold cross-validation by question", **held_out},
    }
    save_model(Path(args.out), policy, manifest)
    baseline = "uniform" if len(data.models) == 1 else "random routing"
    print(
        f"saved to {args.out}; held out ({args.folds}-fold): accuracy {held_out['accuracy']:.4f} at mean cost "
        f"{held_out['mean_cost']:.3f} ({baseline} {held_out['uniform_accuracy']:.4f}, "
        f"oracle {held_out['oracle_accuracy']:.4f})"
    )
    print(json.dumps({"model": str(args.out), "policy": args.policy, **held_out}))
    return 0


def _training_data(sources: list[Source], questions: int) -> dict[str, Any]:
    files = [{"path": str(s.path), "name": s.name, "sha256": file_sha256(s.path)} for s in sources]
    if len(files) == 1:
        return {"path": files[0]["path"], "sha256": files[0]["sha256"], "questions": questions}
    return {"files": files, "questions": questions}


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
