"""Question sets for `apportion collect`: JSONL files in our own, GSM8K's or MATH's format, or a Hugging Face
dataset by name (`hf:gsm8k:main@test`) when the `datasets` package is installed and the machine is online.

Every record becomes a `Task`: an id, the question and the gold answer.
- ours: `{"id"?, "question", "gold"}`
- GSM8K: `{"question", "answer": "...reasoning... #### 72"}` (the gold is what follows `####`)
- MATH: `{"problem", "solution": "... \\boxed{...}", "level"?}` (the gold is the last `\\boxed{}`)
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from answers.extract import last_boxed
from files.errors import DataFileError


@dataclass(frozen=True)
class Task:
    id: str
    question: str
    gold: str
    level: str | None = None


def read_question_set(source: str) -> list[Task]:
    """All tasks of a file or `hf:` dataset; a bad record is one `DataFileError` naming it."""
    if source.startswith("hf:"):
        return list(_tasks(_hugging_face(source[3:]), source))
    path = Path(source)
    if not path.is_file():
        raise DataFileError(f"{source}: no such file (or use hf:NAME[:CONFIG][@SPLIT] for a Hugging Face dataset)")
    records = []
    with open(path, encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataFileError(f"{source}:{number}: not valid JSON ({exc.msg})") from None
            if not isinstance(record, dict):
                raise DataFileError(f"{source}:{number}: expected a JSON object")
            records.append((number, record))
    tasks = list(_tasks(((f"{path.stem}/{n:05d}", r) for n, r in records), source))
    if not tasks:
        raise DataFileError(f"{source}: no questions")
    ids = [task.id for task in tasks]
    if len(set(ids)) != len(ids):
        raise DataFileError(f"{source}: question ids repeat; ids must be unique")
    return tasks


def _tasks(records: Iterable[tuple[str, dict[str, Any]]], source: str) -> Iterator[Task]:
    for fallback_id, record in records:
        question = record.get("question", record.get("problem"))
        gold = _gold(record)
        where = f"{source}: record {fallback_id}"
        if not isinstance(question, str) or not question.strip():
            raise DataFileError(f"{where}: needs a 'question' (or MATH's 'problem') string")
        if gold is None:
            raise DataFileError(
                f"{where}: needs a gold answer ('gold', GSM8K's 'answer' with ####, or MATH's 'solution')"
            )
        level = record.get("level")
        yield Task(
            str(record.get("id", record.get("unique_id", fallback_id))),
            question,
            gold,
            None if level is None else str(level),
        )


def _gold(record: dict[str, Any]) -> str | None:
    if isinstance(record.get("gold"), str | int | float):
        return str(record["gold"])
    answer = record.get("answer")
    if isinstance(answer, str) and "####" in answer:
        return answer.rsplit("####", 1)[1].strip()
    if isinstance(answer, str | int | float):
        return str(answer)
    solution = record.get("solution")
    if isinstance(solution, str):
        return last_boxed(solution)
    return None


def _hugging_face(spec: str) -> Iterator[tuple[str, dict[str, Any]]]:
    name, _, split = spec.partition("@")
    name, _, config = name.partition(":")
    try:
        import datasets  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        raise DataFileError("hf: question sets need the 'datasets' package (pip install datasets)") from None
    try:
        rows = datasets.load_dataset(name, config or None, split=split or "test")
    except Exception as exc:  # offline, unknown name, unknown split: datasets raises many kinds
        raise DataFileError(f"hf:{spec}: cannot load ({type(exc).__name__}: {exc})") from None
    for index, row in enumerate(rows):
        yield f"{name}/{index:05d}", dict(row)
