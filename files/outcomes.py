"""Reading and writing files at the edge: outcome files (JSONL or gzip), streamed and validated line by line."""

from __future__ import annotations

import gzip
import json
import math
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, cast

from files.errors import DataFileError
from oracle.errors import OracleInputError
from oracle.fleet import Fleet, align
from oracle.outcomes import OutcomeLineError, Question, parse_outcome_line

MAX_LINE_BYTES = 64 * 1024 * 1024  # one question with its samples; anything larger is surely not a record
_GZIP_MAGIC = b"\x1f\x8b"


def read_outcomes(path: Path, progress: Callable[[int], object] | None = None) -> Iterator[Question]:
    """Yield the questions of a `.jsonl` or gzip-compressed outcome file, one at a time.

    Blank lines are skipped; a bad line, a duplicate id or an unreadable file raise `DataFileError`.
    `progress` is called with the number of (compressed) bytes consumed since its last call.
    """
    first_seen: dict[str, int] = {}
    with _open_binary(path) as (stream, raw):
        position = 0
        for number, line in enumerate(_lines(stream, path), start=1):
            if progress is not None:
                now = raw.tell()
                progress(now - position)
                position = now
            if not line.strip():
                continue
            try:
                question = parse_outcome_line(line)
            except OutcomeLineError as exc:
                raise DataFileError(f"{path}:{number}: {exc}") from None
            if question.id in first_seen:
                earlier = first_seen[question.id]
                raise DataFileError(f"{path}:{number}: id: {question.id!r} already appears on line {earlier}")
            first_seen[question.id] = number
            yield question


@contextmanager
def _open_binary(path: Path) -> Iterator[tuple[IO[bytes], IO[bytes]]]:
    try:
        raw = open(path, "rb")  # noqa: SIM115 - closed below, after the caller is done streaming
    except FileNotFoundError:
        raise DataFileError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise DataFileError(f"{path}: is a directory, not an outcome file") from None
    except OSError as exc:
        raise DataFileError(f"{path}: cannot be read ({exc.strerror})") from None
    with raw:
        if raw.read(2) == _GZIP_MAGIC:
            raw.seek(0)
            with gzip.GzipFile(fileobj=raw) as unzipped:
                yield cast(IO[bytes], unzipped), raw
        else:
            raw.seek(0)
            yield raw, raw


def _lines(stream: IO[bytes], path: Path) -> Iterator[bytes]:
    """Lines of at most MAX_LINE_BYTES, so that one runaway line cannot exhaust memory."""
    number = 0
    while True:
        number += 1
        try:
            line = stream.readline(MAX_LINE_BYTES + 1)
        except (OSError, EOFError, gzip.BadGzipFile) as exc:
            raise DataFileError(f"{path}:{number}: the compressed data is damaged ({exc})") from None
        if not line:
            return
        if len(line) > MAX_LINE_BYTES:
            raise DataFileError(f"{path}:{number}: line is longer than {MAX_LINE_BYTES // 2**20} MiB")
        yield line


@contextmanager
def atomic_output(path: Path) -> Iterator[IO[str]]:
    """Write a text file that appears whole or not at all: a failure leaves any previous file untouched."""
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise DataFileError(f"{path}: is a directory; name a file to write")
    if not directory.is_dir():
        raise DataFileError(f"{path}: the directory {directory} does not exist")
    try:
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=directory)
    except OSError as exc:
        raise DataFileError(f"{path}: cannot be written ({exc.strerror})") from None
    try:
        with open(handle, "w", encoding="utf-8", newline="\n") as out:
            yield out
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)  # mkstemp makes it private; give it an ordinary file's mode
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def finite_or_none(value: float) -> float | None:
    """JSON has no NaN or infinity: such a value is written as null."""
    return value if math.isfinite(value) else None


def write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> int:
    """Write rows as JSON lines, atomically; returns how many were written."""
    count = 0
    with atomic_output(path) as out:
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False, allow_nan=False) + "\n")
            count += 1
    return count


def recorded_ids(out: Path) -> set[str]:
    """Ids already in an outcome file being collected. A last line without its newline (an interrupted
    write) is cut off, so that collection can resume after it."""
    if not out.exists():
        return set()
    if out.is_dir():
        raise DataFileError(f"{out}: is a directory; name a file to write")
    data = out.read_bytes()
    complete = data[: data.rfind(b"\n") + 1]
    if len(complete) != len(data):
        with open(out, "r+b") as handle:
            handle.truncate(len(complete))
    ids = set()
    for number, line in enumerate(complete.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            ids.add(parse_outcome_line(line).id)
        except OutcomeLineError as exc:
            raise DataFileError(f"{out}:{number}: not an outcome record ({exc}); choose another --out") from None
    return ids


class OutcomeAppender:
    """`with OutcomeAppender(path) as append:` each `append(question)` is one whole line, on disk (fsync'ed)
    before the next question counts as done."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __enter__(self) -> Callable[[Question], None]:
        self.sink = open(self.path, "a", encoding="utf-8")
        return self.append

    def append(self, question: Question) -> None:
        self.sink.write(json.dumps(question.to_record(), ensure_ascii=False) + "\n")
        self.sink.flush()
        os.fsync(self.sink.fileno())

    def __exit__(self, *exc: object) -> None:
        self.sink.close()


@dataclass(frozen=True)
class Source:
    """An outcome file, and the name of the model it records (None: the file's own `model` field)."""

    path: Path
    name: str | None = None


def model_name(source: Source, first: Question | None) -> str:
    """The given name, else the records' `model`, else the file's name."""
    if source.name:
        return source.name
    if first is not None and first.model:
        return first.model
    return source.path.name.split(".")[0]


def read_fleet(sources: Sequence[Source]) -> Fleet:
    """Every file whole, each under its model's name, matched by question id (see `oracle.fleet.align`)."""
    named = []
    for source in sources:
        questions = list(read_outcomes(source.path))
        if not questions:
            raise DataFileError(f"{source.path}: holds no questions")
        named.append((model_name(source, questions[0]), questions))
    try:
        return align(named)
    except OracleInputError as exc:
        raise DataFileError(str(exc)) from None
