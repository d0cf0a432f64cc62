"""A documented synthetic model of sampled answers, for examples, fixtures and unknown questions.

Each question is a small arithmetic word problem of 1 to 6 steps. A sample is correct with probability
q = sigmoid(skill - 0.8 * steps + noise); otherwise it gives one of a few plausible wrong answers (an
off-by-one, a doubled or a halved result, a dropped step), drawn from weights that are concentrated for some
questions (a shared misconception, which majority vote cannot fix) and spread for others (which it can).
One sample in twenty gives no answer. A reward-model-like `score` is higher for correct samples, with noise.
Longer questions are harder, so text features carry real but partial signal, as on recorded data.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

from oracle.outcomes import Question, Sample

_NAMES = ("Ava", "Ben", "Chen", "Dara", "Eli", "Fatima", "Goro", "Hana")
_ITEMS = ("apples", "marbles", "stickers", "books", "coins", "shells")
_STEPS: tuple[tuple[str, Callable[[int, int], int]], ...] = (
    ("buys {x} more", lambda total, x: total + x),
    ("gives away {x}", lambda total, x: total - x),
    ("doubles the pile", lambda total, x: total * 2),
    ("finds {x} more under the table", lambda total, x: total + x),
    ("loses {x} on the way home", lambda total, x: total - x),
    ("triples what is left", lambda total, x: total * 3),
)


SKILL = 2.5  # the default model's; a stronger model over the same questions has a higher one


def synthetic_outcomes(
    questions: int = 400, samples: int = 32, seed: int = 0, model: str = "synthetic", skill: float = SKILL
) -> Iterator[Question]:
    """Yield `questions` synthetic questions with `samples` recorded samples each; the same seed, the same data.

    Another `model` or `skill` answers the same questions (same ids, texts and difficulty) with samples of its
    own, so several calls make a fleet: e.g. model="strong", skill=4.5 beside the default."""
    rng = np.random.default_rng(seed)
    own = None if (model, skill) == ("synthetic", SKILL) else np.random.default_rng([seed, *model.encode()])
    for index in range(questions):
        text, gold, steps = _word_problem(rng)
        difficulty = 0.8 * steps - rng.normal(0.0, 1.2)
        wrong = _wrong_answers(gold, rng)
        concentration = rng.choice([0.3, 3.0])
        weights = rng.dirichlet(np.full(len(wrong), concentration))
        drawn = _samples(rng, samples, 1.0 / (1.0 + np.exp(-(SKILL - difficulty))), gold, wrong, weights, steps)
        if own is not None:  # the default model's draws above keep the question stream the same
            drawn = _samples(own, samples, 1.0 / (1.0 + np.exp(-(skill - difficulty))), gold, wrong, weights, steps)
        yield Question(
            id=f"synthetic/{index:05d}",
            task="synthetic",
            model=model,
            question=text,
            gold=str(gold),
            level=f"Level {steps}",
            samples=drawn,
        )


def _samples(
    rng: np.random.Generator, count: int, q: float, gold: int, wrong: list[int], weights: np.ndarray, steps: int
) -> list[Sample]:
    drawn = []
    for _ in range(count):
        roll = rng.random()
        if roll < 0.05:
            answer, correct = None, False
        elif roll < 0.05 + 0.95 * q:
            answer, correct = str(gold), True
        else:
            answer, correct = str(wrong[rng.choice(len(wrong), p=weights)]), False
        score = float(rng.normal(1.0 if correct else 0.0, 0.8))
        body = f"Working through the {steps} steps in order. The answer is {answer}." if answer else "Not sure."
        drawn.append(Sample(answer=answer, correct=correct, text=body, score=round(score, 4)))
    return drawn


def _word_problem(rng: np.random.Generator) -> tuple[str, int, int]:
    name, item = _NAMES[int(rng.integers(len(_NAMES)))], _ITEMS[int(rng.integers(len(_ITEMS)))]
    total = int(rng.integers(5, 40))
    steps = int(rng.integers(1, 7))
    sentences = [f"{name} has {total} {item}."]
    for _ in range(steps):
        phrase, apply = _STEPS[int(rng.integers(len(_STEPS)))]
        x = int(rng.integers(1, max(2, min(total, 20))))
        total = int(apply(total, x))
        sentences.append(f"Then {name} {phrase.format(x=x)}.")
    sentences.append(f"How many {item} does {name} have now?")
    return " ".join(sentences), total, steps


def _wrong_answers(gold: int, rng: np.random.Generator) -> list[int]:
    candidates = {gold + 1, gold - 1, gold * 2, gold // 2, gold + int(rng.integers(2, 10))}
    candidates.discard(gold)
    return sorted(candidates)
