"""Hostile tenants, one request at a time (or a few at once), over real HTTP on loopback: request ids that
would give free rides, parameters that would be dropped in silence, invalid Unicode, oversized ids, backends'
absurd replies, and who may read the metrics."""

from __future__ import annotations

import asyncio
import json
import logging
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest
import redis

from allocator.base import Policy
from bench.processes import RedisServer
from service.server_thread import ServerThread
from tests.conftest import key, tenants_file
from tests.fake_backends import fake_backend
from tests.test_gateway import assert_error, gateway

QUESTION = "Ben has 4 books. How many books does Ben have now?"


def chat(request_id: str | None = None, content: str = QUESTION, **extra: object) -> dict[str, object]:
    body: dict[str, object] = {"model": "apportion", "messages": [{"role": "user", "content": content}], **extra}
    if request_id is not None:
        body["request_id"] = request_id
    return body


@pytest.fixture
def counted() -> ServerThread:
    """A backend that keeps every request it gets: draws are counted there, not believed."""
    return ServerThread(fake_backend("ok"))


@pytest.fixture
def two_tenants(tmp_path: Path) -> Path:
    return tenants_file(tmp_path, {"tenant": "alpha"}, {"tenant": "beta"})


@pytest.mark.parametrize("store", ["local", "redis"])
def test_replaying_one_id_300_times_draws_once_and_charges_once(
    four_samples: Policy, counted: ServerThread, two_tenants: Path, redis_server: RedisServer, store: str
) -> None:
    redis_server.flush()
    options: dict[str, object] = {"tenants": two_tenants} | ({"redis": redis_server.url} if store == "redis" else {})
    with counted as backend, gateway(four_samples, [backend + "/v1"], **options) as url:
        app = counted.server.config.app
        replies = [
            httpx.post(url + "/v1/chat/completions", json=chat("order-1", seed=3), headers=key("alpha"))
            for _ in range(300)
        ]
        assert {reply.status_code for reply in replies} == {200}
        assert len({reply.content for reply in replies}) == 1, "every replay gets the stored reply, byte for byte"
        assert replies[1].headers["apportion-replayed"] == "true" and "apportion-replayed" not in replies[0].headers
        assert app.state.calls == 1, "one draw, however often the id is presented"
        theirs = httpx.post(url + "/v1/chat/completions", json=chat("order-1", seed=3), headers=key("beta"))
        assert theirs.status_code == 200 and theirs.json()["id"] != replies[0].json()["id"], "ids are per tenant"
        assert app.state.calls == 2
        budget = httpx.get(url + "/v1/budget", headers=key("alpha")).json()
        assert [(row["tenant"], row["queries"], row["samples"]) for row in budget["tenants"]] == [("alpha", 1, 4)]


def test_the_same_id_with_another_body_is_a_409(four_samples: Policy, counted: ServerThread, two_tenants: Path) -> None:
    with counted as backend, gateway(four_samples, [backend + "/v1"], tenants=two_tenants) as url:
        first = httpx.post(url + "/v1/chat/completions", json=chat("id-7"), headers=key("alpha"))
        assert first.status_code == 200
        other = httpx.post(
            url + "/v1/chat/completions", json=chat("id-7", content="Another question?"), headers=key("alpha")
        )
        assert_error(other, 409, "idempotency_key_reused")
        header = httpx.post(url + "/v1/chat/completions", json=chat(), headers={**key("alpha"), "X-Request-ID": "id-7"})
        assert header.content == first.content, "the header's id and the body's are the same id"
        assert counted.server.config.app.state.calls == 1


