"""`apportion collect` and `pipeline` against the simulator over loopback: formats, grading, resuming."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from answers.equivalence import equivalent
from cli.main import main
from files.errors import DataFileError
from files.outcomes import read_outcomes
from files.questions import read_question_set
from oracle.outcomes import Question
from service.collection import grade
from service.server_thread import ServerThread
from service.simulator import Simulator, create_simulator_app


@pytest.mark.parametrize(
    ("answer", "gold", "same"),
    [
        ("72", "72", True),
        ("72.00", "72", True),
        ("1,200", "1200", True),
        ("$18", "18", True),
        ("0.5", "\\frac{1}{2}", True),
        ("\\dfrac12", "1/2", True),
        ("50\\%", "\\frac12", True),
        ("\\frac{\\sqrt{2}}{2}", "\\frac{1}{\\sqrt{2}}", True),
        ("2\\pi", "\\pi \\cdot 2", True),
        ("x^2+2x+1", "(x+1)^2", True),
        ("10\\text{ cm}", "10", True),
        ("\\boxed{7}", "7", True),
        ("(1,2)", "(1, 2)", True),
        ("(1,2)", "(2,1)", False),
        ("3", "4", False),
        ("0.333", "\\frac13", False),
        ("9^{9^{9^9}}", "9^{9^{9^8}}", False),
        (None, "3", False),
        ("", "3", False),
    ],
)
def test_math_aware_equivalence(answer: str | None, gold: str, same: bool) -> None:
    assert equivalent(answer, gold) is same


def test_a_power_tower_is_never_evaluated() -> None:
    started = time.perf_counter()
    assert not equivalent("9^{9^{9^9}}", "9^{9^{9^{9}}}+1")
    assert time.perf_counter() - started < 1.0


def test_equivalent_answers_vote_together() -> None:
    samples = grade(["so \\boxed{0.5}", "The answer is 1/2.", "#### 3", "The answer is 3.0"], "\\frac{1}{2}")
    assert [s.answer for s in samples] == ["\\frac{1}{2}", "\\frac{1}{2}", "3", "3"]
    assert [s.correct for s in samples] == [True, True, False, False]


def test_reads_our_gsm8k_and_math_formats(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    rows = [
        {"id": "a", "question": "1+1?", "gold": "2"},
        {"question": "Natalia sold 48 clips...", "answer": "48 + 24 = 72\n#### 72"},
        {"unique_id": "m/1", "problem": "Half of one?", "solution": "It is $\\boxed{\\frac{1}{2}}$.", "level": 2},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    tasks = read_question_set(str(path))
    assert [(t.id, t.gold) for t in tasks] == [("a", "2"), ("q/00002", "72"), ("m/1", "\\frac{1}{2}")]
    assert tasks[2].level == "2"
    path.write_text('{"question": "no gold"}\n')
    with pytest.raises(DataFileError, match="gold answer"):
        read_question_set(str(path))
    path.write_text('{"id": "x", "question": "a", "gold": "1"}\n{"id": "x", "question": "b", "gold": "2"}\n')
    with pytest.raises(DataFileError, match="ids must be unique"):
        read_question_set(str(path))


@pytest.fixture(scope="module")
def recorded(example_file: Path) -> list[Question]:
    return list(read_outcomes(example_file))


@pytest.fixture(scope="module")
def question_file(recorded: list[Question], tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("questions") / "questions.jsonl"
    path.write_text("".join(json.dumps({"id": q.id, "question": q.question, "gold": q.gold}) + "\n" for q in recorded))
    return path


def test_collect_grades_like_the_recording(recorded: list[Question], question_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "collected.jsonl"
    with ServerThread(create_simulator_app(Simulator(recorded))) as url:
        assert (
            main(
                [
                    "collect",
                    "--questions",
                    str(question_file),
                    "--backend",
                    url + "/v1",
                    "--samples",
                    "6",
                    "--out",
                    str(out),
                ]
            )
            == 0
        )
    collected = {q.id: q for q in read_outcomes(out)}
    assert set(collected) == {q.id for q in recorded}
    for question in recorded:
        truth = {s.answer: s.correct for s in question.samples if s.answer is not None}
        for sample in collected[question.id].samples:
            assert len(collected[question.id].samples) == 6
            if sample.answer is not None:
                assert sample.correct == truth[sample.answer], (question.id, sample)


def test_an_interrupted_collection_resumes_without_losing_or_repeating(
    recorded: list[Question], question_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "collected.jsonl"
    command = [
        sys.executable,
        "-m",
        "cli",
        "collect",
        "--questions",
        str(question_file),
        "--samples",
        "4",
        "--concurrency",
        "2",
        "--out",
        str(out),
    ]
    with ServerThread(create_simulator_app(Simulator(recorded, latency=0.05))) as url:
        process = subprocess.Popen([*command, "--backend", url + "/v1"], stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while (not out.exists() or out.read_text().count("\n") < 10) and time.monotonic() < deadline:
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        process.wait()
        with open(out, "a") as half_written:  # as if the kill had landed in the middle of a write
            half_written.write('{"id": "synthetic/99999", "question": "cut sh')
        assert subprocess.run([*command, "--backend", url + "/v1"], stderr=subprocess.DEVNULL).returncode == 0
    ids = [json.loads(line)["id"] for line in out.read_text().splitlines()]
    assert sorted(ids) == sorted(q.id for q in recorded), "every question once, the cut line gone"


def test_pipeline_runs_every_step_and_says_how_to_serve(
    recorded: list[Question], question_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with ServerThread(create_simulator_app(Simulator(recorded))) as url:
        code = main(
            [
                "pipeline",
                "--questions",
                str(question_file),
                "--backend",
                url + "/v1",
                "--samples",
                "8",
                "--budget",
                "3",
                "--out",
                str(tmp_path / "run"),
            ]
        )
    out = capsys.readouterr().out
    assert code == 0
    for made in ("outcomes.jsonl", "labels.jsonl", "model/manifest.json", "report/report.md"):
        assert (tmp_path / "run" / made).is_file(), made
    assert f"apportion serve --model {tmp_path / 'run' / 'model'}" in out
