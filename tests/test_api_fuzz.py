"""schemathesis against the gateway's own OpenAPI schema, over real HTTP: whatever a client sends to any
endpoint, the gateway answers without a 5xx, and every 4xx carries OpenAI's error format."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from allocator.base import Policy
from service.app import create_app
from service.server_thread import ServerThread
from service.settings import Settings
from service.tenants import key_hash

ADMIN = {"Authorization": "Bearer fuzz-admin"}


@pytest.fixture(scope="module")
def gateway_url(policy: Policy, backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tenants = tmp_path_factory.mktemp("fuzz") / "tenants.json"
    tenants.write_text(json.dumps([{"tenant": "fuzz", "key_sha256": key_hash("fuzz-key"), "budget": None}]))
    options: dict[str, Any] = {"tenants": tenants, "admin_key": "fuzz-admin", "max_request_bytes": 65536}
    with ServerThread(create_app(Settings(model=Path("."), backends=[backend], **options), policy=policy)) as url:
        yield url


def assert_openai_error(response: Any) -> None:
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"message", "type", "param", "code"} and isinstance(error["message"], str), body
    assert isinstance(error["type"], str)
    assert all(error[key] is None or isinstance(error[key], str) for key in ("param", "code")), body


def operations(url: str) -> list[Any]:
    schema = schemathesis.openapi.from_url(url + "/openapi.json")
    return [result.ok() for result in schema.get_all_operations()]


# schemathesis's own pytest plugin does not run under pytest 9, so its strategies are driven by hypothesis here.
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_input_makes_the_gateway_fail_and_every_refusal_is_an_openai_error(
    gateway_url: str, mode: GenerationMode
) -> None:
    found = operations(gateway_url)
    assert {op.path for op in found} >= {"/v1/chat/completions", "/v1/solve", "/v1/budget", "/v1/budget/target"}
    calls = 0

    @given(case=st.one_of([op.as_strategy(mode) for op in found]))
    @settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
    def check(case: Any) -> None:
        nonlocal calls
        calls += 1
        response = case.call(headers=ADMIN, timeout=30)
        assert response.status_code < 500, (case.method, case.path, case.body, response.text)
        if response.status_code >= 400:
            assert_openai_error(response)

    check()
    assert calls >= 100


@pytest.mark.parametrize(
    ("body", "headers", "status"),
    [
        (b"x" * 100_000, {"content-type": "application/json"}, 413),
        (
            b'{"model": "apportion", "messages": [{"role": "user", "content": "hi"}]}',
            {"content-type": "text/plain"},
            400,
        ),
        (b'{"model": "apportion", "messages": [{"role": "user", "content": "\xff\xfe"}]}', {}, 400),
        (b"[" * 5000 + b"]" * 5000, {"content-type": "application/json"}, 400),
        (b'{"model": "apportion", "messages": [{"role": "user", "content": "hi"}], "max_samples": 0}', {}, 400),
        (b'{"model": "apportion", "messages": [{"role": "user", "content": "hi"}], "budget": NaN}', {}, 400),
        (b'{"model": "apportion", "messages": [{"role": "user", "content": "hi"}], "temperature": Infinity}', {}, 400),
    ],
)
def test_hostile_bodies_get_a_clear_4xx(gateway_url: str, body: bytes, headers: dict[str, str], status: int) -> None:
    reply = httpx.post(
        gateway_url + "/v1/chat/completions",
        content=body,
        headers={**ADMIN, "content-type": "application/json", **headers},
    )
    assert reply.status_code == status, reply.text
    assert_openai_error(reply)


def test_a_nan_target_is_refused(gateway_url: str) -> None:
    reply = httpx.put(
        gateway_url + "/v1/budget/target",
        content=b'{"target": NaN}',
        headers={**ADMIN, "content-type": "application/json"},
    )
    assert reply.status_code == 400
    assert_openai_error(reply)
