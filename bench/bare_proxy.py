"""The floor of any Python HTTP gateway on this machine: an ASGI app that forwards each request's body
unchanged to the backend with aiohttp and returns the reply, under the same uvicorn (uvloop, httptools) as
the gateway. `bench/gateway.py` measures it beside the real gateway, so the hop's own cost is not blamed
on apportion's logic.

    python bench/bare_proxy.py BACKEND_V1_URL PORT
"""

from __future__ import annotations

import sys
from typing import Any

import aiohttp
import uvicorn

JSON = [(b"content-type", b"application/json")]


def bare_proxy(backend: str) -> Any:
    session: aiohttp.ClientSession | None = None

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        nonlocal session
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    session = aiohttp.ClientSession()
                    await send({"type": "lifespan.startup.complete"})
                else:
                    if session is not None:
                        await session.close()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if scope["path"] == "/healthz":
            reply = b"{}"
        else:
            assert session is not None
            async with session.post(
                f"{backend}/chat/completions", data=body, headers={"content-type": "application/json"}
            ) as response:
                reply = await response.read()
        await send({"type": "http.response.start", "status": 200, "headers": JSON})
        await send({"type": "http.response.body", "body": reply})

    return app


if __name__ == "__main__":
    uvicorn.run(bare_proxy(sys.argv[1]), host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")
