"""`apportion collect`: N samples per question from an OpenAI-compatible backend, graded, as outcome records.

Each question's record is appended (and flushed to disk) as soon as its samples are graded, so an
interrupted run loses at most the questions in flight. Started again with the same --out, it reads what is
there, cuts off a last line that was half written, and collects only the questions not yet recorded: no
question is lost or written twice.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path
from typing import IO

import aiohttp
from tqdm import tqdm

from cli.outcome_files import DataFileError
from cli.question_sets import Task, read_question_set
from oracle.outcomes import OutcomeLineError, Question, Sample, parse_outcome_line
from service.answers import canonical, extract_answer
from service.backends import BackendError, BackendPool, Sampling
from service.grading import equivalent


def collect(args: argparse.Namespace) -> int:
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
    failed = asyncio.run(_collect(todo, out, args, sampling)) if todo else []
    if failed:
        print(
            f"{len(failed)} questions got no samples ({failed[0]}); run the same command again to retry them",
            file=sys.stderr,
        )
        return 1
    print(f"{out}: {len(tasks)} questions recorded", file=sys.stderr)
    return 0


def recorded_ids(out: Path) -> set[str]:
    """Ids already in `out`. A last line without its newline (an interrupted write) is cut off."""
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


async def _collect(tasks: list[Task], out: Path, args: argparse.Namespace, sampling: Sampling) -> list[str]:
    failed: list[str] = []
    gate = asyncio.Semaphore(args.concurrency)
    timeout = aiohttp.ClientTimeout(total=args.timeout)
    async with aiohttp.ClientSession(timeout=timeout) as client:
        pool = BackendPool([args.backend], client, model=args.model, retries=3)
        await pool.models()
        with open(out, "a", encoding="utf-8") as sink, tqdm(total=len(tasks), unit="question", desc="collect") as bar:

            async def one(task: Task) -> None:
                async with gate:
                    try:
                        question = await sample(pool, task, args.samples, sampling)
                    except BackendError as exc:
                        failed.append(f"{task.id}: {exc}")
                    else:
                        append(sink, question)
                    bar.update()

            await asyncio.gather(*(one(task) for task in tasks))
    return failed


async def sample(pool: BackendPool, task: Task, n: int, sampling: Sampling) -> Question:
    """n graded samples; samples that fail are asked for again, up to twice."""
    texts: list[str] = []
    for _ in range(3):
        if len(texts) >= n:
            break
        draw = await pool.draw([{"role": "user", "content": task.question}], n - len(texts), sampling)
        texts += draw.texts
    return Question(
        id=task.id, question=task.question, gold=task.gold, level=task.level, samples=grade(texts, task.gold)
    )


def grade(texts: list[str], gold: str) -> list[Sample]:
    """Each text's final answer and whether it is the gold one. Answers that are equivalent to each other
    (0.5 and 1/2) are written the same way, as the first seen (the gold's own form when right), so that
    they vote together."""
    forms: list[str] = []
    samples = []
    for text in texts:
        answer = extract_answer(text)
        correct = equivalent(answer, gold)
        if answer is not None:
            if correct:
                answer = canonical(gold) or gold.strip()
            else:
                answer = next((form for form in forms if form == answer or equivalent(answer, form)), answer)
                forms.append(answer)
        samples.append(Sample(answer=answer, correct=correct, text=text))
    return samples


def append(sink: IO[str], question: Question) -> None:
    """One whole line, on disk before the next question is counted as done."""
    sink.write(json.dumps(question.to_record(), ensure_ascii=False) + "\n")
    sink.flush()
    os.fsync(sink.fileno())
