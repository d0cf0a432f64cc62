from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from files import outcomes as outcome_files
from files.errors import DataFileError
from files.outcomes import atomic_output, read_outcomes, write_jsonl

GOOD = {"id": "q1", "question": "2+2?", "gold": "4", "samples": [{"answer": "4", "correct": True}]}


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_reads_the_documented_format_including_gzip(tmp_path: Path, example_file: Path) -> None:
    plain = list(read_outcomes(example_file))
    packed = tmp_path / "example.jsonl.gz"
    packed.write_bytes(gzip.compress(example_file.read_bytes()))
    assert [q.id for q in read_outcomes(packed)] == [q.id for q in plain]
    assert len(plain) == 120 and all(len(q.samples) == 16 for q in plain)


def test_blank_lines_skipped_and_empty_sample_lists_allowed(tmp_path: Path) -> None:
    empty = dict(GOOD, id="q2", samples=[])
    path = write_lines(tmp_path / "o.jsonl", [json.dumps(GOOD), "", "   ", json.dumps(empty)])
    questions = list(read_outcomes(path))
    assert [q.id for q in questions] == ["q1", "q2"]
    assert questions[1].samples == []


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("{not json", ":2: not valid JSON"),
        ('["a list"]', ":2: expected a JSON object"),
        (json.dumps({k: v for k, v in GOOD.items() if k != "id"}), ":2: id: Field required"),
        (
            json.dumps(dict(GOOD, samples=[{"answer": 4, "correct": True}])),
            ":2: samples.0.answer: Input should be a valid string",
        ),
        (
            json.dumps(dict(GOOD, samples=[{"answer": "4", "correct": "yes"}])),
            ":2: samples.0.correct: Input should be a valid boolean",
        ),
        (json.dumps(dict(GOOD, samples=[{"answer": "4", "correct": True, "score": "NaN"}])), ":2: samples.0.score"),
        (
            json.dumps(dict(GOOD, samples=[{"answer": "4", "correct": True}, {"answer": "4", "correct": False}])),
            ":2: samples.1.correct: answer '4' is marked both correct and incorrect",
        ),
        (json.dumps(GOOD), ":2: id: 'q1' already appears on line 1"),
    ],
)
def test_a_bad_line_names_file_line_and_field(tmp_path: Path, line: str, expected: str) -> None:
    path = write_lines(tmp_path / "bad.jsonl", [json.dumps(GOOD), line])
    with pytest.raises(DataFileError) as caught:
        list(read_outcomes(path))
    assert str(caught.value).startswith(str(path))
    assert expected in str(caught.value)
    assert "\n" not in str(caught.value)


def test_streams_questions_before_reaching_a_bad_line(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "o.jsonl", [json.dumps(GOOD), json.dumps(dict(GOOD, id="q2")), "oops"])
    stream = read_outcomes(path)
    assert next(stream).id == "q1"
    assert next(stream).id == "q2"
    with pytest.raises(DataFileError, match=":3:"):
        next(stream)


def test_a_runaway_line_is_refused_without_reading_it_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(outcome_files, "MAX_LINE_BYTES", 1000)
    path = write_lines(tmp_path / "o.jsonl", [json.dumps(GOOD), json.dumps(dict(GOOD, question="x" * 5000))])
    with pytest.raises(DataFileError, match=r":2: line is longer than"):
        list(read_outcomes(path))


def test_unreadable_inputs_give_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DataFileError, match="no such file"):
        list(read_outcomes(tmp_path / "missing.jsonl"))
    with pytest.raises(DataFileError, match="is a directory"):
        list(read_outcomes(tmp_path))
    damaged = tmp_path / "damaged.jsonl.gz"
    text = "".join(json.dumps(dict(GOOD, id=f"q{i}")) + "\n" for i in range(50))
    damaged.write_bytes(gzip.compress(text.encode())[:-30])
    with pytest.raises(DataFileError, match="compressed data is damaged"):
        list(read_outcomes(damaged))


def test_progress_reports_every_byte(tmp_path: Path, example_file: Path) -> None:
    seen: list[int] = []
    list(read_outcomes(example_file, seen.append))
    assert sum(seen) == example_file.stat().st_size


def test_failed_write_leaves_the_previous_file_and_no_debris(tmp_path: Path) -> None:
    target = tmp_path / "labels.jsonl"
    target.write_text("previous\n")

    def rows():  # type: ignore[no-untyped-def]
        yield {"id": "a"}
        raise RuntimeError("interrupted halfway")

    with pytest.raises(RuntimeError):
        write_jsonl(target, rows())
    assert target.read_text() == "previous\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["labels.jsonl"]


def test_output_into_a_missing_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DataFileError, match="does not exist"), atomic_output(tmp_path / "nope" / "x.jsonl"):
        pass
