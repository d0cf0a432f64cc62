"""The gateway over real HTTP on loopback, in front of the simulator: the OpenAI client, errors, budget, tenants."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import openai
import pytest

from allocator.base import Policy
from bench.processes import RedisServer
from oracle.outcomes import Question
from service.app import create_app
from service.server_thread import ServerThread, free_port
from service.settings import Settings
from service.tenants import key_hash

ERROR_KEYS = {"message", "type", "param", "code"}


def gateway(policy: Policy, backends: list[str], **options: object) -> ServerThread:
    settings = Settings(backends=backends, **options)  # type: ignore[arg-type]
    return ServerThread(create_app(settings, policy=policy))


def assert_error(reply: httpx.Response, status: int, code: str | None = None) -> dict[str, object]:
    assert reply.status_code == status, reply.text
    error = reply.json()["error"]
    assert set(error) == ERROR_KEYS and error["message"]
    if code is not None:
        assert error["code"] == code
    return dict(error)


def test_the_official_openai_client_works_unmodified(policy: Policy, backend: str, questions: list[Question]) -> None:
    with gateway(policy, [backend]) as url:
        client = openai.OpenAI(base_url=url + "/v1", api_key="unused")
        assert [m.id for m in client.models.list()] == ["apportion", "simulated"]  # ours first, then the backends'
        reply = client.chat.completions.create(
            model="apportion", messages=[{"role": "user", "content": questions[3].question}], seed=11, temperature=0.7
        )
        decision = reply.model_extra["apportion"]  # type: ignore[index]
        assert len(reply.choices) == 1 and reply.choices[0].message.content
        assert decision["answer"] in reply.choices[0].message.content
        assert decision["samples"] == sum(decision["votes"].values()) + 0  # the example has few null answers
        assert decision["policy"] == "adaptive" and decision["rounds"] >= 1 and decision["lambda"] > 0
        assert reply.usage is not None and reply.usage.completion_tokens > 0
        capped = client.chat.completions.create(
            model="apportion",
            messages=[{"role": "user", "content": questions[4].question}],
            extra_body={"max_samples": 1},
        )
        assert capped.model_extra["apportion"]["samples"] == 1  # type: ignore[index]
        greedy = client.chat.completions.create(
            model="apportion", messages=[{"role": "user", "content": questions[5].question}], temperature=0
        )
        assert greedy.model_extra["apportion"]["samples"] == 1, "greedy samples are all the same: one is drawn"  # type: ignore[index]


def test_every_failure_has_openais_error_format(policy: Policy, backend: str) -> None:
    with gateway(policy, [backend], max_request_bytes=4096) as url:
        chat = url + "/v1/chat/completions"
        message = [{"role": "user", "content": "What is 2 + 2?"}]
        assert_error(
            httpx.post(chat, json={"model": "apportion", "messages": message, "stream_options": {}}),
            400,
            "invalid_value",
        )
        assert_error(httpx.post(chat, json={"model": "apportion", "messages": message, "n": 3}), 400)
        assert_error(httpx.post(chat, content=b"{not json", headers={"content-type": "application/json"}), 400)
        assert_error(httpx.post(chat, json={"model": "apportion", "messages": "hi"}), 400)
        assert_error(httpx.post(chat, json={"model": "gpt-9", "messages": message}), 404, "model_not_found")
        assert_error(httpx.post(chat, json={"model": "apportion", "messages": message, "temperature": -1}), 400)
        assert_error(httpx.get(url + "/v1/nowhere"), 404)
        assert_error(httpx.delete(url + "/v1/models"), 405)
        big = {"model": "apportion", "messages": [{"role": "user", "content": "x" * 10_000}]}
        assert_error(httpx.post(chat, json=big), 413, "request_too_large")
        assert_error(httpx.post(url + "/v1/solve", json={"question": ""}), 400)


def test_budget_metrics_and_health_after_traffic(policy: Policy, backend: str, questions: list[Question]) -> None:
    with gateway(policy, [backend], target_samples=4.0) as url:
        for question in questions[:40]:
            reply = httpx.post(url + "/v1/solve", json={"question": question.question})
            assert reply.status_code == 200 and reply.json()["samples"] >= 1
        budget = httpx.get(url + "/v1/budget").json()
        assert budget["queries"] == 40 and budget["target"] == 4.0 and budget["store"] == "local"
        assert budget["realized"] == budget["cost"] / 40 and budget["lambda"] is not None
        metrics = httpx.get(url + "/metrics").text
        assert 'apportion_requests_total{route="/v1/solve",status="200"} 40.0' in metrics
        assert "apportion_samples_per_request_count 40.0" in metrics
        assert "apportion_overhead_seconds_bucket" in metrics and "apportion_lambda " in metrics
        assert httpx.get(url + "/healthz").json() == {"status": "ok"}
        assert httpx.get(url + "/readyz").status_code == 200


def test_readyz_says_not_ready_when_no_backend_answers(policy: Policy) -> None:
    with gateway(policy, [f"http://127.0.0.1:{free_port()}/v1"]) as url:
        reply = httpx.get(url + "/readyz")
        assert reply.status_code == 503 and not reply.json()["ready"]


@pytest.fixture
def tenants_file(tmp_path: Path) -> Path:
    entries = [
        {"tenant": "search", "key_sha256": key_hash("key-search"), "budget": None},
        {"tenant": "tutor", "key_sha256": key_hash("key-tutor"), "budget": 1},
    ]
    path = tmp_path / "tenants.json"
    path.write_text(json.dumps(entries))
    return path


def test_tenants_see_only_their_own_spend_and_only_the_admin_changes_the_target(
    policy: Policy, backend: str, tenants_file: Path
) -> None:
    with gateway(policy, [backend], tenants=tenants_file, admin_key="key-admin") as url:
        ask = {"question": "Ava has 3 coins. How many coins does Ava have now?"}
        assert_error(httpx.post(url + "/v1/solve", json=ask), 401, "invalid_api_key")
        assert_error(httpx.post(url + "/v1/solve", json=ask, headers={"Authorization": "Bearer nope"}), 401)
        search, tutor = ({"Authorization": f"Bearer key-{name}"} for name in ("search", "tutor"))
        assert httpx.post(url + "/v1/solve", json=ask, headers=search).status_code == 200
        assert httpx.post(url + "/v1/solve", json=ask | {"max_samples": 1}, headers=tutor).status_code == 200
        seen = httpx.get(url + "/v1/budget", headers=tutor).json()["tenants"]
        assert [row["tenant"] for row in seen] == ["tutor"] and seen[0]["left"] == 0
        assert_error(httpx.post(url + "/v1/solve", json=ask, headers=tutor), 429, "insufficient_quota")
        assert_error(httpx.put(url + "/v1/budget/target", json={"target": 2}, headers=search), 403)
        admin = {"Authorization": "Bearer key-admin"}
        changed = httpx.put(url + "/v1/budget/target", json={"target": 2.5}, headers=admin)
        assert changed.status_code == 200
        everyone = httpx.get(url + "/v1/budget", headers=admin).json()
        assert everyone["target"] == 2.5 and {row["tenant"] for row in everyone["tenants"]} == {"search", "tutor"}
        assert_error(httpx.put(url + "/v1/budget/target", json={"target": -1}, headers=admin), 400)
        out_of_reach = httpx.put(url + "/v1/budget/target", json={"target": 500}, headers=admin)
        assert "out of reach" in assert_error(out_of_reach, 400, "target_out_of_range")["message"]  # type: ignore[operator]
        assert httpx.get(url + "/v1/budget", headers=admin).json()["target"] == 2.5, "a refused target changes nothing"


def test_replicas_share_one_ledger_in_redis(
    policy: Policy, backend: str, questions: list[Question], redis_server: RedisServer
) -> None:
    redis_server.flush()
    with (
        gateway(policy, [backend], redis=redis_server.url, admin_key="a") as first,
        gateway(policy, [backend], redis=redis_server.url, admin_key="a") as second,
    ):
        drawn = 0
        for index, question in enumerate(questions[:20]):
            reply = httpx.post((first, second)[index % 2] + "/v1/solve", json={"question": question.question})
            drawn += reply.json()["samples"]
        view = httpx.get(second + "/v1/budget").json()
        assert view["store"] == "redis" and view["queries"] == 20 and view["cost"] == drawn
        httpx.put(first + "/v1/budget/target", json={"target": 3}, headers={"Authorization": "Bearer a"})
        assert httpx.get(second + "/v1/budget").json()["target"] == 3
