"""The edge middleware answers the hot route itself, skipping FastAPI's stack: its replies must be the ones
FastAPI's own route gives, for good requests and bad ones alike (same status, same OpenAI error type and code)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from allocator.base import Policy
from service.app import GatewayApp, create_app
from service.protocol import ChatResponse
from service.settings import Settings
from service.tenants import key_hash

KEY = {"authorization": "Bearer key-search"}
JSON = {"content-type": "application/json"}
ASK = {"model": "apportion", "messages": [{"role": "user", "content": "Ava has 3 coins. How many has she?"}]}
CASES: list[tuple[str, bytes, dict[str, str]]] = [
    ("good", json.dumps(ASK | {"seed": 3}).encode(), {**JSON, **KEY}),
    ("no content type", json.dumps(ASK | {"seed": 4}).encode(), KEY),
    ("a JSON subtype", json.dumps(ASK | {"seed": 5}).encode(), {"content-type": "application/vnd.api+json", **KEY}),
    ("no key", json.dumps(ASK).encode(), JSON),
    ("wrong key", json.dumps(ASK).encode(), {**JSON, "authorization": "Bearer nope"}),
    ("not JSON", b"{not json", {**JSON, **KEY}),
    ("not JSON and no key", b"{not json", JSON),
    ("invalid and no key", json.dumps({"model": "apportion"}).encode(), JSON),
    ("text/plain", json.dumps(ASK).encode(), {"content-type": "text/plain", **KEY}),
    ("empty body", b"", {**JSON, **KEY}),
    ("a list", b"[1, 2]", {**JSON, **KEY}),
    ("no messages", json.dumps({"model": "apportion", "messages": []}).encode(), {**JSON, **KEY}),
    ("unknown model", json.dumps(ASK | {"model": "gpt-9"}).encode(), {**JSON, **KEY}),
    ("n = 2", json.dumps(ASK | {"n": 2}).encode(), {**JSON, **KEY}),
    ("stream options alone", json.dumps(ASK | {"stream_options": {}}).encode(), {**JSON, **KEY}),
    ("negative temperature", json.dumps(ASK | {"temperature": -1}).encode(), {**JSON, **KEY}),
    ("request id too long", json.dumps(ASK | {"request_id": "x" * 200}).encode(), {**JSON, **KEY}),
]


@pytest.fixture
def app(policy: Policy, backend: str, tmp_path: Path) -> GatewayApp:
    tenants = tmp_path / "tenants.json"
    tenants.write_text(json.dumps([{"tenant": "search", "key_sha256": key_hash("key-search"), "budget": None}]))
    app = create_app(Settings(backends=[backend], tenants=tenants, admin_key="key-admin"), policy=policy)
    assert isinstance(app, GatewayApp)
    return app


def test_the_hot_route_answers_as_fastapis_own_route_would(app: GatewayApp) -> None:
    async def both() -> list[tuple[str, httpx.Response, httpx.Response]]:
        async with app.router.lifespan_context(app):
            edge = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway")
            plain = httpx.AsyncClient(transport=httpx.ASGITransport(app=app.fastapi), base_url="http://gateway")
            replies = []
            for name, body, headers in CASES:
                replies.append(
                    (
                        name,
                        await edge.post("/v1/chat/completions", content=body, headers=headers),
                        await plain.post("/v1/chat/completions", content=body, headers=headers),
                    )
                )
            return replies

    for name, through_edge, through_fastapi in asyncio.run(both()):
        assert through_edge.status_code == through_fastapi.status_code, name
        assert through_edge.headers["content-type"] == through_fastapi.headers["content-type"], name
        mine, theirs = through_edge.json(), through_fastapi.json()
        if through_edge.status_code == 200:
            assert mine["object"] == "chat.completion" and set(mine) == set(ChatResponse.model_fields), name
            assert _shape(mine) == _shape(theirs), name
        else:
            assert set(mine) == {"error"} and set(mine["error"]) == {"message", "type", "param", "code"}, name
            assert (mine["error"]["type"], mine["error"]["code"]) == (
                theirs["error"]["type"],
                theirs["error"]["code"],
            ), name


def test_every_route_is_counted_once_by_the_edge(app: GatewayApp) -> None:
    async def traffic() -> str:
        async with app.router.lifespan_context(app):
            client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway")
            await client.post("/v1/chat/completions", json=ASK, headers=KEY)
            await client.post("/v1/chat/completions", json=ASK)
            await client.get("/v1/models")
            await client.get("/nowhere")
            return (await client.get("/metrics", headers={"authorization": "Bearer key-admin"})).text

    text = asyncio.run(traffic())
    for route, status in (("/v1/chat/completions", 200), ("/v1/chat/completions", 401), ("/v1/models", 200)):
        assert f'apportion_requests_total{{route="{route}",status="{status}"}} 1.0' in text
    assert 'apportion_requests_total{route="unmatched",status="404"} 1.0' in text


def _shape(value: Any) -> Any:
    """The keys at every level, without the values (ids, times and samples differ between two answers)."""
    if isinstance(value, dict):
        return {key: _shape(item) for key, item in value.items() if key != "votes"}
    if isinstance(value, list):
        return [_shape(item) for item in value[:1]]
    return type(value).__name__ if value is not None else None
