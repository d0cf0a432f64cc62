"""The backend pool through the gateway, against backends that ignore n, fail, stall or send garbage."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import aiohttp
import httpx
import pytest

from allocator.base import Policy
from service.app import create_app
from service.backends import BackendError, BackendPool, Sampling
from service.server_thread import ServerThread, free_port
from service.settings import Settings
from tests.fake_backends import fake_backend, hanging_up_backend
from tests.test_gateway import assert_error

SAMPLING = Sampling(temperature=0.8, top_p=1.0, max_tokens=16)
ASK = {"question": "Ben has 4 books. How many books does Ben have now?"}


@pytest.fixture(scope="module")
def backends() -> Iterator[dict[str, str]]:
    modes = ("ok", "one-choice", "flaky", "error", "malformed", "slow", "reject")
    with ExitStack() as stack:
        urls = {
            mode: stack.enter_context(ServerThread(fake_backend(mode, delay=3.0 if mode == "slow" else 0)))
            for mode in modes
        }
        yield {mode: url + "/v1" for mode, url in urls.items()}


def serve(policy: Policy, urls: list[str], **options: object) -> ServerThread:
    settings = Settings(model=Path("."), backends=urls, **options)  # type: ignore[arg-type]
    return ServerThread(create_app(settings, policy=policy))


def test_an_engine_that_ignores_n_gets_one_request_per_sample(four_samples: Policy, backends: dict[str, str]) -> None:
    with serve(four_samples, [backends["one-choice"]]) as url:
        first = httpx.post(url + "/v1/solve", json=ASK).json()
        second = httpx.post(url + "/v1/solve", json=ASK).json()
    assert first["samples"] == second["samples"] == 4 and first["votes"] == {"7": 4}


def test_samples_that_fail_are_left_out_and_the_reply_says_so(four_samples: Policy, backends: dict[str, str]) -> None:
    with serve(four_samples, [backends["flaky"]], fanout="parallel", retries=0) as url:
        reply = httpx.post(
            url + "/v1/chat/completions",
            json={"model": "apportion", "messages": [{"role": "user", "content": ASK["question"]}]},
        )
    decision = reply.json()["apportion"]
    assert reply.status_code == 200 and decision["answer"] == "7"
    assert decision["samples"] + decision["failed_samples"] == 4 and decision["failed_samples"] >= 1
    assert any("failed" in note for note in decision["degraded"])


@pytest.mark.parametrize(
    ("mode", "status", "code"),
    [("error", 502, "backend_status"), ("malformed", 502, "backend_malformed"), ("reject", 400, "backend_refused")],
)
def test_a_failing_backend_gives_a_clear_gateway_error(
    four_samples: Policy, backends: dict[str, str], mode: str, status: int, code: str
) -> None:
    with serve(four_samples, [backends[mode]], retries=1) as url:
        error = assert_error(httpx.post(url + "/v1/solve", json=ASK), status, code)
    assert "backend" in str(error["message"])


def test_a_backend_that_hangs_up_mid_reply_is_a_clear_502(four_samples: Policy) -> None:
    with hanging_up_backend() as broken, serve(four_samples, [broken], retries=1) as url:
        started = time.monotonic()
        error = assert_error(httpx.post(url + "/v1/solve", json=ASK), 502, "backend_disconnected")
    assert "broke off its reply" in str(error["message"]) and time.monotonic() - started < 5


def test_the_breaker_opens_then_recovers_once_the_backend_does() -> None:
    backend = fake_backend("ok")
    with ServerThread(backend) as url:

        async def scenario() -> list[str]:
            async with aiohttp.ClientSession() as client:
                pool = BackendPool([url + "/v1"], client, retries=0, breaker_threshold=2, breaker_cooldown=0.3)
                states = []
                backend.state.mode = "error"
                for _ in range(2):
                    with pytest.raises(BackendError):
                        await pool.draw([{"role": "user", "content": "hi"}], 2, SAMPLING)
                states.append(pool.backends[0].breaker.state)
                with pytest.raises(BackendError, match="circuit breaker is open"):
                    await pool.draw([{"role": "user", "content": "hi"}], 2, SAMPLING)
                backend.state.mode = "ok"
                await asyncio.sleep(0.35)
                states.append(pool.backends[0].breaker.state)
                draw = await pool.draw([{"role": "user", "content": "hi"}], 2, SAMPLING)
                states.append(pool.backends[0].breaker.state)
                assert len(draw.texts) == 2
                return states

        assert asyncio.run(scenario()) == ["open", "half-open", "closed"]


def test_a_refused_connection_is_503_and_a_stalled_backend_504_within_the_timeout(
    four_samples: Policy, backends: dict[str, str]
) -> None:
    with serve(four_samples, [f"http://127.0.0.1:{free_port()}/v1"], retries=1) as url:
        assert_error(httpx.post(url + "/v1/solve", json=ASK), 503, "backend_unavailable")
    with serve(four_samples, [backends["slow"]], request_timeout=1.0) as url:
        started = time.monotonic()
        assert_error(httpx.post(url + "/v1/solve", json=ASK, timeout=10), 504, "backend_timeout")
        assert time.monotonic() - started < 2.5


def test_the_breaker_keeps_a_failing_backend_out_and_traffic_goes_to_the_healthy_one(
    four_samples: Policy, backends: dict[str, str]
) -> None:
    with serve(four_samples, [backends["error"], backends["ok"]], retries=2) as url:
        replies = [httpx.post(url + "/v1/solve", json=ASK) for _ in range(12)]
        assert all(reply.status_code == 200 for reply in replies)
        health = httpx.get(url + "/readyz").json()["backends"]
    assert "breaker open" in health[backends["error"]] and "breaker closed" in health[backends["ok"]]
