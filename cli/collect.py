"""`apportion collect`: N samples per question from an OpenAI-compatible backend, graded, as outcome records.

Started again with the same --out after an interruption, it cuts off a last line that was half written and
collects only the questions not yet recorded: no question is lost or written twice.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from cli.options import Parser, drawing_options, positive_float, positive_int

HELP = "draw and grade samples for a question set through a backend"
DESCRIPTION = (
    "Draw N samples per question from an OpenAI-compatible backend, grade each "
    "final answer against the gold one (math-aware), and append outcome records to --out. "
    "Interrupted, run it again: it resumes where it stopped."
)
EXAMPLES = """\
examples:
  apportion collect --questions gsm8k_test.jsonl --backend http://127.0.0.1:8000/v1 --samples 16 --out gsm8k.jsonl
  apportion collect --questions hf:gsm8k:main@test --backend http://vllm:8000/v1 --samples 32 --out gsm8k.jsonl
"""
PARENTS = (drawing_options,)


def add_arguments(parser: Parser) -> None:
    parser.add_argument("--samples", type=positive_int, required=True, metavar="N", help="samples per question")
    parser.add_argument("--out", required=True, metavar="FILE", help="outcome file to write or resume (.jsonl)")
    parser.add_argument("--model", help="model name to ask the backend for (default: the one it lists)")
    parser.add_argument("--temperature", type=float, default=0.8, help="sampling temperature (0.8)")
    parser.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling (1.0)")
    parser.add_argument("--max-tokens", type=positive_int, default=512, help="tokens per sample (512)")
    parser.add_argument("--timeout", type=positive_float, default=300.0, help="seconds per backend request (300)")


def run(args: argparse.Namespace) -> int:
    from files.outcomes import OutcomeAppender, recorded_ids
    from files.questions import read_question_set
    from service.backends import Sampling
    from service.collection import collect

    tasks = read_question_set(args.questions)
    out = Path(args.out)
    done = recorded_ids(out)
    todo = [task for task in tasks if task.id not in done]
    print(
        f"{len(tasks)} questions in {args.questions}; {len(done)} already in {out}; collecting {len(todo)} "
        f"× {args.samples} samples from {args.backend}",
        file=sys.stderr,
    )
    sampling = Sampling(args.temperature, args.top_p, args.max_tokens)
    failed: list[str] = []
    if todo:
        with OutcomeAppender(out) as append:
            drawing = collect(
                todo,
                args.backend,
                args.samples,
                sampling,
                append,
                model=args.model,
                concurrency=args.concurrency,
                timeout=args.timeout,
            )
            failed = asyncio.run(drawing)
    if failed:
        print(
            f"{len(failed)} questions got no samples ({failed[0]}); run the same command again to retry them",
            file=sys.stderr,
        )
        return 1
    print(f"{out}: {len(tasks)} questions recorded", file=sys.stderr)
    return 0
