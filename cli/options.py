"""What several commands share: the parser class, argument types, option groups defined once, and how
those options become data (curves for the oracle, outcomes for learning)."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, Protocol, TypeVar

from files.outcomes import Source
from oracle.costs import COST_UNITS
from oracle.curves import AGGREGATORS, DEFAULT_ACTIONS

if TYPE_CHECKING:
    pass

T = TypeVar("T")
_PROGRESS_FROM_BYTES = 4 * 2**20  # smaller files are read before a bar would be worth drawing


class UsageError(Exception):
    """A flag or setting that cannot be used as given (not a file's fault), worded for the user."""

    exit_code = 1


class MisconfiguredFleet(UsageError):
    """The backends given cannot serve the policy (a model none of them serves): exit 2, as a usage error."""

    exit_code = 2


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        """One line naming what is wrong, instead of argparse's usage dump."""
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


class Command(Protocol):
    """What a command's module defines: its `--help` texts, the option groups it shares, its own arguments, and
    its body. `cli.main` registers every module in its list under the module's name."""

    @property
    def __name__(self) -> str: ...
    @property
    def HELP(self) -> str: ...  # module constants, read through the protocol
    @property
    def DESCRIPTION(self) -> str: ...
    @property
    def EXAMPLES(self) -> str: ...
    @property
    def PARENTS(self) -> tuple[Callable[[], Parser], ...]: ...

    def add_arguments(self, parser: Parser) -> None: ...

    def run(self, args: argparse.Namespace) -> int: ...


def register(sub: Any, command: Command) -> None:
    """Add `command` to argparse's subparsers as `apportion NAME`."""
    parser: Parser = sub.add_parser(
        command.__name__.rpartition(".")[2],
        help=command.HELP,
        description=command.DESCRIPTION,
        epilog=command.EXAMPLES or None,
        parents=[group() for group in command.PARENTS],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    command.add_arguments(parser)
    parser.set_defaults(run=command.run)


# --- argument types ---------------------------------------------------------------------------------------


def _number(convert: Callable[[str], T], kind: str, accept: Callable[[T], bool], rule: str) -> Callable[[str], T]:
    """An argparse type: `convert`, then `accept`, with one-line messages naming the offending text."""

    def parse(text: str) -> T:
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {kind}") from None
        if not accept(value):
            raise argparse.ArgumentTypeError(f"{text!r} {rule}")
        return value

    return parse


positive_float = _number(float, "a number", lambda v: math.isfinite(v) and v > 0, "must be a positive, finite number")
positive_int = _number(int, "a whole number", lambda v: v >= 1, "must be at least 1")
at_least_two = _number(int, "a whole number", lambda v: v >= 2, "must be at least 2")


def actions(text: str) -> tuple[int, ...]:
    try:
        ks = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of sample counts") from None
    if any(k < 1 for k in ks) or len(set(ks)) != len(ks):
        raise argparse.ArgumentTypeError(f"{text!r}: sample counts must be distinct and at least 1")
    return ks


def source(text: str) -> Source:
    """`FILE` or `NAME=FILE`: a name is only split off when the whole text is not an existing file."""
    name, equals, rest = text.partition("=")
    if equals and name and "/" not in name and not Path(text).exists():
        return Source(Path(rest), name)
    return Source(Path(text))


def price(text: str) -> tuple[str, float]:
    name, equals, value = text.partition("=")
    if not equals or not name:
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME=X (a model's name and its price)")
    return name, positive_float(value)


def budgets(text: str) -> list[float]:
    return [positive_float(part) for part in text.split(",")]


def action_list(ks: tuple[int, ...]) -> str:
    return ",".join(map(str, ks))


# --- option groups ----------------------------------------------------------------------------------------


def outcome_options() -> Parser:
    """Every command that reads outcome files: one per model, the sample counts to choose from, the prices."""
    group = Parser(add_help=False)
    group.add_argument(
        "--outcomes",
        required=True,
        action="append",
        type=source,
        metavar="[NAME=]FILE",
        help="recorded samples, .jsonl or .jsonl.gz; repeat it, one file per model, for model choice (questions "
        "are matched by id; NAME defaults to the file's model field)",
    )
    group.add_argument(
        "--actions",
        type=actions,
        default=DEFAULT_ACTIONS,
        metavar="K,K,...",
        help=f"the sample counts to choose from ({action_list(DEFAULT_ACTIONS)}); each model's are capped at "
        "the samples it recorded",
    )
    group.add_argument(
        "--price",
        action="append",
        type=price,
        default=[],
        metavar="NAME=X",
        help="a model's price per sample (or per token, with --cost tokens); 1 unless given",
    )
    group.add_argument(
        "--cost",
        choices=COST_UNITS,
        default="samples",
        help="the unit of every cost and budget (samples): an action of k samples costs k times its model's "
        "price, or with tokens k times the question's mean tokens per sample of that model (a sample's `tokens` "
        "field where the file has one, else the words and punctuation of its text) times the price",
    )
    return group


def curve_options() -> Parser:
    """The oracle's commands (`label`, `frontier`): how samples become accuracy curves and what they cost."""
    group = Parser(add_help=False, parents=[outcome_options()])
    group.add_argument(
        "--aggregator",
        choices=AGGREGATORS,
        default="majority",
        help="how k samples become one answer: majority vote, best-of by score, or pass@k (majority)",
    )
    group.add_argument(
        "--draws",
        type=positive_int,
        default=None,
        metavar="N",
        help="estimate majority vote from N random orders of the samples instead of exactly",
    )
    group.add_argument("--seed", type=int, default=0, help="seed for --draws (0)")
    return group


def learning_options() -> Parser:
    """`train` and `evaluate`: cross-validation by question."""
    group = Parser(add_help=False, parents=[outcome_options()])
    group.add_argument("--folds", type=at_least_two, default=5, help="cross-validation folds, by question (5)")
    group.add_argument("--seed", type=int, default=0, help="seed for folds and replays (0)")
    return group


def drawing_options() -> Parser:
    """`collect` and `pipeline`: which questions, drawn from which backend."""
    group = Parser(add_help=False)
    group.add_argument(
        "--questions",
        required=True,
        metavar="FILE",
        help="JSONL (ours, GSM8K's or MATH's format) or hf:NAME[:CONFIG][@SPLIT]",
    )
    group.add_argument("--backend", required=True, metavar="URL", help="OpenAI-compatible base URL")
    group.add_argument("--concurrency", type=positive_int, default=8, help="questions in flight (8)")
    return group
