"""Redis going away, at start and mid-run, through the HTTP gateway: documented behaviour, no crash, and
no sample lost or charged twice once it is back."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
import redis

from allocator.base import Policy
from bench.processes import RedisServer
from oracle.outcomes import Question
from service.app import create_app
from service.server_thread import ServerThread
from service.settings import Settings
from tests.test_gateway import assert_error


def gateway(policy: Policy, backend: str, redis_url: str, failure: str = "open") -> ServerThread:
    settings = Settings(model=Path("."), backends=[backend], redis=redis_url, redis_failure=failure)  # type: ignore[arg-type]
    return ServerThread(create_app(settings, policy=policy))


def ask(url: str, question: Question) -> int:
    reply = httpx.post(url + "/v1/solve", json={"question": question.question}, timeout=30)
    assert reply.status_code == 200, reply.text
    return int(reply.json()["samples"])


def ledger_samples(server: RedisServer) -> int:
    """What the shared ledger holds (one model at price 1: its cost is its samples)."""
    return int(float(redis.Redis.from_url(server.url).hget("apportion:ledger", "cost") or 0))


def test_redis_down_at_start_fails_open_then_catches_up(
    policy: Policy, backend: str, questions: list[Question], redis_server: RedisServer
) -> None:
    redis_server.flush()
    redis_server.stop()
    try:
        with gateway(policy, backend, redis_server.url) as url:
            served = sum(ask(url, q) for q in questions[:5])
            assert httpx.get(url + "/v1/budget").json()["degraded"] is True
            assert httpx.get(url + "/readyz").status_code == 200, "failing open, the gateway is still ready"
            redis_server.start()
            time.sleep(1.2)  # the ledger retries Redis a second after a failure
            served += ask(url, questions[5])
            view = httpx.get(url + "/v1/budget").json()
            assert view["degraded"] is False and view["cost"] == served
    finally:
        if redis_server.process is None:
            redis_server.start()
    assert ledger_samples(redis_server) == served


def test_redis_lost_mid_run_loses_and_repeats_no_charge(
    policy: Policy, backend: str, questions: list[Question], redis_server: RedisServer
) -> None:
    redis_server.flush()
    with gateway(policy, backend, redis_server.url) as url:
        served = sum(ask(url, q) for q in questions[:5])
        redis_server.stop()
        try:
            served += sum(ask(url, q) for q in questions[5:10])
            assert httpx.get(url + "/v1/budget").json()["degraded"] is True
        finally:
            redis_server.start()
        time.sleep(1.2)
        served += ask(url, questions[10])
        assert httpx.get(url + "/v1/budget").json()["cost"] == served
    assert ledger_samples(redis_server) == served


def test_failing_closed_refuses_new_queries_with_503_while_redis_is_away(
    policy: Policy, backend: str, questions: list[Question], redis_server: RedisServer
) -> None:
    redis_server.flush()
    with gateway(policy, backend, redis_server.url, failure="closed") as url:
        served = ask(url, questions[0])
        redis_server.stop()
        try:
            assert_error(
                httpx.post(url + "/v1/solve", json={"question": questions[1].question}), 503, "ledger_unavailable"
            )
            assert httpx.get(url + "/readyz").status_code == 503
        finally:
            redis_server.start()
        time.sleep(1.2)
        served += ask(url, questions[2])
    assert ledger_samples(redis_server) == served


def test_failing_closed_with_redis_down_stops_start_up_with_one_line(
    capsys: pytest.CaptureFixture[str], redis_server: RedisServer, tmp_path: Path, example_file: Path
) -> None:
    from cli.main import main

    model = tmp_path / "model"
    assert (
        main(
            [
                "train",
                "--outcomes",
                str(example_file),
                "--budget",
                "4",
                "--policy",
                "uniform",
                "--folds",
                "2",
                "--out",
                str(model),
            ]
        )
        == 0
    )
    capsys.readouterr()
    redis_server.stop()
    try:
        code = main(
            [
                "serve",
                "--model",
                str(model),
                "--backend",
                "http://127.0.0.1:9/v1",
                "--redis",
                redis_server.url,
                "--redis-failure",
                "closed",
            ]
        )
    finally:
        redis_server.start()
    err = capsys.readouterr().err
    assert code == 1 and "Redis" in err and "unreachable" in err and len(err.strip().splitlines()) == 1


def test_a_redis_that_lost_its_data_keeps_the_admins_target_and_says_so(
    policy: Policy, backend: str, questions: list[Question], tmp_path: Path
) -> None:
    """Redis restarted without persistence: the target the admin set and the spend the gateway saw come back,
    the log says so loudly, and `/readyz`, `/v1/budget` and the dashboard's data show when."""
    server = RedisServer(tmp_path, fsync=None)
    try:
        settings = Settings(backends=[backend], redis=server.url, admin_key="key-admin")
        admin = {"Authorization": "Bearer key-admin"}
        with ServerThread(create_app(settings, policy=policy)) as url:
            assert httpx.put(url + "/v1/budget/target", json={"target": 6.0}, headers=admin).status_code == 200
            served = sum(ask(url, q) for q in questions[:8])
            time.sleep(1.2)  # a whole view of the ledger is taken each second: what a restore goes back to
            server.kill()
            server.start()
            time.sleep(2.5)  # the gateway's upkeep notices within a second or two
            view = httpx.get(url + "/v1/budget", headers=admin).json()
            ready = httpx.get(url + "/readyz").json()
            dashboard = httpx.get(url + "/v1/dashboard", headers=admin).json()
        assert view["target"] == 6.0 and view["cost"] == served and view["queries"] == 8
        assert view["ledger_wiped_at"] is not None
        assert ready["ledger"]["ledger_wiped_at"] == view["ledger_wiped_at"]
        assert dashboard["budget"]["ledger_wiped_at"] == view["ledger_wiped_at"]
    finally:
        server.stop()