def test_a_replay_of_a_request_in_flight_waits_for_its_reply(four_samples: Policy, two_tenants: Path) -> None:
    app = fake_backend("slow", delay=0.5)
    with ServerThread(app) as backend, gateway(four_samples, [backend + "/v1"], tenants=two_tenants) as url:

        async def both() -> list[httpx.Response]:
            async with httpx.AsyncClient(base_url=url, timeout=30) as client:
                asks = [client.post("/v1/chat/completions", json=chat("slow-1"), headers=key("alpha")) for _ in "ab"]
                return list(await asyncio.gather(*asks))

        first, second = asyncio.run(both())
    assert first.status_code == second.status_code == 200 and first.content == second.content
    assert app.state.calls == 1, "the replay waited for the first answer instead of drawing its own"


def test_a_failed_request_gives_its_id_back(four_samples: Policy, two_tenants: Path) -> None:
    app = fake_backend("error")
    with ServerThread(app) as backend, gateway(four_samples, [backend + "/v1"], tenants=two_tenants, retries=0) as url:
        assert httpx.post(url + "/v1/chat/completions", json=chat("retry-me"), headers=key("alpha")).status_code >= 500
        app.state.mode = "ok"
        again = httpx.post(url + "/v1/chat/completions", json=chat("retry-me"), headers=key("alpha"))
        assert again.status_code == 200, "nothing was drawn, so the id may be tried again"


def test_replies_too_large_to_keep_are_never_drawn_twice(four_samples: Policy) -> None:
    app = fake_backend("big")  # 200 kB a sample
    with ServerThread(app) as backend, gateway(four_samples, [backend + "/v1"], idempotency_max_bytes=1024) as url:
        assert httpx.post(url + "/v1/chat/completions", json=chat("big")).status_code == 200
        assert_error(httpx.post(url + "/v1/chat/completions", json=chat("big")), 409, "reply_not_kept")
        assert app.state.calls == 1


def test_stored_replies_expire(four_samples: Policy, counted: ServerThread) -> None:
    with counted as backend, gateway(four_samples, [backend + "/v1"], idempotency_ttl=0.3) as url:
        first = httpx.post(url + "/v1/chat/completions", json=chat("short-lived"))
        asyncio.run(asyncio.sleep(0.6))
        second = httpx.post(url + "/v1/chat/completions", json=chat("short-lived"))
        assert first.status_code == second.status_code == 200 and first.content != second.content


def test_request_ids_are_bounded_and_stored_hashed(
    four_samples: Policy, counted: ServerThread, redis_server: RedisServer
) -> None:
    redis_server.flush()
    with counted as backend, gateway(four_samples, [backend + "/v1"], redis=redis_server.url) as url:
        huge = httpx.post(url + "/v1/chat/completions", json=chat(), headers={"X-Request-ID": "x" * 100_000})
        assert_error(huge, 400)
        assert_error(httpx.post(url + "/v1/chat/completions", json=chat("y" * 129)), 400)
        assert httpx.post(url + "/v1/chat/completions", json=chat("z" * 128)).status_code == 200
    keys = redis.Redis.from_url(redis_server.url).keys("*")
    assert max(len(name) for name in keys) < 100, "no caller-sized key in Redis"
    assert counted.server.config.app.state.calls == 1


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("tools", [{"type": "function", "function": {"name": "f", "parameters": {}}}]),
        ("tool_choice", "auto"),
        ("logprobs", True),
        ("top_logprobs", 2),
        ("audio", {"voice": "alloy"}),
        ("modalities", ["text"]),
        ("prediction", {"type": "content", "content": "x"}),
        ("reasoning_effort", "low"),
        ("store", True),
        ("metadata", {"a": "b"}),
        ("service_tier", "flex"),
        ("web_search_options", {}),
        ("a_parameter_nobody_knows", 1),
    ],
)
def test_parameters_not_honoured_are_refused_by_name(
    four_samples: Policy, counted: ServerThread, param: str, value: object
) -> None:
    with counted as backend, gateway(four_samples, [backend + "/v1"]) as url:
        error = assert_error(
            httpx.post(url + "/v1/chat/completions", json=chat(**{param: value})), 400, "unsupported_parameter"
        )
        assert error["param"] == param and str(error["message"]).startswith(param)
        assert counted.server.config.app.state.calls == 0


