"""`apportion simulate`: an OpenAI-compatible server with vLLM's response shapes that replays recorded samples.

A known question (matched on the last user message, or the prompt, exactly as recorded) is answered with its
recorded samples. With a `seed`, choice i of a request uses seed + i (vLLM's rule) and picks sample
(seed + i) mod m of a fixed shuffle of the question's m samples: a client that advances the seed by the
samples it has drawn gets distinct samples, without replacement, as the offline replays assume. Without a
seed, samples are drawn at random with replacement. Texts are the recorded ones where present; a text
that does not state its recorded answer in a form the gateway extracts (program-of-thought code) gets a
closing "The answer is X." line; a sample that gave no answer says so.

Several models can be served at once (`Simulator.fleet`), each replaying its own file under its own name.

An unknown question gets the synthetic model of `oracle.synthetic` keyed on its text: a correct answer with
probability q (fixed by the text's hash), otherwise one of three wrong ones.
"""

from __future__ import annotations

import asyncio
import time
import uuid
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from answers.extract import canonical, extract_answer
from oracle.outcomes import Question
from oracle.votes import token_count

NO_ANSWER = "I could not work this one out."


@dataclass(frozen=True)
class Recorded:
    texts: tuple[str, ...]
    """One reply text per recorded sample, in a fixed shuffled order."""


class SimulatedRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: str | None = None
    messages: list[dict[str, Any]] | None = None
    prompt: str | list[str] | None = None
    n: int = Field(default=1, ge=1, le=256)
    seed: int | None = None
    temperature: float | None = None
    max_tokens: int | None = Field(default=None, ge=1)


def reply_text(answer: str | None, text: str | None) -> str:
    """What a recorded sample says, made to state its recorded answer in a form the gateway extracts."""
    if answer is None:
        return NO_ANSWER
    if text and extract_answer(text) == canonical(answer):
        return text
    return f"{text.rstrip()}\nThe answer is {answer}." if text else f"The answer is {answer}."


class Simulator:
    """Recorded questions by text, per model, and the synthetic model for the rest.

    Several models (`Simulator.fleet`) are served from one process, each under its own name in `/v1/models`
    and answering from its own recorded samples, as a fleet of one engine per model would; a request naming
    none of them is refused, as vLLM refuses it. With one model any name is accepted (older clients)."""

    def __init__(self, questions: Iterable[Question], model: str = "simulated", latency: float = 0.0) -> None:
        self.latency = latency
        self.replays = {model: _by_text(questions)}

    @classmethod
    def fleet(cls, models: Mapping[str, Iterable[Question]], latency: float = 0.0) -> Simulator:
        if not models:
            raise ValueError("a simulated fleet needs at least one model")
        simulator = cls([], next(iter(models)), latency)
        simulator.replays = {name: _by_text(questions) for name, questions in models.items()}
        return simulator

    @property
    def model(self) -> str:
        """The first model's name: the one that answers a request naming none."""
        return next(iter(self.replays))

    @property
    def recorded(self) -> dict[str, Recorded]:
        return self.replays[self.model]

    def serves(self, model: str | None) -> str | None:
        """The model a request's `model` field selects (None: not served here)."""
        if model in self.replays:
            return model
        return self.model if model is None or len(self.replays) == 1 else None

    def samples(self, prompt: str, n: int, seed: int | None, model: str | None = None) -> list[str]:
        key = prompt.strip()
        recorded = self.replays[model or self.model].get(key)
        if recorded is None:
            return [_synthetic(key, None if seed is None else seed + i) for i in range(n)]
        m = len(recorded.texts)
        if seed is None:
            picks = np.random.default_rng().integers(m, size=n)
            return [recorded.texts[int(i)] for i in picks]
        return [recorded.texts[(seed + i) % m] for i in range(n)]


def _by_text(questions: Iterable[Question]) -> dict[str, Recorded]:
    recorded = {}
    for question in questions:
        order = np.random.default_rng(zlib.crc32(question.id.encode())).permutation(len(question.samples))
        texts = tuple(reply_text(question.samples[i].answer, question.samples[i].text) for i in order)
        if texts:
            recorded[question.question.strip()] = Recorded(texts)
    return recorded


