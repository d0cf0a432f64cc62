"""Drawing graded samples for a question set through the backend pool: the engine of `apportion collect`.

Each question's record is handed to `record` as soon as its samples are graded, so an interrupted run
loses at most the questions in flight.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import aiohttp
from tqdm import tqdm

from answers.equivalence import equivalent
from answers.extract import canonical, extract_answer
from files.questions import Task
from oracle.outcomes import Question, Sample
from service.backends import BackendError, BackendPool, Sampling


async def collect(
    tasks: list[Task],
    backend: str,
    samples: int,
    sampling: Sampling,
    record: Callable[[Question], None],
    *,
    model: str | None = None,
    concurrency: int = 8,
    timeout: float = 300.0,
) -> list[str]:
    """`samples` graded samples of every task, each question passed to `record` when done; what failed."""
    failed: list[str] = []
    gate = asyncio.Semaphore(concurrency)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as client:
        pool = BackendPool([backend], client, model=model, retries=3)
        await pool.name_backends()
        with tqdm(total=len(tasks), unit="question", desc="collect") as bar:

            async def one(task: Task) -> None:
                async with gate:
                    try:
                        question = await sample(pool, task, samples, sampling)
                    except BackendError as exc:
                        failed.append(f"{task.id}: {exc}")
                    else:
                        record(question)
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
