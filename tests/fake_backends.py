"""Backends that speak the OpenAI protocol but misbehave on purpose: the faults a gateway must survive."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response


def fake_backend(mode: str = "ok", answer: str = "7", delay: float = 0.0) -> FastAPI:
    """`ok` honours n; `one-choice` ignores n, as llama.cpp does; `flaky` fails every other request; `error`
    answers 500; `malformed` sends broken JSON; `slow` waits `delay` seconds; `reject` answers 400."""
    app = FastAPI()
    app.state.calls = 0
    app.state.mode = mode  # tests may switch it while the server runs

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Response:
        body: dict[str, Any] = await request.json()
        app.state.calls += 1
        mode = app.state.mode
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