@pytest.mark.parametrize("route", ["/v1/chat/completions", "/v1/solve"])
def test_invalid_unicode_is_a_400_before_any_backend(four_samples: Policy, counted: ServerThread, route: str) -> None:
    body = {"question": "2 + 2 = ?\ud800"} if route == "/v1/solve" else chat(content="2 + 2 = ?\ud800")
    raw = json.dumps(body).encode()  # json.dumps writes the lone surrogate as the escape \\ud800
    parts = {"model": "apportion", "messages": [{"role": "user", "content": [{"type": "text", "text": "a\ud800"}]}]}
    with counted as backend, gateway(four_samples, [backend + "/v1"]) as url:
        assert_error(httpx.post(url + route, content=raw, headers={"content-type": "application/json"}), 400)
        if route == "/v1/chat/completions":
            parts_raw = json.dumps(parts).encode()
            assert_error(httpx.post(url + route, content=parts_raw, headers={"content-type": "application/json"}), 400)
        assert counted.server.config.app.state.calls == 0


@pytest.mark.parametrize(
    ("mode", "code"),
    [("huge-usage", "backend_malformed"), ("negative-usage", "backend_malformed"), ("big", "backend_too_large")],
)
def test_absurd_backend_replies_are_a_502(four_samples: Policy, mode: str, code: str) -> None:
    options = {"retries": 0, "max_reply_bytes": 50_000}
    with ServerThread(fake_backend(mode)) as backend, gateway(four_samples, [backend + "/v1"], **options) as url:
        assert_error(httpx.post(url + "/v1/chat/completions", json=chat()), 502, code)
        assert httpx.get(url + "/v1/budget").json()["cost"] == 0


def test_a_backend_sending_more_choices_than_asked_is_charged_only_what_was_asked(four_samples: Policy) -> None:
    with ServerThread(fake_backend("many")) as backend, gateway(four_samples, [backend + "/v1"], max_samples=3) as url:
        reply = httpx.post(url + "/v1/chat/completions", json=chat()).json()
        assert reply["apportion"]["samples"] == 3 and sum(reply["apportion"]["votes"].values()) == 3
        assert httpx.get(url + "/v1/budget").json()["cost"] == 3


def test_metrics_need_the_admin_key_when_there_are_tenants(
    four_samples: Policy, counted: ServerThread, two_tenants: Path
) -> None:
    with ExitStack() as stack:
        backend = stack.enter_context(counted) + "/v1"
        closed = stack.enter_context(gateway(four_samples, [backend], tenants=two_tenants, admin_key="key-root"))
        public = stack.enter_context(gateway(four_samples, [backend], tenants=two_tenants, public_metrics=True))
        assert_error(httpx.get(closed + "/metrics"), 401)
        assert_error(httpx.get(closed + "/metrics", headers=key("alpha")), 403, "admin_required")
        assert "apportion_requests_total" in httpx.get(closed + "/metrics", headers=key("root")).text
        assert httpx.get(public + "/metrics").status_code == 200


def test_the_bearer_scheme_is_case_insensitive(four_samples: Policy, counted: ServerThread, two_tenants: Path) -> None:
    with counted as backend, gateway(four_samples, [backend + "/v1"], tenants=two_tenants) as url:
        for scheme in ("Bearer", "bearer", "BEARER"):
            reply = httpx.post(
                url + "/v1/solve", json={"question": QUESTION}, headers={"Authorization": f"{scheme} key-alpha"}
            )
            assert reply.status_code == 200, scheme
        assert_error(
            httpx.post(url + "/v1/solve", json={"question": QUESTION}, headers={"Authorization": "Basic key-alpha"}),
            401,
        )


def test_an_open_gateway_says_so_when_it_starts(four_samples: Policy, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="apportion.gateway"):
        gateway(four_samples, ["http://127.0.0.1:9/v1"])
    assert any("the API is open" in record.getMessage() for record in caplog.records)
