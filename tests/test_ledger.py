"""The ledgers against a real redis-server: the Lua scripts agree with the pure controller, every charge id is
charged once, replicas lose no update, quota reservations hold under concurrency, and a Redis outage, restart
or loss of its data neither stops serving nor loses or double-counts a charge."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from bench.processes import RedisServer
from service.ledger import (
    BudgetController,
    Charge,
    FallbackLedger,
    Hold,
    LedgerUnavailable,
    LocalLedger,
    RedisLedger,
    redis_client,
)

CONTROLLER = BudgetController(lowest=1, highest=32, horizon=50)


def charge_of(id: str, tenant: str, samples: float, deviation: float = 0.0, **options: object) -> Charge:
    """A query of one model at price 1 in samples: its cost is its samples."""
    n = int(samples)
    return Charge(id, tenant, n, float(n), {"m": (n, n)}, deviation, **options)  # type: ignore[arg-type]


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    redis_server.flush()
    return redis_server.url


async def shared_ledger(url: str, target: float = 4.0, connections: int = 256) -> RedisLedger:
    ledger = RedisLedger(redis_client(url, max_connections=connections), CONTROLLER)
    await ledger.join(CONTROLLER.start(target))
    return ledger


def test_redis_ledger_runs_the_controllers_arithmetic(redis_url: str) -> None:
    async def check() -> None:
        shared = await shared_ledger(redis_url)
        local = LocalLedger(CONTROLLER, CONTROLLER.start(4.0))
        rng = np.random.default_rng(0)
        draws = rng.integers(1, 33, size=300)  # large draws: the debt hits its clip
        deviations = np.where(rng.random(300) < 0.3, rng.normal(0, 8, 300), 0.0)  # hints, and their repayment
        for index, (samples, deviation) in enumerate(zip(draws, deviations, strict=True)):
            charge = charge_of(f"r{index}", f"team-{index % 2}", int(samples), float(deviation))
            assert await shared.charge(charge)
            await local.charge(charge)
        mine, theirs = await local.view(), await shared.view()
        assert theirs.state.queries == mine.state.queries == 300
        assert theirs.state.cost == mine.state.cost == int(draws.sum())
        assert theirs.state.debt == pytest.approx(mine.state.debt, abs=1e-9)
        assert CONTROLLER.operating_budget(theirs.state) == pytest.approx(CONTROLLER.operating_budget(mine.state))
        for team in ("team-0", "team-1"):
            assert theirs.tenants[team].samples == mine.tenants[team].samples
            assert theirs.tenants[team].debt == pytest.approx(mine.tenants[team].debt, abs=1e-9)
        assert any(spend.debt != 0 for spend in mine.tenants.values())

    asyncio.run(check())


def test_a_charge_id_is_charged_once(redis_url: str) -> None:
    async def check() -> None:
        shared = await shared_ledger(redis_url)
        assert await shared.charge(charge_of("same", "team-a", 8))
        assert not await shared.charge(charge_of("same", "team-a", 8))
        view = await shared.view()
        assert view.state.cost == 8 and view.tenants["team-a"].samples == 8

    asyncio.run(check())


def test_replicas_sharing_redis_lose_no_update(redis_url: str) -> None:
    async def check() -> None:
        # Four pools of 32 connections: a thousand charges in flight share them, as replicas' pools do, without a
        # thousand sockets opening at once (on a loaded 2-core machine some took over the 2 s connect timeout).
        replicas = [await shared_ledger(redis_url, connections=32) for _ in range(4)]
        charges = [
            replica.charge(charge_of(f"{n}-{i}", f"tenant-{i % 3}", 1 + i % 7))
            for n, replica in enumerate(replicas)
            for i in range(250)
        ]
        assert all(await asyncio.gather(*charges))
        view = await replicas[0].view()
        expected = 4 * sum(1 + i % 7 for i in range(250))
        assert view.state.queries == 1000 and view.state.cost == expected
        assert sum(spend.samples for spend in view.tenants.values()) == expected

    asyncio.run(check())


@pytest.mark.parametrize("store", ["redis", "local"])
@pytest.mark.parametrize("quota", [0, 1, 100])
def test_reservations_never_let_concurrent_queries_spend_past_a_quota(redis_url: str, store: str, quota: int) -> None:
    """64 queries at once, each reserving up to 8 samples and then drawing all it was granted."""

    async def check() -> None:
        ledger = await shared_ledger(redis_url) if store == "redis" else LocalLedger(CONTROLLER, CONTROLLER.start(4))

        async def query(i: int) -> int:
            granted = await ledger.reserve(Hold("t", f"res-{i}", 8, quota, 60))
            await asyncio.sleep(0.001 * (i % 5))
            if granted:
                await ledger.charge(charge_of(f"q-{i}", "t", granted, reservation=f"res-{i}"))
            return granted

        granted = await asyncio.gather(*(query(i) for i in range(64)))
        spent = (await ledger.view()).tenants.get("t")
        assert sum(granted) == (spent.samples if spent else 0) == quota  # to the sample: granted, then charged
        assert await ledger.reserve(Hold("t", "after", 8, quota, 60)) == 0

    asyncio.run(check())


def test_a_released_or_lapsed_reservation_gives_its_samples_back(redis_url: str) -> None:
    async def check() -> None:
        shared = await shared_ledger(redis_url)
        assert await shared.reserve(Hold("t", "a", 6, 10, 60)) == 6
        assert await shared.reserve(Hold("t", "b", 6, 10, 0.05)) == 4, "only what is left is granted"
        assert await shared.reserve(Hold("t", "c", 6, 10, 60)) == 0
        await shared.release("t", "a")
        await asyncio.sleep(0.1)  # b lapses: a gateway that died mid-query does not hold a quota for ever
        assert await shared.reserve(Hold("t", "d", 10, 10, 60)) == 10

    asyncio.run(check())


def test_a_new_target_starts_a_new_window_for_every_replica(redis_url: str) -> None:
    async def check() -> None:
        first, second = await shared_ledger(redis_url), await shared_ledger(redis_url, target=9.0)
        assert (await second.view()).state.target == 4.0, "joining does not overwrite a running ledger"
        await first.charge(charge_of("a", "t", 10))
        await first.restart(CONTROLLER.start(6.0))
        view = await second.view()
        assert view.state.target == 6.0 and view.state.queries == 0 and view.state.debt == 0
        assert view.tenants["t"].samples == 10, "a tenant's lifetime spend outlives the window"

    asyncio.run(check())


def fallback(url: str, fail_open: bool = True) -> tuple[RedisLedger, FallbackLedger]:
    shared = RedisLedger(redis_client(url), CONTROLLER)
    return shared, FallbackLedger(shared, LocalLedger(CONTROLLER, CONTROLLER.start(4.0)), fail_open=fail_open)


def test_redis_outage_fails_open_then_replays_without_double_charging(redis_server: RedisServer) -> None:
    redis_server.flush()

    async def check() -> None:
        shared, ledger = fallback(redis_server.url)
        await shared.join(CONTROLLER.start(4.0))
        assert await ledger.charge(charge_of("before", "t", 4))
        redis_server.stop()
        try:
            assert await ledger.charge(charge_of("during-1", "t", 2))
            assert await ledger.charge(charge_of("during-2", "t", 6))
            view = await ledger.view()
            assert ledger.degraded and view.state.cost == 4 + 2 + 6
            await ledger.maintain()  # Redis still away: stays degraded, keeps what it owes
            assert ledger.degraded and len(ledger.pending) == 2
        finally:
            redis_server.start()
        await ledger.maintain()  # replays what was charged locally; each id once
        view = await ledger.view()
        assert not ledger.degraded and not ledger.pending
        assert await shared.charge(charge_of("during-1", "t", 2)) is False
        assert view.state.queries == 3 and view.state.cost == 12

    asyncio.run(check())


def test_replays_are_single_flight(redis_server: RedisServer) -> None:
    """Many upkeep calls at once (the fault behind `IndexError: pop from empty list`): each charge lands once."""
    redis_server.flush()

    async def check() -> None:
        shared, ledger = fallback(redis_server.url)
        await shared.join(CONTROLLER.start(4.0))
        redis_server.stop()
        try:
            for i in range(50):
                await ledger.charge(charge_of(f"c{i}", "t", 3))
        finally:
            redis_server.start()
        await asyncio.gather(*(ledger.maintain() for _ in range(20)))
        view = await ledger.view()
        assert not ledger.pending and view.state.queries == 50 and view.state.cost == 150

    asyncio.run(check())


def test_redis_outage_fails_closed_when_configured(redis_server: RedisServer) -> None:
    redis_server.flush()

    async def check() -> None:
        shared, ledger = fallback(redis_server.url, fail_open=False)
        await shared.join(CONTROLLER.start(4.0))
        redis_server.stop()
        try:
            with pytest.raises(LedgerUnavailable, match="unreachable"):
                await ledger.view()
            assert await ledger.charge(charge_of("served-before-it-noticed", "t", 5)), "a charge is kept, never lost"
        finally:
            redis_server.start()
        await ledger.maintain()
        view = await ledger.view()
        assert not ledger.degraded and view.state.cost == 5

    asyncio.run(check())


def test_a_wiped_ledger_is_noticed_and_restored_with_its_target(redis_server: RedisServer) -> None:
    """Redis restarted without persistence: the admin's target and the spend this gateway saw come back."""
    redis_server.flush()

    async def check() -> None:
        shared, ledger = fallback(redis_server.url)
        await shared.join(CONTROLLER.start(4.0))
        await ledger.restart(CONTROLLER.start(7.0))  # the admin's target, not the one the gateway started with
        for i in range(10):
            await ledger.charge(charge_of(f"c{i}", "t", 5))
        await ledger.view()  # the state a restore goes back to
        await ledger.maintain()
        await ledger.charge(charge_of("late", "t", 3))  # after the last view: re-sent from the journal
        redis_server.flush()
        await ledger.maintain()
        view = await ledger.view()
        assert view.state.target == 7.0 and view.state.queries == 11 and view.state.cost == 53
        assert view.tenants["t"].samples == 53
        assert ledger.health()["ledger_wiped_at"] is not None

    asyncio.run(check())


