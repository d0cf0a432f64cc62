"""`apportion`: one command line with subcommands. Each command is a module with its `--help` texts, its own
arguments and its body (`cli.options.Command`); the bodies import the web stack only when they run, so that
`apportion label` starts quickly."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from cli import collect, demo, evaluate, example, frontier, key, label, pipeline, serve, simulate, train
from cli.options import Command, Parser, UsageError, register
from files.errors import DataFileError
from oracle.errors import OracleInputError

COMMANDS: tuple[Command, ...] = (
    example,
    label,
    frontier,
    train,
    evaluate,
    serve,
    simulate,
    key,
    demo,
    collect,
    pipeline,
)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except (DataFileError, UsageError, OracleInputError) as exc:
        print(f"apportion {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code if isinstance(exc, UsageError) else 1
    except KeyboardInterrupt:
        print("apportion: interrupted; no output was written", file=sys.stderr)
        return 130


def build_parser() -> Parser:
    parser = Parser(
        prog="apportion", description="Decide how many samples each LLM query deserves under a compute budget."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=Parser)
    for command in COMMANDS:
        register(sub, command)
    return parser


if __name__ == "__main__":
    sys.exit(main())
