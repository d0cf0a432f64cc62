"""Hostile tenants and ugly faults under concurrency, over real HTTP on loopback, bounded in time: quotas under
64 requests at once, poison requests beside innocent ones, Redis killed mid-run, a tenant flooding the gateway.
`bench/hostile.py` runs the same at full length and reports the figures."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest
import redis

from allocator.base import Policy
from bench.processes import RedisServer
from oracle.outcomes import Question
from service.server_thread import ServerThread
from tests.conftest import key, tenants_file
from tests.fake_backends import fake_backend
from tests.test_gateway import gateway


async def burst(
    url: str, bodies: list[dict[str, object]], headers: dict[str, str], path: str = "/v1/chat/completions"
) -> list[httpx.Response]:
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=httpx.Limits(max_connections=128)) as client:
        return list(await asyncio.gather(*(client.post(path, json=body, headers=headers) for body in bodies)))


def ask(budget: float | None = None, seed: int = 0) -> dict[str, object]:
    body: dict[str, object] = {
        "model": "apportion",
        "messages": [{"role": "user", "content": "What is 6 x 7?"}],
        "seed": seed,
    }
    return body if budget is None else body | {"budget": budget}


@pytest.mark.parametrize("store", ["local", "redis"])
@pytest.mark.parametrize("quota", [0, 1, 100])
def test_64_requests_at_once_never_spend_past_a_quota(
    policy: Policy, backend: str, tmp_path: Path, redis_server: RedisServer, store: str, quota: int
) -> None:
    redis_server.flush()
    tenants = tenants_file(tmp_path, {"tenant": "capped", "budget": quota, "max_budget_hint": 1000})
    options: dict[str, object] = {"tenants": tenants} | ({"redis": redis_server.url} if store == "redis" else {})
    with gateway(policy, [backend], **options) as url:
        bodies = [ask(budget=1000 if i % 2 else None, seed=i) for i in range(64)]  # hints as large as allowed
        replies = asyncio.run(burst(url, bodies, key("capped")))
        served = sum(r.json()["apportion"]["samples"] for r in replies if r.status_code == 200)
        refused = [r for r in replies if r.status_code == 429]
        assert len(refused) + sum(r.status_code == 200 for r in replies) == 64
        assert all(
            r.json()["error"]["code"] == "insufficient_quota"
            and "nothing left of its budget" in r.json()["error"]["message"]
            for r in refused
        )
        row = httpx.get(url + "/v1/budget", headers=key("capped")).json()["tenants"][0]
        assert served == row["samples"] <= quota, "spend never passes the quota, not by one sample"
        if quota:
            assert served == quota, "and the quota is used to the sample, not left idle"


def test_a_tenants_hints_are_capped_and_repaid_from_its_own_queries(
    policy: Policy, backend: str, tmp_path: Path
) -> None:
    tenants = tenants_file(tmp_path, {"tenant": "greedy", "max_budget_hint": 8}, {"tenant": "modest"})
    with gateway(policy, [backend], tenants=tenants, target_samples=4.0) as url:
        capped = asyncio.run(burst(url, [ask(budget=1000, seed=i) for i in range(10)], key("modest")))
        assert max(r.json()["apportion"]["budget"] for r in capped) <= 4.0, "by default no hint above the target"
        greedy = asyncio.run(burst(url, [ask(budget=1000, seed=i) for i in range(40)], key("greedy")))
        assert max(r.json()["apportion"]["budget"] for r in greedy) <= 8.0, "nor above the tenant's own cap"
        view = httpx.get(url + "/v1/budget", headers=key("modest")).json()
        modest = httpx.post(url + "/v1/chat/completions", json=ask(seed=99), headers=key("modest")).json()
        assert modest["apportion"]["budget"] < 4.5, "the others are not cut to pay for the greedy one's hints"
        assert modest["apportion"]["budget"] == pytest.approx(view["operating_budget"], abs=0.05)
        after = httpx.post(url + "/v1/chat/completions", json=ask(seed=100), headers=key("greedy")).json()
        # 40 hints about 3.7 above the fleet budget, repaid over a horizon of 100 queries: 1.5 lower now
        assert after["apportion"]["budget"] < modest["apportion"]["budget"] - 0.5, "the greedy tenant repays its own"


def test_poison_requests_cost_innocent_tenants_nothing(four_samples: Policy, tmp_path: Path) -> None:
    """A request the engines fail on (every time, on every backend) beside innocent traffic: the poison gets a
    502 of its own, every innocent request is served, and no breaker opens."""
    apps = [fake_backend("poison"), fake_backend("poison")]
    with (
        ServerThread(apps[0]) as one,
        ServerThread(apps[1]) as two,
        gateway(four_samples, [one + "/v1", two + "/v1"], retries=2) as url,
    ):

        async def traffic() -> tuple[list[int], list[httpx.Response]]:
            async with httpx.AsyncClient(base_url=url, timeout=30) as client:
                innocent: list[int] = []
                poison: list[httpx.Response] = []
                stop = time.monotonic() + 3.0

                async def innocent_tenant() -> None:
                    while time.monotonic() < stop:
                        reply = await client.post("/v1/chat/completions", json=ask())
                        innocent.append(reply.status_code)

                async def poisoner() -> None:
                    while time.monotonic() < stop:
                        body = ask() | {"messages": [{"role": "user", "content": "POISON"}]}
                        poison.append(await client.post("/v1/chat/completions", json=body))
                        await asyncio.sleep(0.1)

                await asyncio.gather(innocent_tenant(), innocent_tenant(), poisoner())
                return innocent, poison

        innocent, poison = asyncio.run(traffic())
        health = httpx.get(url + "/readyz").json()["backends"]
    assert len(poison) >= 5 and {r.status_code for r in poison} == {502}
    assert {r.json()["error"]["code"] for r in poison} == {"backend_rejected_request"}
    assert innocent.count(200) == len(innocent) >= 50
    assert all(state.endswith("breaker closed") for state in health.values()), health


def test_a_dead_backend_still_opens_its_breaker(four_samples: Policy) -> None:
    """The poison rule must not shield a backend that fails everyone."""
    dead = fake_backend("error")
    with (
        ServerThread(dead) as one,
        ServerThread(fake_backend("ok")) as two,
        gateway(four_samples, [one + "/v1", two + "/v1"], retries=1) as url,
    ):
        replies = [httpx.post(url + "/v1/chat/completions", json=ask(seed=i)) for i in range(30)]
        health = httpx.get(url + "/readyz").json()["backends"]
    assert {r.status_code for r in replies} == {200}
    assert health[one + "/v1"].endswith("breaker open") or health[one + "/v1"].endswith("half-open")
    assert dead.state.calls <= 10, "the breaker kept traffic off it"


def test_a_flooding_tenant_is_held_to_its_requests_in_flight(four_samples: Policy, tmp_path: Path) -> None:
    tenants = tenants_file(tmp_path, {"tenant": "flood", "max_in_flight": 8}, {"tenant": "calm"})
    with (
        ServerThread(fake_backend("slow", delay=0.5)) as slow,
        gateway(four_samples, [slow + "/v1"], tenants=tenants) as url,
    ):

        async def both() -> tuple[list[httpx.Response], httpx.Response]:
            flood = burst(url, [ask(seed=i) for i in range(64)], key("flood"))
            calm = burst(url, [ask(seed=1000)], key("calm"))
            flooded, calmed = await asyncio.gather(flood, calm)
            return flooded, calmed[0]

        flooded, calm = asyncio.run(both())
    codes = [r.status_code for r in flooded]
    assert codes.count(200) == 8 and codes.count(429) == 56
    assert {r.json()["error"]["code"] for r in flooded if r.status_code == 429} == {"too_many_requests_in_flight"}
    assert calm.status_code == 200


def test_redis_killed_and_restarted_mid_run_costs_no_5xx_and_no_sample(
    policy: Policy, backend: str, questions: list[Question], tmp_path: Path
) -> None:
    server = RedisServer(tmp_path)
    try:
        with gateway(policy, [backend], redis=server.url) as url:

            async def run() -> list[httpx.Response]:
                async with httpx.AsyncClient(base_url=url, timeout=60) as client:
                    gate = asyncio.Semaphore(16)

                    async def one(i: int) -> httpx.Response:
                        async with gate:
                            body = {
                                "model": "apportion",
                                "messages": [{"role": "user", "content": questions[i % 40].question}],
                                "seed": i,
                            }
                            return await client.post("/v1/chat/completions", json=body)

                    async def chaos() -> None:
                        await asyncio.sleep(0.5)
                        server.kill()
                        await asyncio.sleep(0.5)
                        server.start()

                    replies, _ = await asyncio.gather(asyncio.gather(*(one(i) for i in range(400))), chaos())
                    return list(replies)

            replies = asyncio.run(run())
            time.sleep(2.5)  # the gateway's upkeep reconnects and replays within a second or two
            served = sum(r.json()["apportion"]["samples"] for r in replies if r.status_code == 200)
            view = httpx.get(url + "/v1/budget").json()
        assert [r.status_code for r in replies if r.status_code >= 500] == []
        assert all(r.status_code == 200 for r in replies)
        ledger = redis.Redis.from_url(server.url).hgetall("apportion:ledger")
        assert float(ledger[b"cost"]) == served == view["cost"] and int(ledger[b"queries"]) == 400
    finally:
        server.stop()
