from __future__ import annotations

import json
from pathlib import Path

import pytest

from allocator.data import Outcomes
from files.models import load_model
from files.outcomes import read_outcomes
from tests.test_cli import run


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory, example_file: Path) -> Path:
    out = tmp_path_factory.mktemp("models") / "adaptive"
    from cli.main import main

    assert main(["train", "--outcomes", str(example_file), "--budget", "4", "--folds", "3", "--out", str(out)]) == 0
    return out


def test_train_writes_a_policy_and_a_manifest_that_describes_it(model: Path, example_file: Path) -> None:
    manifest = json.loads((model / "manifest.json").read_text())
    assert manifest["format_version"] == 3
    assert manifest["policy"] == "adaptive"
    assert manifest["actions"] == [1, 2, 4, 8, 16, 32]
    assert manifest["budget"] == 4.0
    assert manifest["training_data"]["questions"] == 120
    assert len(manifest["training_data"]["sha256"]) == 64
    assert {"accuracy", "mean_samples", "gain_captured"} <= set(manifest["metrics"])
    assert "lambda" in manifest["description"]
    assert {"numpy", "scikit-learn", "python"} <= set(manifest["environment"])
    policy, _ = load_model(model)
    data = Outcomes.read(read_outcomes(example_file), manifest["actions"])
    assert policy.evaluate(data).mean_samples > 1


def test_a_loaded_model_decides_like_the_trained_one(
    capsys: pytest.CaptureFixture[str], example_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "plugin"
    argv = ["train", "--outcomes", str(example_file), "--budget", "4", "--policy", "plugin", "--folds", "2"]
    assert run(capsys, *argv, "--out", str(out))[0] == 0
    policy, _ = load_model(out)
    texts = [q.question for q in read_outcomes(example_file)]
    again, _ = load_model(out)
    assert policy.choose(texts).tolist() == again.choose(texts).tolist()


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: (d / "policy.skops").write_bytes(b"not a zip"), "corrupt (its checksum"),
        (lambda d: (d / "manifest.json").write_text("{"), "corrupt manifest"),
        (
            lambda d: (d / "manifest.json").write_text(
                json.dumps(json.loads((d / "manifest.json").read_text()) | {"format_version": 99})
            ),
            "format version 99 is not supported",
        ),
        (
            lambda d: (d / "manifest.json").write_text(
                json.dumps(json.loads((d / "manifest.json").read_text()) | {"format_version": 1})
            ),
            "train it again with apportion train",
        ),
        (lambda d: (d / "manifest.json").unlink(), "not a model directory"),
    ],
)
def test_a_damaged_model_gives_one_clear_error(
    capsys: pytest.CaptureFixture[str], model: Path, example_file: Path, tmp_path: Path, damage, message: str
) -> None:  # type: ignore[no-untyped-def]
    copy = tmp_path / "model"
    copy.mkdir()
    for part in model.iterdir():
        (copy / part.name).write_bytes(part.read_bytes())
    damage(copy)
    code, _, stderr = run(
        capsys, "evaluate", "--outcomes", str(example_file), "--model", str(copy), "--out", str(tmp_path / "r")
    )
    assert code == 1
    assert message in stderr
    assert len(stderr.strip().splitlines()) == 1


def test_evaluate_cross_validates_every_policy_and_writes_the_report(
    capsys: pytest.CaptureFixture[str], example_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "report"
    argv = ["evaluate", "--outcomes", str(example_file), "--budgets", "2,4", "--folds", "2", "--out", str(out)]
    code, stdout, _ = run(capsys, *argv)
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == ["decisions.jsonl", "frontier.png", "report.json", "report.md"]
    report = json.loads((out / "report.json").read_text())
    policies = {row["policy"] for row in report["results"]}
    assert policies == {"oracle", "uniform", "heuristic", "imitation-lr", "imitation-gbt", "plugin", "adaptive"} | {
        "adaptive-consistency",
        "esc",
        "margin",
    }
    decisions = [json.loads(line) for line in (out / "decisions.jsonl").read_text().splitlines()]
    assert len(decisions) == 120 * 2 * len(policies)
    assert {row["action"] is None for row in decisions if row["policy"] == "adaptive"} == {True}
    assert all(row["action"] in (1, 2, 4, 8, 16, 32) for row in decisions if row["policy"] == "plugin")
    assert (out / "frontier.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    markdown = (out / "report.md").read_text()
    assert "## Budget 4 samples per question" in markdown
    assert "| adaptive |" in markdown
    assert json.loads(stdout.splitlines()[-1])["results"] == len(report["results"])


def test_evaluate_a_saved_model_on_held_out_outcomes(
    capsys: pytest.CaptureFixture[str], model: Path, tmp_path: Path
) -> None:
    from files.outcomes import write_jsonl
    from oracle.synthetic import synthetic_outcomes

    held_out = tmp_path / "held-out.jsonl"
    write_jsonl(held_out, (q.to_record() for q in synthetic_outcomes(questions=60, samples=16, seed=99)))
    out = tmp_path / "report"
    code, _, _ = run(capsys, "evaluate", "--outcomes", str(held_out), "--model", str(model), "--out", str(out))
    assert code == 0
    rows = json.loads((out / "report.json").read_text())["results"]
    assert [row["policy"] for row in rows] == ["oracle", "uniform", "adaptive"]
    assert rows[2]["mean_samples"] == pytest.approx(4.0, rel=0.3)


def test_outputs_never_replace_what_is_not_theirs(
    capsys: pytest.CaptureFixture[str], example_file: Path, tmp_path: Path
) -> None:
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    argv = ["train", "--outcomes", str(example_file), "--budget", "2", "--policy", "uniform", "--folds", "2"]
    code, _, stderr = run(capsys, *argv, "--out", str(precious))
    assert code == 1
    assert "is not an apportion model" in stderr
    assert (precious / "notes.txt").read_text() == "keep me"
    code, _, stderr = run(capsys, "label", "--outcomes", str(example_file), "--budget", "2", "--out", str(precious))
    assert code == 1
    assert "is a directory" in stderr
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    code, _, stderr = run(capsys, "evaluate", "--outcomes", str(example_file), "--folds", "2", "--out", str(a_file))
    assert code == 1
    assert "is not a directory" in stderr
    assert a_file.read_text() == "x"


def test_lopsided_or_tiny_training_sets_do_not_break_the_learners(tmp_path: Path) -> None:
    from allocator.data import Outcomes as Data
    from allocator.learned import Imitation, PlugIn
    from oracle.synthetic import synthetic_outcomes

    data = Data.read(synthetic_outcomes(questions=12, samples=8, seed=5), (1, 2, 4, 8))
    for policy in (Imitation("logistic"), Imitation("boosting"), PlugIn()):
        for subset in (data.subset([0, 1]), data):
            for budget in (1.05, 4.0):
                decisions = policy.fit(subset, budget).evaluate(data)
                assert decisions.samples.shape == (12,)
    single = Data.read(synthetic_outcomes(questions=12, samples=8, seed=5), (4,))
    assert PlugIn().fit(single, 4.0).choose(single.texts).tolist() == [0] * 12


def test_train_refuses_a_budget_below_the_first_round(
    capsys: pytest.CaptureFixture[str], example_file: Path, tmp_path: Path
) -> None:
    argv = ["train", "--outcomes", str(example_file), "--budget", "0.5", "--out", str(tmp_path / "m")]
    code, _, stderr = run(capsys, *argv)
    assert code == 1
    assert "below the cheapest action" in stderr
    assert not (tmp_path / "m").exists()
