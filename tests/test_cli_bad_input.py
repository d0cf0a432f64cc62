"""Bad input to the command line: one clear line, a non-zero exit, no traceback, nothing half written."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.test_cli import run

GOOD = {
    "id": "q1",
    "question": "1+1?",
    "samples": [{"answer": "2", "correct": True}, {"answer": "3", "correct": False}],
}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
bad_lines = st.one_of(
    st.text(max_size=40).filter(lambda t: "\n" not in t and t.strip() != ""),  # mostly not JSON at all
    json_values.map(json.dumps),  # JSON of the wrong shape
    st.sampled_from(["samples", "question", "id"]).flatmap(  # a good record with one field of the wrong type
        lambda key: json_values.map(lambda value: json.dumps({**GOOD, key: value}))
    ),
)


def assert_refused(code: int, err: str, directory: Path) -> None:
    assert code != 0
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    assert not list(directory.glob("out*")) and not list(directory.glob(".*partial")), list(directory.iterdir())


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(line=bad_lines, command=st.sampled_from(["label", "frontier", "train"]))
def test_a_bad_outcome_line_is_one_clear_error(capsys: pytest.CaptureFixture[str], line: str, command: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        directory = Path(folder)
        outcomes = directory / "in.jsonl"
        outcomes.write_text(json.dumps(GOOD) + "\n" + line + "\n")
        argv = [command, "--outcomes", str(outcomes), "--out", str(directory / "out")]
        if command in ("label", "train"):
            argv += ["--budget", "2"]
        code, _, err = run(capsys, *argv)
        if code == 0:  # hypothesis found a line that is a valid record after all
            return
        assert ":2:" in err or "in.jsonl" in err
        assert_refused(code, err, directory)


@pytest.mark.parametrize(
    "extra",
    [
        ["--budget", "nan"],
        ["--budget", "-1"],
        ["--budget", "0"],
        ["--budget", "inf"],
        ["--budget", "0.5"],
        ["--budget", "2", "--actions", "0,2"],
        ["--budget", "2", "--actions", "-1"],
        ["--budget", "2", "--actions", "x"],
        ["--budget", "2", "--actions", "2,2"],
        ["--budget", "2", "--aggregator", "median"],
        ["--budget", "2", "--cost", "dollars"],
    ],
)
def test_bad_numbers_and_choices_are_one_clear_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, extra: list[str]
) -> None:
    outcomes = tmp_path / "in.jsonl"
    outcomes.write_text(json.dumps(GOOD) + "\n")
    code, _, err = run(capsys, "label", "--outcomes", str(outcomes), "--out", str(tmp_path / "out"), *extra)
    assert_refused(code, err, tmp_path)


@pytest.mark.parametrize("content", [b"", b"\n\n", b"\xff\xfe not utf-8\n", b"{" * 100 + b"\n"])
def test_empty_or_garbled_files_are_one_clear_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, content: bytes
) -> None:
    outcomes = tmp_path / "in.jsonl"
    outcomes.write_bytes(content)
    code, _, err = run(capsys, "label", "--outcomes", str(outcomes), "--budget", "2", "--out", str(tmp_path / "out"))
    assert_refused(code, err, tmp_path)


def test_a_huge_line_is_read(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    outcomes = tmp_path / "in.jsonl"
    huge = {**GOOD, "id": "q2", "question": "x" * 50_000_000}
    outcomes.write_text(json.dumps(GOOD) + "\n" + json.dumps(huge) + "\n")
    code, out, err = run(capsys, "label", "--outcomes", str(outcomes), "--budget", "2", "--out", str(tmp_path / "out"))
    assert code == 0 and "Traceback" not in err
    assert json.loads(out.strip().splitlines()[-1])["n"] == 2


def test_collect_from_a_backend_that_is_not_there_says_so(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    questions = tmp_path / "q.jsonl"
    questions.write_text(json.dumps({"id": "a", "question": "1+1?", "gold": "2"}) + "\n")
    code, _, err = run(
        capsys,
        "collect",
        "--questions",
        str(questions),
        "--backend",
        "http://127.0.0.1:9/v1",
        "--samples",
        "2",
        "--out",
        str(tmp_path / "out.jsonl"),
    )
    assert code == 1 and "Traceback" not in err and "got no samples" in err and "run the same command again" in err
    assert not (tmp_path / "out.jsonl").exists() or (tmp_path / "out.jsonl").read_text() == ""
