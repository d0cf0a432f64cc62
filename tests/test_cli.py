from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cli.main import main
from tests.conftest import recorded


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exit_:  # argparse's own exits (usage errors, --help)
        code = int(exit_.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_label_writes_one_line_per_question_and_a_json_summary(
    capsys: pytest.CaptureFixture[str], example_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "labels.jsonl"
    code, stdout, _ = run(capsys, "label", "--outcomes", str(example_file), "--budget", "3", "--out", str(out))
    assert code == 0
    summary = json.loads(stdout.strip().splitlines()[-1])
    labels = [json.loads(line) for line in out.read_text().splitlines()]
    assert summary["n"] == len(labels) == 120
    assert {row["action"] for row in labels} <= {1, 2, 4, 8, 16, 32}
    assert sum(row["cost"] for row in labels) / len(labels) == pytest.approx(summary["avg_cost"])
    assert summary["avg_cost"] <= 3
    assert sum(row["expected_accuracy"] for row in labels) / 120 == pytest.approx(summary["accuracy"], abs=1e-6)
    assert summary["accuracy"] >= summary["uniform_accuracy"]
    assert set(labels[0]) == {"id", "model", "action", "expected_accuracy", "cost"}


def test_acceptance_on_recorded_llama_samples(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = recorded("gsm8k-llama2-13b.jsonl")
    argv = ["label", "--outcomes", str(path), "--actions", "1,2,4,8,16,32", "--budget", "4"]
    code, stdout, _ = run(capsys, *argv, "--out", str(tmp_path / "labels.jsonl"))
    assert code == 0
    summary = json.loads(stdout.strip().splitlines()[-1])
    assert summary["avg_cost"] <= 4
    assert summary["accuracy"] == pytest.approx(0.41, abs=0.005)
    assert summary["uniform_accuracy"] == pytest.approx(0.36, abs=0.005)


@pytest.mark.parametrize(
    ("extra", "key", "check"),
    [
        (["--aggregator", "majority"], "aggregator", lambda v: v == "majority"),
        (["--aggregator", "best-of"], "aggregator", lambda v: v == "best-of"),
        (["--aggregator", "pass"], "aggregator", lambda v: v == "pass"),
        (["--cost", "tokens", "--budget", "60"], "avg_cost", lambda v: v <= 60),
        (["--draws", "64"], "accuracy_stderr", lambda v: v > 0),
    ],
)
def test_every_aggregator_and_cost_unit_runs(  # type: ignore[no-untyped-def]
    capsys: pytest.CaptureFixture[str], example_file: Path, tmp_path: Path, extra: list[str], key: str, check
) -> None:
    argv = ["label", "--outcomes", str(example_file), "--budget", "4", "--out", str(tmp_path / "l.jsonl"), *extra]
    code, stdout, _ = run(capsys, *argv)  # a repeated option: the last one counts
    assert code == 0
    assert check(json.loads(stdout.splitlines()[-1])[key])


def test_frontier_prints_the_table_and_writes_every_vertex(
    capsys: pytest.CaptureFixture[str], example_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "frontier.jsonl"
    code, stdout, _ = run(capsys, "frontier", "--outcomes", str(example_file), "--out", str(out))
    assert code == 0
    summary = json.loads(stdout.splitlines()[-1])
    points = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(points) == summary["points"] > 1
    assert points[0]["lambda"] is None and points[0]["avg_cost"] == 1.0
    assert "uniform" in stdout and "oracle" in stdout


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--budget", "0.5"], "below the cheapest allocation"),
        (["--budget", "nan"], "must be a positive, finite number"),
        (["--budget", "-3"], "must be a positive, finite number"),
        (["--budget", "4", "--aggregator", "median"], "invalid choice: 'median'"),
        (["--budget", "4", "--actions", "1,two"], "not a comma-separated list"),
        (["--budget", "4", "--actions", "0,2"], "distinct and at least 1"),
        (["--budget", "4", "--draws", "1"], "at least 2"),
    ],
)
def test_bad_arguments_get_one_clear_line_and_no_output(
    capsys: pytest.CaptureFixture[str], example_file: Path, tmp_path: Path, extra: list[str], message: str
) -> None:
    out = tmp_path / "labels.jsonl"
    code, _, stderr = run(capsys, "label", "--outcomes", str(example_file), "--out", str(out), *extra)
    assert code != 0
    assert message in stderr
    assert len(stderr.strip().splitlines()) == 1 and "Traceback" not in stderr
    assert not out.exists()


def test_best_of_without_scores_is_refused(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "o.jsonl"
    path.write_text(json.dumps({"id": "a", "question": "?", "samples": [{"answer": "1", "correct": True}]}) + "\n")
    code, _, stderr = run(
        capsys,
        "label",
        "--outcomes",
        str(path),
        "--budget",
        "2",
        "--aggregator",
        "best-of",
        "--out",
        str(tmp_path / "l.jsonl"),
    )
    assert code == 1 and "best-of needs a score on every sample" in stderr


def test_bad_data_and_empty_files_are_named(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    code, _, stderr = run(capsys, "label", "--outcomes", str(empty), "--budget", "2", "--out", str(tmp_path / "l"))
    assert code == 1 and "holds no questions" in stderr
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"id": "a", "question": "?", "samples": [{"answer": "1"}]}\n')
    code, _, stderr = run(capsys, "label", "--outcomes", str(broken), "--budget", "2", "--out", str(tmp_path / "l"))
    assert code == 1 and f"{broken}:1: samples.0.correct: Field required" in stderr


def test_example_is_reproducible(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    assert run(capsys, "example", "--out", str(first), "--questions", "20")[0] == 0
    assert run(capsys, "example", "--out", str(second), "--questions", "20")[0] == 0
    assert first.read_bytes() == second.read_bytes()


def test_the_installed_command_runs(tmp_path: Path, example_file: Path) -> None:
    command = shutil.which("apportion", path=str(Path(sys.executable).parent))
    assert command, "the console script is installed with the package"
    result = subprocess.run(
        [command, "label", "--outcomes", str(example_file), "--budget", "2", "--out", str(tmp_path / "l.jsonl")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1])["n"] == 120
    help_text = subprocess.run([command, "label", "--help"], capture_output=True, text=True, check=True).stdout
    assert "examples:" in help_text
