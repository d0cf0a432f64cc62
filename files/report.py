"""An evaluation's report: report.json, report.md, frontier.png and decisions.jsonl in one directory."""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from allocator.data import Outcomes
from allocator.evaluate import Result
from files.errors import DataFileError
from files.outcomes import finite_or_none, write_jsonl
from oracle.frontier import frontier


def summary_row(result: Result) -> dict[str, Any]:
    return {
        "budget": result.budget,
        "policy": result.policy,
        "accuracy": result.accuracy,
        "mean_samples": result.samples,
        "mean_cost": result.cost,
        "spend_shares": result.spend_shares,
        "gain_captured": finite_or_none(result.gain_captured),
        "imitation_accuracy": result.imitation_accuracy,
        "regret": result.regret,
        "uniform_accuracy": result.uniform_accuracy,
        "oracle_accuracy": result.oracle_accuracy,
    }


REPORT_FILES = ("report.json", "report.md", "frontier.png", "decisions.jsonl")


def write_report(directory: Path, data: Outcomes, results: Sequence[Result], meta: dict[str, Any]) -> list[Path]:
    """Write the four report files into `directory` (created if need be); returns their paths.

    They are written into a staging folder first and moved in only when all four exist, so a failure leaves
    the previous report as it was.
    """
    if directory.exists() and not directory.is_dir():
        raise DataFileError(f"{directory}: exists and is not a directory; choose another --out")
    directory.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".report.", dir=directory))
    try:
        rows = [summary_row(result) for result in results]
        (staging / "report.json").write_text(json.dumps({**meta, "results": rows}, indent=2, allow_nan=False) + "\n")
        (staging / "report.md").write_text(_markdown(rows, meta))
        _plot(staging / "frontier.png", data, results, meta)
        write_jsonl(staging / "decisions.jsonl", _decision_rows(data, results))
        for name in REPORT_FILES:
            os.replace(staging / name, directory / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return [directory / name for name in REPORT_FILES]


def _markdown(rows: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    several = len(meta.get("models", [])) > 1
    baseline = "random routing" if several else "uniform"
    unit = meta.get("cost_unit", "samples")
    lines = [
        f"# Evaluation of {meta['outcomes']}",
        "",
        f"{meta['questions']} questions, actions {meta['actions']}, {meta['protocol']}.",
        f"Costs in {unit}" + (f", prices {meta['prices']}." if several else "."),
        f"Gain captured: (policy - {baseline}) / (oracle - {baseline}) at the same budget. Imitation accuracy: how",
        "often a one-shot policy took the oracle's action. Regret: oracle accuracy minus the policy's.",
        "",
    ]
    for budget in sorted({row["budget"] for row in rows}):
        spend_column = " spend by model |" if several else ""
        lines += [
            f"## Budget {budget:g} {unit} per question",
            "",
            f"| policy | accuracy | mean cost | mean samples |{spend_column} gain captured | imitation accuracy "
            "| regret |",
            "|---|---|---|---|---|---|---|" + ("---|" if several else ""),
        ]
        for row in (r for r in rows if r["budget"] == budget):
            spent = row["spend_shares"]
            shares = ", ".join(f"{model} {spent[model]:.0%}" for model in meta.get("models", spent) if model in spent)
            lines.append(
                f"| {row['policy']} | {row['accuracy']:.4f} | {row['mean_cost']:.3f} | {row['mean_samples']:.3f} | "
                + (f"{shares} | " if several else "")
                + f"{_percent(row['gain_captured'])} | {_percent(row['imitation_accuracy'])} | {row['regret']:.4f} |"
            )
        lines.append("")
    reach = meta.get("cost_to_reach")
    if reach:
        lines += [
            f"## Cost to reach {reach['target']:.4f} ({reach['share']:.0%} of {reach['model']}'s single sample)",
            "",
            f"As a share of that sample's cost ({reach['reference_cost']:g} {unit}); budgets tried: {reach['grid']}.",
            "",
            "| policy | mean cost | share of the strong model's cost |",
            "|---|---|---|",
        ]
        for policy, cost in reach["costs"].items():
            shown = "not reached" if cost is None else f"{cost:.2f} | {cost / reach['reference_cost']:.0%}"
            lines.append(f"| {policy} | {shown} |" if cost is not None else f"| {policy} | {shown} | – |")
        lines.append("")
    return "\n".join(lines)


def _decision_rows(data: Outcomes, results: Sequence[Result]) -> Iterator[dict[str, Any]]:
    for result in results:
        decisions = result.decisions
        actions = decisions.actions
        for index, qid in enumerate(data.ids):
            cost = decisions.samples if decisions.cost is None else decisions.cost
            chosen = None if actions is None else data.actions[int(actions[index])]
            yield {
                "id": qid,
                "budget": result.budget,
                "policy": result.policy,
                "samples": round(float(decisions.samples[index]), 6),
                "accuracy": round(float(decisions.accuracy[index]), 6),
                "action": None if chosen is None else chosen.samples,
                "cost": round(float(cost[index]), 6),
                "model": None if chosen is None else chosen.model,
            }


def _plot(path: Path, data: Outcomes, results: Sequence[Result], meta: dict[str, Any]) -> None:
    import matplotlib  # here, not at import: every command would pay for it

    matplotlib.use("Agg")  # files only: no display is needed or wanted
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7.5, 5), dpi=120)
    curve = frontier(data.acc, data.cost)
    axes.plot(curve.avg_cost, curve.accuracy, color="black", linewidth=1.5, label="oracle frontier")
    plain = data.plain()
    several = len(data.models) > 1
    for model in data.models:
        columns = [c for c in plain if data.actions[c].model == model]
        label = f"always {model} × k" if several else "uniform k"
        axes.plot(data.mean_cost[columns], data.acc[:, columns].mean(axis=0), linestyle="--", marker="o", label=label)
    markers = iter("sD^v<>Ph*X")
    shown = {"oracle"} | ({"uniform"} if not several else set())
    for policy in dict.fromkeys(
        r.policy for r in results if r.policy not in shown and not r.policy.startswith("always-")
    ):
        points = sorted((r.cost, r.accuracy) for r in results if r.policy == policy)
        xs, ys = zip(*points, strict=True)
        axes.plot(xs, ys, marker=next(markers, "o"), label=policy)
    axes.set_xscale("log", base=2)
    unit = meta.get("cost_unit", "samples")
    axes.set_xlabel(f"mean cost per question ({unit}" + (", at the models' prices)" if several else ")"))
    axes.set_ylabel("accuracy")
    axes.set_title(f"{meta['outcomes']}: {meta['protocol']}", fontsize=9)
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize=8, loc="lower right")
    figure.tight_layout()
    try:
        figure.savefig(path)
    finally:
        plt.close(figure)


def _percent(value: float | None) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{value:.0%}"
