"""`apportion collect` against real engines: vLLM answers a round with n, llama.cpp gets one request a sample."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli.main import main
from files.outcomes import read_outcomes


@pytest.mark.parametrize("engine", ["vllm_url", "llamacpp_url"])
def test_collect_records_graded_samples(engine: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    url = request.getfixturevalue(engine)
    questions = tmp_path / "questions.jsonl"
    questions.write_text(
        json.dumps({"id": "add", "question": "What is 12 plus 30? Answer with a number.", "gold": "42"})
        + "\n"
        + json.dumps({"question": "What is 3 times 4?", "answer": "3 * 4 = 12\n#### 12"})
        + "\n"
    )
    out = tmp_path / "outcomes.jsonl"
    argv = [
        "collect",
        "--questions",
        str(questions),
        "--backend",
        url,
        "--samples",
        "3",
        "--max-tokens",
        "24",
        "--temperature",
        "1.0",
        "--out",
        str(out),
    ]
    assert main(argv) == 0
    collected = list(read_outcomes(out))
    assert {q.id for q in collected} == {"add", "questions/00002"}
    for question in collected:
        assert len(question.samples) == 3 and all(s.text for s in question.samples)
        assert all(s.correct == (s.answer == question.gold) for s in question.samples)
    assert main(argv) == 0 and len(out.read_text().splitlines()) == 2, "a second run finds nothing left to do"
