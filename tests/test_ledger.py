"""The ledgers against a real redis-server: the Lua script agrees with the pure controller, every request id
is charged once, replicas lose no update, and a Redis outage neither stops serving nor double-charges."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from bench.processes import RedisServer
from service.ledger import (
    BudgetController,
    FallbackLedger,
    LedgerUnavailable,
    LocalLedger,
    RedisLedger,
    redis_client,
)

CONTROLLER = BudgetController(lowest=1, highest=32, horizon=50)


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    redis_server.flush()
    return redis_server.url


async def shared_ledger(url: str, target: float = 4.0) -> RedisLedger:
    ledger = RedisLedger(redis_client(url), CONTROLLER)
    await ledger.join(CONTROLLER.start(target))
    return ledger


def test_redis_ledger_runs_the_controllers_arithmetic(redis_url: str) -> None:
    async def check() -> None:
        shared = await shared_ledger(redis_url)
        local = LocalLedger(CONTROLLER, CONTROLLER.start(4.0))
        draws = np.random.default_rng(0).integers(1, 33, size=300)  # large draws: the debt hits its clip
        for index, samples in enumerate(draws):
            assert await shared.charge(f"r{index}", "team-a", int(samples))
            await local.charge(f"r{index}", "team-a", int(samples))
        mine, theirs = (await local.view()).state, (await shared.view()).state
        assert theirs.queries == mine.queries == 300 and theirs.samples == mine.samples == int(draws.sum())
        assert theirs.debt == pytest.approx(mine.debt, abs=1e-9)
        assert CONTROLLER.operating_budget(theirs) == pytest.approx(CONTROLLER.operating_budget(mine))

    asyncio.run(check())


def test_a_request_id_is_charged_once(redis_url: str) -> None:
    async def check() -> None:
        shared = await shared_ledger(redis_url)
        assert await shared.charge("same", "team-a", 8)
        assert not await shared.charge("same", "team-a", 8)
        view = await shared.view()
        assert view.state.samples == 8 and view.tenants["team-a"].samples == 8

    asyncio.run(check())


def test_replicas_sharing_redis_lose_no_update(redis_url: str) -> None:
    async def check() -> None:
        replicas = [await shared_ledger(redis_url) for _ in range(4)]
        charges = [
            replica.charge(f"{n}-{i}", f"tenant-{i % 3}", 1 + i % 7)
            for n, replica in enumerate(replicas)
            for i in range(250)
        ]
        assert all(await asyncio.gather(*charges))
        view = await replicas[0].view()
        expected = 4 * sum(1 + i % 7 for i in range(250))
        assert view.state.queries == 1000 and view.state.samples == expected
        assert sum(spend.samples for spend in view.tenants.values()) == expected

    asyncio.run(check())


def test_a_new_target_starts_a_new_window_for_every_replica(redis_url: str) -> None:
    async def check() -> None:
        first, second = await shared_ledger(redis_url), await shared_ledger(redis_url, target=9.0)
        assert (await second.view()).state.target == 4.0, "joining does not overwrite a running ledger"
        await first.charge("a", "t", 10)
        await first.restart(CONTROLLER.start(6.0))
        view = await second.view()
        assert view.state.target == 6.0 and view.state.queries == 0 and view.state.debt == 0

    asyncio.run(check())


def test_redis_outage_fails_open_then_replays_without_double_charging(redis_server: RedisServer) -> None:
    redis_server.flush()

    async def check() -> None:
        shared = await shared_ledger(redis_server.url)
        ledger = FallbackLedger(shared, LocalLedger(CONTROLLER, CONTROLLER.start(4.0)), fail_open=True, retry_after=0.0)
        assert await ledger.charge("before", "t", 4)
        redis_server.stop()
        try:
            assert await ledger.charge("during-1", "t", 2)
            assert await ledger.charge("during-2", "t", 6)
            view = await ledger.view()
            assert ledger.degraded and view.state.samples == 4 + 2 + 6
        finally:
            redis_server.start()
        view = await ledger.view()  # replays what was charged locally; each id once
        assert not ledger.degraded and not ledger.pending
        assert await shared.charge("during-1", "t", 2) is False
        assert view.state.queries == 3 and view.state.samples == 12

    asyncio.run(check())


def test_redis_outage_fails_closed_when_configured(redis_server: RedisServer) -> None:
    redis_server.flush()

    async def check() -> None:
        shared = await shared_ledger(redis_server.url)
        ledger = FallbackLedger(
            shared, LocalLedger(CONTROLLER, CONTROLLER.start(4.0)), fail_open=False, retry_after=0.0
        )
        redis_server.stop()
        try:
            with pytest.raises(LedgerUnavailable, match="unreachable"):
                await ledger.view()
            assert await ledger.charge("served-before-it-noticed", "t", 5), "a charge is kept, never lost"
        finally:
            redis_server.start()
        view = await ledger.view()
        assert not ledger.degraded and view.state.samples == 5

    asyncio.run(check())