def test_charges_lost_by_a_restart_are_sent_again(tmp_path: Path) -> None:
    """A Redis that syncs its append-only file every second loses its last second on SIGKILL: the gateway
    notices the new run id and re-sends the charges of the last seconds; the ids keep them exact."""

    async def check(server: RedisServer) -> None:
        shared, ledger = fallback(server.url)
        await shared.join(CONTROLLER.start(4.0))
        await ledger.maintain()
        for i in range(20):
            await ledger.charge(charge_of(f"c{i}", "t", 2))
        lost = 20 * 2
        server.kill()  # appendfsync always: nothing lost; flushing shows what a lost tail looks like
        server.start()
        server.flush()
        await ledger.maintain()  # the old connections fail once: degraded until the next second
        await ledger.maintain()
        view = await ledger.view()
        assert view.state.cost == lost and view.tenants["t"].samples == lost
        assert ledger.health()["redis_restarts_seen"] == 1

    server = RedisServer(tmp_path)
    try:
        asyncio.run(check(server))
    finally:
        server.stop()


@pytest.mark.parametrize("store", ["local", "redis"])
def test_a_periodic_quota_starts_again_each_period_and_direct_queries_leave_the_target_alone(
    redis_url: str, store: str
) -> None:
    async def check() -> None:
        ledger = await shared_ledger(redis_url) if store == "redis" else LocalLedger(CONTROLLER, CONTROLLER.start(4.0))
        today, tomorrow = "2026-12-02", "2026-12-03"
        assert await ledger.reserve(Hold("t", "a", 30.0, 50.0, 60, period=today)) == 30.0
        both = {"large": (1, 1), "small": (1, 1)}
        assert await ledger.charge(Charge("q1", "t", 2, 27.5, both, reservation="a", period=today))
        assert await ledger.reserve(Hold("t", "b", 30.0, 50.0, 60, period=today)) == 22.5, "what is left today"
        await ledger.release("t", "b")
        assert await ledger.reserve(Hold("t", "c", 30.0, 50.0, 60, period=tomorrow)) == 30.0, "a new day"
        await ledger.release("t", "c")
        assert await ledger.charge(Charge("q2", "t", 1, 20.0, {"large": (1, 1)}, allocated=False, period=today))
        view = await ledger.view()
        assert (view.state.queries, view.state.cost) == (1, 27.5), "a query the policy did not choose moves no target"
        spent = view.tenants["t"]
        assert (spent.queries, spent.samples, spent.cost) == (2, 3, 47.5)
        assert (spent.period_key, spent.period) == (today, 47.5)
        assert {m: (s.samples, s.units) for m, s in view.models.items()} == {"large": (2, 2), "small": (1, 1)}

    asyncio.run(check())
