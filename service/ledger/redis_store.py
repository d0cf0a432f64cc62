"""The ledger in Redis, shared by every gateway replica pointed at the same prefix.

Each charge is one Lua script that runs `BudgetController`'s arithmetic inside Redis, so concurrent replicas
never lose an update (read-modify-write from clients would), a request id is charged once, and the quota
reservation it settles is released in the same step. A Redis that lost its data (restarted without
persistence) is noticed, logged, and its ledger restored from the last state this gateway saw, target included.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import redis.asyncio as aioredis

from service.ledger.base import Charge, LedgerView, Spend, StoreKind
from service.ledger.control import BudgetController, ControlState

log = logging.getLogger("apportion.ledger")
_CHARGE_TTL = 7 * 24 * 3600  # seconds a request id stays charged
_WIPED = -1


def redis_client(url: str, max_connections: int = 256) -> aioredis.Redis:
    """A client whose pool waits for a free connection instead of failing past `max_connections` in flight."""
    pool = aioredis.BlockingConnectionPool.from_url(
        url, max_connections=max_connections, timeout=5, socket_timeout=2, socket_connect_timeout=2
    )
    return aioredis.Redis(connection_pool=pool)


# KEYS: ledger, the charge id's key, tenants' queries, samples and debt, the tenant's reservations
# ARGV: samples, tenant, horizon, lowest, highest, id ttl, deviation, reservation id ('' for none)
_CHARGE = """
if redis.call('HEXISTS', KEYS[1], 'target') == 0 then return -1 end
if ARGV[8] ~= '' then redis.call('HDEL', KEYS[6], ARGV[8]) end
if not redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[6]) then return 0 end
local samples, deviation = tonumber(ARGV[1]), tonumber(ARGV[7])
local horizon, lowest, highest = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local target = tonumber(redis.call('HGET', KEYS[1], 'target'))
local debt = tonumber(redis.call('HGET', KEYS[1], 'debt') or '0') + samples - target - deviation
debt = math.min(math.max(debt, horizon * (target - highest)), horizon * (target - lowest))
redis.call('HSET', KEYS[1], 'debt', string.format('%.17g', debt))
redis.call('HINCRBY', KEYS[1], 'queries', 1)
redis.call('HINCRBY', KEYS[1], 'samples', samples)
redis.call('HINCRBY', KEYS[1], 'lifetime_samples', samples)
redis.call('HINCRBY', KEYS[3], ARGV[2], 1)
redis.call('HINCRBY', KEYS[4], ARGV[2], samples)
local span = horizon * (highest - lowest)
local owed = tonumber(redis.call('HGET', KEYS[5], ARGV[2]) or '0') + deviation
redis.call('HSET', KEYS[5], ARGV[2], string.format('%.17g', math.min(math.max(owed, -span), span)))
return 1
"""

# KEYS: tenants' samples, the tenant's reservations. ARGV: tenant, reservation id, samples, quota, now, seconds
# A reservation is "samples lapse-time", grown by each round of its query; lapsed ones (a gateway that died
# mid-query) are dropped here.
_RESERVE = """
local now = tonumber(ARGV[5])
local held = 0
local entries = redis.call('HGETALL', KEYS[2])
for i = 1, #entries, 2 do
  local amount, lapses = string.match(entries[i + 1], '(%d+) (%S+)')
  if tonumber(lapses) <= now then redis.call('HDEL', KEYS[2], entries[i]) else held = held + tonumber(amount) end
end
local room = tonumber(ARGV[4]) - tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0') - held
local granted = math.max(math.min(tonumber(ARGV[3]), room), 0)
if granted > 0 then
  local own = tonumber(string.match(redis.call('HGET', KEYS[2], ARGV[2]) or '0', '(%d+)'))
  redis.call('HSET', KEYS[2], ARGV[2], (own + granted) .. ' ' .. string.format('%.17g', now + tonumber(ARGV[6])))
  redis.call('EXPIRE', KEYS[2], math.ceil(tonumber(ARGV[6])) + 60)
