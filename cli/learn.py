"""`apportion train` and `apportion evaluate`: fit policies on outcome files, save them, and judge them."""

from __future__ import annotations

import argparse
import functools
import json
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tqdm import tqdm

from allocator.base import check_budget
from allocator.data import Outcomes
from allocator.evaluate import Reference, Result, cross_validate
from allocator.learned import PlugIn
from allocator.registry import POLICIES
from allocator.replay import STATE_FEATURES
from cli.models import file_sha256, load_model, save_model
from cli.outcome_files import DataFileError, read_outcomes
from cli.report import summary_row, write_report


def _quietly(command: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """scikit-learn warns about folds that miss a rare action; the policies handle it, so users see nothing."""

    @functools.wraps(command)
    def run(args: argparse.Namespace) -> int:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", module="sklearn")
            return command(args)

    return run


def load(args: argparse.Namespace) -> Outcomes:
    data = Outcomes.read(read_outcomes(Path(args.outcomes)), args.actions)
    if data.n < 2:
        raise DataFileError(f"{args.outcomes}: needs at least 2 questions to learn from, has {data.n}")
    args.folds = min(args.folds, data.n)  # leave-one-out at most
    return data


@_quietly
def train(args: argparse.Namespace) -> int:
    data = load(args)
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


@_quietly
def evaluate(args: argparse.Namespace) -> int:
    data = load(args)
    if args.model:
        results, protocol = _evaluate_model(args, data)
    else:
        with tqdm(total=len(args.budgets) * (len(POLICIES) - 1), desc="evaluating", file=sys.stderr) as bar:
            policies = {name: make for name, make in POLICIES.items() if name != "uniform"}
            results = []
            for result in cross_validate(data, policies, args.budgets, folds=args.folds, seed=args.seed):
                results.append(result)
                bar.update(result.policy not in {"oracle", "uniform"})
        protocol = f"{args.folds}-fold cross-validation by question"
    meta = {"outcomes": str(args.outcomes), "questions": data.n, "actions": list(data.ks), "protocol": protocol}
    paths = write_report(Path(args.out), data, results, meta)
    _print_table(results)
    print(json.dumps({"out": str(args.out), "files": [p.name for p in paths], "results": len(results)}))
    return 0


def _evaluate_model(args: argparse.Namespace, data: Outcomes) -> tuple[list[Result], str]:
    policy, manifest = load_model(Path(args.model))
    if tuple(manifest["actions"]) != data.ks:
        raise DataFileError(f"{args.model}: trained for actions {manifest['actions']}, not {list(data.ks)}")
    budgets = args.budgets if isinstance(policy, PlugIn) else [float(manifest["budget"])]
    if budgets != args.budgets:
        print(f"note: a {manifest['policy']} model is judged at its training budget, {budgets[0]:g}", file=sys.stderr)
    results: list[Result] = []
    for budget in budgets:
        if isinstance(policy, PlugIn):
            policy.with_budget(budget)
        reference = Reference.at(data, budget)
        results += [*reference.results(), Result(manifest["policy"], policy.evaluate(data, seed=args.seed), reference)]
    return results, f"model {args.model} on held-out outcomes"


def _print_table(results: list[Result]) -> None:
    print(f"{'budget':>6} {'policy':<14} {'accuracy':>8} {'samples':>8} {'captured':>9}")
    for result in results:
        captured = result.gain_captured
        shown = f"{captured:>9.0%}" if captured == captured else f"{'–':>9}"
        print(f"{result.budget:>6g} {result.policy:<14} {result.accuracy:>8.4f} {result.samples:>8.3f} {shown}")


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
