"""The outcome record: one question with its recorded samples (the format of `../shared/README.md`).

Parsing is pure: it turns one line of text into a validated `Question`. Opening files, counting lines and
reporting where a bad line sits is the job of the edge (`files.outcomes`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictStr,
    ValidationError,
    field_validator,
    model_validator,
)

from answers.extract import canonical


class Sample(BaseModel):
    """One independent draw: its extracted answer (None when it produced none) and whether it was right."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    answer: StrictStr | None
    correct: StrictBool
    text: StrictStr | None = None
    score: float | None = None
    tokens: int | None = Field(default=None, ge=0)
    """Tokens the sample generated, where the file records it (cost in tokens counts this, else the text)."""

    @field_validator("score")
    @classmethod
    def _finite_score(cls, score: float | None) -> float | None:
        if score is not None and not math.isfinite(score):
            raise ValueError("score must be a finite number")
        return score


class Question(BaseModel):
    """A question, its gold answer and every sample recorded for it, in the order they were drawn."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    id: StrictStr
    question: StrictStr
    samples: list[Sample]
    task: StrictStr | None = None
    model: StrictStr | None = None
    gold: StrictStr | None = None
    level: StrictStr | None = None

    def to_record(self) -> dict[str, object]:
        """The question as an outcome-file record: optional sample fields appear only when present."""
        record = self.model_dump(exclude={"samples"})
        record["samples"] = [
            {key: value for key, value in sample.model_dump().items() if value is not None or key == "answer"}
            for sample in self.samples
        ]
        return record

    @model_validator(mode="after")
    def _answers_agree_on_correctness(self) -> Question:
        # Correctness belongs to the answer: the vote-based aggregators need it to be one flag per answer.
        seen: dict[str, bool] = {}
        for index, sample in enumerate(self.samples):
            if sample.answer is None:
                continue
            first = seen.setdefault(sample.answer, sample.correct)
            if first != sample.correct:
                raise ValueError(
                    f"samples.{index}.correct: answer {sample.answer!r} is marked both correct and incorrect"
                )
        return self


def is_right(records: Sequence[Question], answer: str | None) -> bool:
    """Whether `answer` (as the gateway extracts it) is right for the question these records (one per model)
    answer: as recorded for a sample that gave it, else by the gold answer."""
    if answer is None:
        return False
    for record in records:
        for sample in record.samples:
            if sample.answer is not None and canonical(sample.answer) == answer:
                return sample.correct
    return any(record.gold is not None and canonical(record.gold) == answer for record in records)


class OutcomeLineError(ValueError):
    """A line that is not a valid outcome record; `field` is a dotted path such as `samples.3.correct`."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.message = message


def parse_outcome_line(line: str | bytes) -> Question:
    """Validate one JSON line, raising `OutcomeLineError` that names the first offending field."""
    try:
        return Question.model_validate_json(line)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        field = ".".join(str(part) for part in first["loc"])
        if first["type"].startswith("json"):
            raise OutcomeLineError("", f"not valid JSON ({first['msg']})") from None
        if first["type"] == "model_type":
            raise OutcomeLineError(field, "expected a JSON object") from None
        message = first["msg"].removeprefix("Value error, ")
        if not field and ": " in message:  # a record-level check names its own field
            field, message = message.split(": ", 1)
        raise OutcomeLineError(field, message) from None
