"""How the shared options become data: outcome files read into accuracy curves over actions (one model's,
streamed, or several models' matched by question), and into what the policies learn from."""

from __future__ import annotations

import argparse
import functools
import sys
import warnings
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from cli.options import UsageError
from files.errors import DataFileError
from files.outcomes import Source, model_name, read_fleet, read_outcomes
from oracle.action_curves import ActionCurves, fleet_curves, single_model_curves
from oracle.actions import parse_prices
from oracle.curves import accuracy_curves
from oracle.errors import OracleInputError
from oracle.outcomes import Question

if TYPE_CHECKING:
    from allocator.data import Outcomes

_PROGRESS_FROM_BYTES = 4 * 2**20


def load_curves(args: argparse.Namespace) -> ActionCurves:
    """The curves `curve_options` describe: one file streamed (with a progress bar when it is large), or several,
    one per model, matched by question id."""
    sources: list[Source] = args.outcomes
    if len(sources) == 1:
        return _one_model(args, sources[0])
    if args.draws:
        raise UsageError("--draws estimates one model's majority vote: give it one outcome file")
    fleet = read_fleet(sources)
    _note_dropped(fleet.dropped)
    try:
        prices = parse_prices(args.price, fleet.models)
        return fleet_curves(fleet, args.actions, prices, args.cost, args.aggregator)
    except OracleInputError as exc:
        raise UsageError(str(exc)) from None


def _one_model(args: argparse.Namespace, source: Source) -> ActionCurves:
    from tqdm import tqdm

    path = source.path
    size = path.stat().st_size if path.is_file() else 0
    first: list[Question] = []

    def remembering(questions: Iterator[Question]) -> Iterator[Question]:
        for question in questions:
            if not first:
                first.append(question)
            yield question

    quiet = size < _PROGRESS_FROM_BYTES  # smaller files are read before a bar would be worth drawing
    with tqdm(
        total=size,
        unit="B",
        unit_scale=True,
        desc="reading outcomes",
        file=sys.stderr,
        disable=quiet or None,
        leave=False,
    ) as bar:
        questions = remembering(read_outcomes(path, bar.update))
        curves = accuracy_curves(questions, args.actions, args.aggregator, draws=args.draws, seed=args.seed)
    if not curves.ids:
        raise DataFileError(f"{path}: holds no questions")
    name = model_name(source, first[0] if first else None)
    try:
        prices = parse_prices(args.price, [name])
    except OracleInputError as exc:
        raise UsageError(str(exc)) from None
    return single_model_curves(curves, name, prices[name], args.cost)


def note_short_questions(curves: ActionCurves) -> None:
    """Said once the command has succeeded, so that a failure stays one line."""
    if curves.short:
        print(
            f"note: {curves.short} questions have fewer samples of a model than its largest action; their curves "
            "are held flat beyond the samples recorded",
            file=sys.stderr,
        )


def load_outcomes(args: argparse.Namespace) -> Outcomes:
    """What `learning_options` describe (one file, or one per model matched by question); at most leave-one-out
    folds."""
    from allocator.data import Outcomes

    sources: list[Source] = args.outcomes
    try:
        if len(sources) == 1:
            (source,) = sources
            data = Outcomes.read(read_outcomes(source.path), args.actions, source.name, dict(args.price), args.cost)
        else:
            fleet = read_fleet(sources)
            _note_dropped(fleet.dropped)
            prices = parse_prices(args.price, fleet.models)
            data = Outcomes.of_fleet(fleet, args.actions, prices, args.cost)
    except OracleInputError as exc:
        raise UsageError(str(exc)) from None
    if data.n < 2:
        raise DataFileError(f"{sources[0].path}: needs at least 2 questions to learn from, has {data.n}")
    args.folds = min(args.folds, data.n)
    return data


def _note_dropped(dropped: dict[str, int]) -> None:
    for model, count in dropped.items():
        if count:
            print(f"note: {count} questions of {model} are not in every file; left out", file=sys.stderr)


def quietly(command: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """scikit-learn warns about folds that miss a rare action; the policies handle it, so users see nothing."""

    @functools.wraps(command)
    def run(args: argparse.Namespace) -> int:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", module="sklearn")
            return command(args)

    return run
