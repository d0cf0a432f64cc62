"""`stream: true`: the finished reply sent as Server-Sent Events in OpenAI's chunk format.

The gateway must see every sample before it can vote, so nothing is streamed before the answer exists: the
time to the first token is the time to the vote, and a streaming client waits as long as one that does not.
What it gets is the format its code expects: a role chunk, the chosen sample's text in content chunks, a last
chunk with the `finish_reason` and the `apportion` object, with `stream_options.include_usage` a usage chunk
(no choices), then `data: [DONE]`. Every error that can happen (a bad request, no backend, a spent quota)
happens before the first byte and keeps the JSON error format and its status; should building an event fail
after that, the stream ends with an `error` event in OpenAI's error shape.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any

from pydantic_core import from_json, to_json
from starlette.responses import StreamingResponse

log = logging.getLogger("apportion.gateway")
PIECE = 48
"""Characters per content chunk: enough events for a client's streaming path, few enough to cost nothing."""


def stream_reply(reply: bytes, include_usage: bool, headers: Mapping[str, str]) -> StreamingResponse:
    """The chat completion `reply` (its JSON bytes) as an event stream."""
    return StreamingResponse(
        _events(reply, include_usage),
        media_type="text/event-stream",
        headers={"cache-control": "no-cache", "x-accel-buffering": "no", **headers},
    )


async def _events(reply: bytes, include_usage: bool) -> AsyncIterator[bytes]:
    try:
        for chunk in chunks(from_json(reply), include_usage):
            yield b"data: " + to_json(chunk) + b"\n\n"
    except Exception:  # nothing above can fail on a reply the gateway built; if it does, say so in the stream
        log.exception("could not stream a chat completion")
        error = {"message": "internal error while streaming; see the gateway's log", "type": "server_error"}
        yield b"event: error\ndata: " + to_json({"error": {**error, "param": None, "code": "internal_error"}}) + b"\n\n"
        return
    yield b"data: [DONE]\n\n"


def chunks(reply: dict[str, Any], include_usage: bool) -> list[dict[str, Any]]:
    """The `chat.completion.chunk` objects that carry `reply`."""
    [choice] = reply["choices"]
    text: str = choice["message"]["content"]
    head = {"id": reply["id"], "object": "chat.completion.chunk", "created": reply["created"], "model": reply["model"]}
    if include_usage:
        head["usage"] = None  # OpenAI's shape: null on every chunk but the last

    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> dict[str, Any]:
        return {**head, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}], **extra}

    out = [chunk({"role": "assistant", "content": ""})]
    out += [chunk({"content": text[i : i + PIECE]}) for i in range(0, len(text), PIECE)]
    out.append(chunk({}, choice["finish_reason"], apportion=reply["apportion"]))
    if include_usage:
        out.append({**head, "choices": [], "usage": reply["usage"]})
    return out
