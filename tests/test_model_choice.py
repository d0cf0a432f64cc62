"""Model choice offline: fleets matched by question id, actions priced per model, cascades replayed exactly,
and the policies that route and cascade between a cheap and a dear model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from allocator.cascade import CascadingAdaptive
from allocator.data import Outcomes
from allocator.routing import FixedCascade, RandomRouting, Router
from files.outcomes import Source, read_fleet, write_jsonl
from oracle.actions import menu, parse_prices
from oracle.errors import OracleInputError
from oracle.fleet import align
from oracle.synthetic import synthetic_outcomes
from tests.test_cli import run

KS = (1, 2, 4, 8, 16)
PRICES = {"synthetic": 1.0, "strong": 20.0}


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("fleet")
    weak, strong = folder / "weak.jsonl", folder / "strong.jsonl"
    write_jsonl(weak, (q.to_record() for q in synthetic_outcomes(160, 16, seed=7)))
    write_jsonl(strong, (q.to_record() for q in synthetic_outcomes(160, 16, seed=7, model="strong", skill=4.5)))
    return weak, strong


@pytest.fixture(scope="module")
def fleet_data(pair: tuple[Path, Path]) -> Outcomes:
    fleet = read_fleet([Source(pair[0]), Source(pair[1])])
    return Outcomes.of_fleet(fleet, KS, PRICES, "samples")


@pytest.fixture(scope="module")
def cascading(fleet_data: Outcomes) -> CascadingAdaptive:
    """Fitted once on the first 120 questions at a budget of 8: the cascading policy is the slow one to fit."""
    return CascadingAdaptive().fit(fleet_data.subset(np.arange(0, 120)), 8.0)


def test_align_keeps_the_common_questions_in_the_first_files_order_and_counts_the_rest() -> None:
    weak = list(synthetic_outcomes(10, 2, seed=1))
    strong = list(synthetic_outcomes(10, 2, seed=1, model="strong", skill=4.5))
    fleet = align([("weak", weak[:8]), ("strong", strong[::-1][:7])])  # strong lacks questions 0, 1 and 2
    assert fleet.ids == [q.id for q in weak[3:8]]
    assert fleet.dropped == {"weak": 3, "strong": 2}
    assert [q.model for q in fleet.of("strong")] == ["strong"] * 5
    with pytest.raises(OracleInputError, match="share no question id"):
        align([("weak", weak[:3]), ("strong", strong[5:])])
    with pytest.raises(OracleInputError, match="given twice"):
        align([("synthetic", weak), ("synthetic", strong)])


def test_menu_prices_actions_and_cascades_only_go_to_a_dearer_model() -> None:
    actions = menu({"small": 32, "large": 4}, (1, 2, 4, 8, 16, 32), {"small": 1.0, "large": 20.0})
    plain = [a for a in actions if not a.cascade]
    assert [(a.model, a.samples) for a in plain if a.model == "large"] == [("large", 1), ("large", 2), ("large", 4)]
    cascades = [a for a in actions if a.cascade]
    assert cascades and all(a.model == "small" and a.then == "large" for a in cascades)
    assert {a.samples for a in cascades} == {1, 2, 4, 8} and {a.then_samples for a in cascades} == {1, 2}
    with pytest.raises(OracleInputError, match="price"):
        parse_prices([("nobody", 2.0)], ["small", "large"])


def test_plain_actions_cost_k_times_the_price_and_a_cascade_its_expected_spend(fleet_data: Outcomes) -> None:
    for column, action in enumerate(fleet_data.actions):
        cost = fleet_data.cost[:, column]
        if not action.cascade:
            assert np.allclose(cost, action.samples * PRICES[action.model])
        else:  # the cheap samples always, the dear ones only when escalating: between the two
            assert np.all(cost >= action.samples - 1e-9)
            assert np.all(cost <= action.samples + 20.0 * action.then_samples + 1e-9)
    # One cheap sample has a top share of 1 unless it gave no answer: the threshold cannot matter, and the
    # strong model is paid for exactly the questions whose sample was empty.
    one = [c for c, a in enumerate(fleet_data.actions) if a.cascade and a.samples == 1 and a.then_samples == 1]
    assert len(one) == 3
    assert np.allclose(fleet_data.acc[:, one], fleet_data.acc[:, one[:1]])
    assert np.allclose(fleet_data.cost[:, one], fleet_data.cost[:, one[:1]])
    weak = fleet_data.votes["synthetic"]
    empty = np.array([group.nulls / group.total for group in weak])
    assert np.allclose(fleet_data.cost[:, one[0]], 1.0 + 20.0 * empty)


def test_the_oracle_labels_name_a_model_and_meet_the_budget_in_cost_units(
    capsys: pytest.CaptureFixture[str], pair: tuple[Path, Path], tmp_path: Path
) -> None:
    out = tmp_path / "labels.jsonl"
    code, stdout, _ = run(
        capsys, "label", "--outcomes", str(pair[0]), "--outcomes", str(pair[1]), "--price", "strong=20",
        "--actions", "1,2,4,8,16", "--budget", "6", "--out", str(out),
    )  # fmt: skip
    assert code == 0
    summary = json.loads(stdout.strip().splitlines()[-1])
    labels = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(labels) == summary["n"] == 160
    assert {row["model"] for row in labels} <= {"synthetic", "strong"}
    assert summary["avg_cost"] <= 6 * (1 + 1e-9)
    assert sum(row["cost"] for row in labels) / 160 == pytest.approx(summary["avg_cost"])
    assert all(row["action"] >= 1 for row in labels)
    assert 0 < summary["random_routing_accuracy"] < summary["accuracy"]
    assert sum(model["questions"] for model in summary["models"].values()) == 160
    spend = sum(model["spend"] for model in summary["models"].values())
    assert spend == pytest.approx(summary["avg_cost"])


def test_one_file_named_explicitly_gives_the_same_labels_as_before(
    capsys: pytest.CaptureFixture[str], pair: tuple[Path, Path], tmp_path: Path
) -> None:
    plain, named = tmp_path / "plain.jsonl", tmp_path / "named.jsonl"
    argv = ["label", "--budget", "3", "--actions", "1,2,4,8,16"]
    assert run(capsys, *argv, "--outcomes", str(pair[0]), "--out", str(plain))[0] == 0
    assert run(capsys, *argv, "--outcomes", f"weak={pair[0]}", "--out", str(named))[0] == 0
    rows = [json.loads(line) for line in plain.read_text().splitlines()]
    renamed = [json.loads(line) for line in named.read_text().splitlines()]
    assert [r["action"] for r in rows] == [r["action"] for r in renamed]
    assert {r["model"] for r in renamed} == {"weak"}


def test_files_that_share_no_question_fail_in_one_line(
    capsys: pytest.CaptureFixture[str], pair: tuple[Path, Path], tmp_path: Path
) -> None:
    other = tmp_path / "other.jsonl"
    write_jsonl(other, ({**q.to_record(), "id": f"other/{i}"} for i, q in enumerate(synthetic_outcomes(5, 4))))
    code, _, err = run(capsys, "label", "--outcomes", str(pair[0]), "--outcomes", f"other={other}", "--budget", "4",
                       "--out", str(tmp_path / "x.jsonl"))  # fmt: skip
    assert code != 0
    assert "share no question id" in err and "Traceback" not in err
    assert not (tmp_path / "x.jsonl").exists()


def test_random_routing_meets_the_budget_exactly(fleet_data: Outcomes) -> None:
    decisions = RandomRouting().fit(fleet_data, 8.0).evaluate(fleet_data)
    assert decisions.mean_cost == pytest.approx(8.0)


@pytest.mark.parametrize("make", [FixedCascade, Router, CascadingAdaptive], ids=lambda make: make.__name__)
def test_fleet_policies_stay_near_their_budget_and_report_each_models_spend(
    fleet_data: Outcomes, cascading: CascadingAdaptive, make: type
) -> None:
    train, test = fleet_data.subset(np.arange(0, 120)), fleet_data.subset(np.arange(120, 160))
    policy = cascading if make is CascadingAdaptive else make().fit(train, 8.0)
    decisions = policy.evaluate(test, seed=1)
    assert decisions.cost is not None
    spent = sum(decisions.spend.values())
    assert np.allclose(spent, decisions.cost)
    assert decisions.mean_cost <= 8.0 * 1.3
    assert np.all((decisions.accuracy >= 0) & (decisions.accuracy <= 1))


def test_the_cascading_policy_beats_random_routing_and_moves_its_budget(
    fleet_data: Outcomes, cascading: CascadingAdaptive
) -> None:
    test = fleet_data.subset(np.arange(120, 160))
    policy = cascading
    at = {b: policy.evaluate(test, seed=1, budget=b) for b in (4.0, 8.0, 14.0)}
    assert at[4.0].mean_cost < at[8.0].mean_cost < at[14.0].mean_cost
    routed = RandomRouting().fit(test, at[8.0].mean_cost).evaluate(test)
    assert at[8.0].mean_accuracy > routed.mean_accuracy


def test_serving_the_cascade_draws_cheap_first_escalates_and_stops(
    fleet_data: Outcomes, cascading: CascadingAdaptive
) -> None:
    policy = cascading
    cheap = policy.models_[0]
    text = fleet_data.texts[150]  # a question it was not fitted on
    first: list[str | None] = []
    then: list[str | None] = []
    rounds = 0
    split = ["1", "2", "3", None, "4", "5"] * 6  # the cheap model never agrees with itself
    while (draw := policy.next_draw(text, first, then)) is not None:
        model, count = draw
        assert count >= 1
        if model == cheap:
            assert not then  # never back to the cheap model after escalating
            first += split[len(first) : len(first) + count]
        else:
            then += ["9"] * count
        rounds += 1
        assert rounds < 40
    assert then, "a cheap model that never agrees should be escalated, or skipped"
    assert policy.answer(first, then) == "9"
    unanimous: list[str | None] = []
    while (draw := policy.next_draw(text, unanimous, [])) is not None and draw[0] == cheap:
        unanimous += ["7"] * draw[1]
    assert draw is None, "a cheap model that agrees with itself is trusted at this price"
    assert len(unanimous) <= 8


def test_a_fleet_model_is_trained_saved_and_judged_on_held_out_questions_at_any_budget(
    capsys: pytest.CaptureFixture[str], pair: tuple[Path, Path], tmp_path: Path
) -> None:
    files = ["--outcomes", str(pair[0]), "--outcomes", str(pair[1]), "--price", "strong=20", "--actions", "1,2,4,8,16"]
    model, report = tmp_path / "model", tmp_path / "report"
    assert run(capsys, "train", *files, "--budget", "8", "--folds", "2", "--out", str(model))[0] == 0
    manifest = json.loads((model / "manifest.json").read_text())
    assert manifest["policy"] == "adaptive" and manifest["description"]["models"] == ["synthetic", "strong"]
    code, _, _ = run(capsys, "evaluate", *files, "--model", str(model), "--budgets", "6,10", "--out", str(report))
    assert code == 0
    rows = json.loads((report / "report.json").read_text())["results"]
    judged = {row["budget"]: row for row in rows if row["policy"] == "adaptive"}
    assert set(judged) == {6.0, 10.0}  # a cascading policy moves its budget without retraining
    assert judged[6.0]["mean_cost"] < judged[10.0]["mean_cost"]
    assert set(judged[10.0]["spend_shares"]) == {"synthetic", "strong"}
    decisions = [json.loads(line) for line in (report / "decisions.jsonl").read_text().splitlines()]
    mine = [row for row in decisions if row["policy"] == "adaptive"]
    assert len(mine) == 2 * 160 and all(row["model"] is None and row["cost"] > 0 for row in mine)
