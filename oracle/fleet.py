"""Several models' outcomes over the same questions: the data of model choice.

Each model's file answers some questions, matched across models by `id`. Only the questions every model
answered are kept, in the order of the first model's file; how many each file loses is reported, not hidden.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from oracle.errors import OracleInputError
from oracle.outcomes import Question


@dataclass(frozen=True)
class Fleet:
    """Questions answered by every model: `answers[i][m]` is model `models[m]`'s record of question i."""

    models: tuple[str, ...]
    answers: tuple[tuple[Question, ...], ...]
    dropped: dict[str, int]
    """Per model: how many of its questions another model lacks (left out)."""

    @property
    def n(self) -> int:
        return len(self.answers)

    @property
    def ids(self) -> list[str]:
        return [records[0].id for records in self.answers]

    @property
    def texts(self) -> list[str]:
        return [records[0].question for records in self.answers]

    def of(self, model: str) -> list[Question]:
        """One model's records, in the fleet's question order."""
        column = self.models.index(model)
        return [records[column] for records in self.answers]


def align(named: Sequence[tuple[str, Iterable[Question]]]) -> Fleet:
    """The questions every model answered. Model names must be distinct; an empty intersection is an error."""
    names = [name for name, _ in named]
    if len(set(names)) != len(names):
        repeated = sorted({name for name in names if names.count(name) > 1})
        raise OracleInputError(f"model {repeated[0]!r} is given twice; name each file: --outcomes NAME=FILE")
    tables: list[dict[str, Question]] = []
    order: list[str] = []
    for index, (_, questions) in enumerate(named):
        table: dict[str, Question] = {}
        for question in questions:
            table[question.id] = question
            if index == 0:
                order.append(question.id)
        tables.append(table)
    common = set(order).intersection(*(table.keys() for table in tables[1:]))
    if not common:
        raise OracleInputError(f"the outcome files of {', '.join(names)} share no question id")
    kept = [qid for qid in order if qid in common]
    answers = tuple(tuple(table[qid] for table in tables) for qid in kept)
    dropped = {name: len(table) - len(kept) for name, table in zip(names, tables, strict=True)}
    return Fleet(tuple(names), answers, dropped)
