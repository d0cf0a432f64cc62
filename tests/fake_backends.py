"""Backends that speak the OpenAI protocol but misbehave on purpose: the faults a gateway must survive."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response


def fake_backend(mode: str = "ok", answer: str = "7", delay: float = 0.0) -> FastAPI:
    """`ok` honours n; `one-choice` ignores n, as llama.cpp does; `flaky` fails every other request; `error`
    answers 500; `malformed` sends broken JSON; `slow` waits `delay` seconds; `reject` answers 400. And the
    hostile ones: `poison` answers 500 to any request whose text holds POISON (and well to the rest), `many`
    sends 50 times the choices asked for, `huge-usage` and `negative-usage` send absurd token counts, `big`
    sends a 200 kB completion. `app.state.bodies` keeps every request body received."""
    app = FastAPI()
    app.state.calls = 0
    app.state.bodies = []
    app.state.mode = mode  # tests may switch it while the server runs

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Response:
        raw = await request.body()
        body: dict[str, Any] = await request.json()
        app.state.calls += 1
        app.state.bodies.append(body)
        mode = app.state.mode
        if mode == "slow" or delay:
            await asyncio.sleep(delay)
        poisoned = mode == "poison" and b"POISON" in raw
        if mode == "error" or poisoned or (mode == "flaky" and app.state.calls % 2 == 0):
            return JSONResponse({"error": {"message": "engine died", "type": "InternalServerError"}}, status_code=500)
        if mode == "malformed":
            return PlainTextResponse('{"choices": [', media_type="application/json")
        if mode == "reject":
            return JSONResponse({"error": {"message": "prompt too long", "type": "BadRequestError"}}, status_code=400)
        n = 1 if mode in ("one-choice", "flaky") else int(body.get("n", 1)) * (50 if mode == "many" else 1)
        text = ("x" * 200_000 + " " if mode == "big" else "") + f"The answer is {answer}."
        choices = [
            {"index": i, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"} for i in range(n)
        ]
        usage = {"prompt_tokens": 5, "completion_tokens": 4 * n}
        if mode == "negative-usage":
            usage["completion_tokens"] = -7
        reply = json.dumps(
            {
                "id": "x",
                "object": "chat.completion",
                "created": 0,
                "model": body["model"],
                "choices": choices,
                "usage": usage,
            }
        )
        if mode == "huge-usage":
            reply = reply.replace(f'"completion_tokens": {4 * n}', '"completion_tokens": 1e999')
        return Response(reply, media_type="application/json")

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": "fake", "object": "model", "owned_by": "test"}]}

    return app


@contextmanager
def hanging_up_backend() -> Iterator[str]:
    """A server that starts a 200 reply promising 500 bytes, sends 14, and closes the connection."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            with connection:
                connection.recv(65536)
                head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n"
                connection.sendall(head + b'{"choices": [')

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        listener.close()
