"""Shared fixtures: generated outcome files, and the recorded data beside the checkout when it is there."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cli.outcome_files import write_jsonl
from oracle.synthetic import synthetic_outcomes

SHARED_DATA = Path(os.environ.get("APPORTION_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def recorded(name: str) -> Path:
    """A recorded outcome file from ../shared/data; the test is skipped where the data is absent."""
    path = SHARED_DATA / name
    if not path.is_file():
        pytest.skip(f"recorded data {path} is not available")
    return path


@pytest.fixture(scope="session")
def example_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("outcomes") / "example.jsonl"
    write_jsonl(path, (q.to_record() for q in synthetic_outcomes(questions=120, samples=16, seed=7)))
    return path
