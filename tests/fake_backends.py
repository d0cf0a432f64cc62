"""Backends that speak the OpenAI protocol but misbehave on purpose: the faults a gateway must survive."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response


def fake_backend(mode: str = "ok", answer: str = "7", delay: float = 0.0) -> FastAPI:
    """`ok` honours n; `one-choice` ignores n, as llama.cpp does; `flaky` fails every other request; `error`
    answers 500; `malformed` sends broken JSON; `slow` waits `delay` seconds; `reject` answers 400."""
    app = FastAPI()
    app.state.calls = 0

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Response:
        body: dict[str, Any] = await request.json()
        app.state.calls += 1
        if mode == "slow" or delay:
            await asyncio.sleep(delay)
        if mode == "error" or (mode == "flaky" and app.state.calls % 2 == 0):
            return JSONResponse({"error": {"message": "engine died", "type": "InternalServerError"}}, status_code=500)
        if mode == "malformed":
            return PlainTextResponse('{"choices": [', media_type="application/json")
        if mode == "reject":
            return JSONResponse({"error": {"message": "prompt too long", "type": "BadRequestError"}}, status_code=400)
        n = 1 if mode in ("one-choice", "flaky") else int(body.get("n", 1))
        choices = [
            {
                "index": i,
                "message": {"role": "assistant", "content": f"The answer is {answer}."},
                "finish_reason": "stop",
            }
            for i in range(n)
        ]
        return JSONResponse(
            {
                "id": "x",
                "object": "chat.completion",
                "created": 0,
                "model": body["model"],
                "choices": choices,
                "usage": {"prompt_tokens": 5, "completion_tokens": 4 * n},
            }
        )

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": "fake", "object": "model", "owned_by": "test"}]}

    return app