def _synthetic(prompt: str, seed: int | None) -> str:
    """A sample for a question never recorded: right with probability q fixed by the text, else one of three
    wrong answers; the right answer itself is a number fixed by the text."""
    key = zlib.crc32(prompt.encode("utf-8"))
    q = 0.35 + 0.6 * ((key % 1000) / 1000)
    right = key % 997
    rng = np.random.default_rng(None if seed is None else [key, seed])
    if rng.random() < q:
        return f"Working it through step by step. The answer is {right}."
    return f"Working it through step by step. The answer is {right + int(rng.integers(1, 4))}."


def create_simulator_app(simulator: Simulator) -> FastAPI:
    """The simulator's HTTP face: the subset of vLLM's OpenAI server the gateway and `collect` use."""
    app = FastAPI(title="apportion simulate")

    async def draw(body: SimulatedRequest, prompt: str) -> tuple[list[str], int, int]:
        model = simulator.serves(body.model)
        if model is None:
            raise _Missing(f"The model `{body.model}` does not exist.")  # vLLM's message, a 404
        if body.n > 1 and body.temperature == 0:
            raise _Refused("n must be 1 when using greedy sampling")  # vLLM's own rule and message
        if simulator.latency:
            await asyncio.sleep(simulator.latency)
        texts = simulator.samples(prompt, body.n, body.seed, model)
        return texts, token_count(prompt), sum(token_count(text) for text in texts)

    def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
        return {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }

    @app.post("/v1/chat/completions")
    async def chat(body: SimulatedRequest) -> Any:
        if not body.messages:
            return _error(400, "messages: field required")
        prompt = str(body.messages[-1].get("content") or "")
        return await reply(body, prompt, "chat.completion", "chatcmpl", _message)

    @app.post("/v1/completions")
    async def completions(body: SimulatedRequest) -> Any:
        if body.prompt is None:
            return _error(400, "prompt: field required")
        prompt = body.prompt if isinstance(body.prompt, str) else "".join(body.prompt)
        return await reply(body, prompt, "text_completion", "cmpl", lambda text: {"text": text})

    async def reply(
        body: SimulatedRequest, prompt: str, kind: str, prefix: str, content: Callable[[str], dict[str, Any]]
    ) -> dict[str, Any]:
        texts, prompt_tokens, completion_tokens = await draw(body, prompt)
        choices = [
            {"index": i, **content(text), "logprobs": None, "finish_reason": "stop", "stop_reason": None}
            for i, text in enumerate(texts)
        ]
        return {
            "id": f"{prefix}-{uuid.uuid4().hex}",
            "object": kind,
            "created": int(time.time()),
            "model": body.model or simulator.model,
            "choices": choices,
            "usage": usage(prompt_tokens, completion_tokens),
        }

    @app.get("/v1/models")
    async def models() -> Any:
        return {
            "object": "list",
            "data": [
                {"id": name, "object": "model", "created": int(time.time()), "owned_by": "vllm", "max_model_len": 4096}
                for name in simulator.replays
            ],
        }

    @app.get("/health")
    async def health() -> Response:
        return Response(status_code=200)

    @app.exception_handler(_Refused)
    async def refused(request: Request, exc: _Refused) -> JSONResponse:
        return _error(400, str(exc))

    @app.exception_handler(_Missing)
    async def missing(request: Request, exc: _Missing) -> JSONResponse:
        return _error(404, str(exc), "NotFoundError")

    @app.exception_handler(Exception)
    async def crash(request: Request, exc: Exception) -> JSONResponse:
        return _error(500, f"simulator error: {type(exc).__name__}")

    return app


def _message(text: str) -> dict[str, Any]:
    return {"message": {"role": "assistant", "content": text, "reasoning": None}}


class _Refused(ValueError):
    """A request vLLM would answer with 400."""


class _Missing(LookupError):
    """A request for a model this server does not serve: vLLM's 404."""


def _error(status: int, message: str, kind: str = "BadRequestError") -> JSONResponse:
    return JSONResponse(
        {"error": {"message": message, "type": kind, "param": None, "code": status}}, status_code=status
    )