end
return granted
"""


class RedisLedger:
    kind: StoreKind = "redis"

    def __init__(self, client: aioredis.Redis, controller: BudgetController, prefix: str = "apportion") -> None:
        self.client = client
        self.controller = controller
        self.prefix = prefix
        self.keys = {name: f"{prefix}:{name}" for name in ("ledger", "tenant_queries", "tenant_samples", "tenant_debt")}
        self.charge_script = client.register_script(_CHARGE)
        self.reserve_script = client.register_script(_RESERVE)
        self.last: LedgerView | None = None
        """The last whole ledger read: what a wiped Redis is restored from."""
        self.last_at = 0.0
        """When `last` was read (monotonic)."""
        self.wipes: list[float] = []
        """When this gateway found the ledger gone (Unix times)."""
        self.restored_from = 0.0
        """`last_at` of the state the latest restore put back: charges after it are not in it."""

    async def join(self, state: ControlState) -> None:
        """Join the shared ledger, starting it from `state` if no replica has yet."""
        self.last, self.last_at = LedgerView(state, time.time(), {}), time.monotonic()
        async with self.client.pipeline(transaction=True) as pipe:
            for field, value in _fields(state).items():
                pipe.hsetnx(self.keys["ledger"], field, value)
            await pipe.execute()

    async def view(self, tenant: str | None = None) -> LedgerView:
        for _ in range(2):
            async with self.client.pipeline(transaction=True) as pipe:
                pipe.hgetall(self.keys["ledger"])
                for key in ("tenant_queries", "tenant_samples", "tenant_debt"):
                    pipe.hgetall(self.keys[key]) if tenant is None else pipe.hmget(self.keys[key], [tenant])
                ledger, queries, samples, debts = await pipe.execute()
            if b"target" in ledger:
                break
            await self.restore()
        if tenant is not None:
            queries, samples, debts = (
                {tenant.encode(): v[0]} if v[0] is not None else {} for v in (queries, samples, debts)
            )
        state = ControlState(
            target=float(ledger[b"target"]),
            debt=float(ledger.get(b"debt", 0)),
            queries=int(ledger.get(b"queries", 0)),
            samples=int(ledger.get(b"samples", 0)),
        )
        tenants = {
            name.decode(): Spend(int(queries.get(name, 0)), int(samples[name]), float(debts.get(name, 0)))
            for name in samples
        }
        view = LedgerView(state, float(ledger.get(b"since", 0)), tenants)
        if tenant is None:
            self.last, self.last_at = view, time.monotonic()
        return view

    async def reserve(self, tenant: str, reservation: str, samples: int, quota: int, seconds: float) -> int:
        keys = [self.keys["tenant_samples"], self._reserved(tenant)]
        args: list[str | int] = [tenant, reservation, samples, quota, repr(time.time()), repr(seconds)]
        return int(await self.reserve_script(keys=keys, args=args))

    async def charge(self, charge: Charge) -> bool:
        keys = [
            self.keys["ledger"],
            f"{self.prefix}:charged:{charge.id}",
            self.keys["tenant_queries"],
            self.keys["tenant_samples"],
            self.keys["tenant_debt"],
            self._reserved(charge.tenant),
        ]
        c = self.controller
        args: list[Any] = [charge.samples, charge.tenant, c.horizon, c.lowest, c.highest, _CHARGE_TTL]
        args += [repr(float(charge.deviation)), charge.reservation or ""]
        done = await self.charge_script(keys=keys, args=args)
        if done == _WIPED:
            await self.restore()
            done = await self.charge_script(keys=keys, args=args)
        return bool(done == 1)

    async def release(self, tenant: str, reservation: str) -> None:
        await self.client.hdel(self._reserved(tenant), reservation)

    async def restart(self, state: ControlState) -> LedgerView:
        await self.client.hset(self.keys["ledger"], mapping=_fields(state))  # type: ignore[arg-type]
        return await self.view()

    async def intact(self) -> bool:
        return bool(await self.client.hexists(self.keys["ledger"], "target"))

    async def server_id(self) -> str:
        """Redis's run id: it changes when the server restarts (and may have lost its last writes)."""
        info = await self.client.info("server")
        return str(info.get("run_id", ""))

    def _reserved(self, tenant: str) -> str:
        return f"{self.prefix}:reserved:{tenant}"

    async def restore(self) -> None:
        """The ledger is gone (a Redis restarted without persistence, or flushed): say so loudly and put back
        the last state this gateway saw, its target with it (each field only if no replica did already)."""
        last = self.last
        assert last is not None, "join() runs before anything else"
        self.wipes.append(time.time())
        self.restored_from = self.last_at
        log.error(
            "the shared ledger in Redis is gone (restarted without persistence, or flushed): restoring target %g "
            "and the spend this gateway last saw (%d queries); run Redis with append-only persistence",
            last.state.target,
            last.state.queries,
        )
        async with self.client.pipeline(transaction=True) as pipe:
            for field, value in _fields(last.state, last.since).items():
                pipe.hsetnx(self.keys["ledger"], field, value)
            for name, spend in last.tenants.items():
                pipe.hsetnx(self.keys["tenant_queries"], name, spend.queries)
                pipe.hsetnx(self.keys["tenant_samples"], name, spend.samples)
                pipe.hsetnx(self.keys["tenant_debt"], name, repr(spend.debt))
            await pipe.execute()


def _fields(state: ControlState, since: float | None = None) -> dict[str, str]:
    """The ledger hash of `state`."""
    return {
        "target": repr(state.target),
        "debt": repr(state.debt),
        "queries": str(state.queries),
        "samples": str(state.samples),
        "since": repr(time.time() if since is None else since),
    }
