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

from service.ledger.base import Charge, Hold, LedgerView, ModelSpend, Spend, StoreKind
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


# KEYS: ledger, the charge id's key, tenants' queries, samples, cost, debt and period, the tenant's
# reservations, models' samples and units.
# ARGV: cost, tenant, horizon, lowest, highest, id ttl, deviation, reservation id ('' for none), samples,
# allocated ('1' or '0'), period ('' for none), then per model: name, samples, units.
# Costs are added as doubles and written with 17 digits, the arithmetic of `LocalLedger` to the last bit.
_CHARGE = """
if redis.call('HEXISTS', KEYS[1], 'target') == 0 then return -1 end
if ARGV[8] ~= '' then redis.call('HDEL', KEYS[8], ARGV[8]) end
if not redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[6]) then return 0 end
local cost, deviation, tenant = tonumber(ARGV[1]), tonumber(ARGV[7]), ARGV[2]
local horizon, lowest, highest = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local function add(key, field, amount)
  local total = tonumber(redis.call('HGET', key, field) or '0') + amount
  redis.call('HSET', key, field, string.format('%.17g', total))
end
if ARGV[10] == '1' then
  local target = tonumber(redis.call('HGET', KEYS[1], 'target'))
  local debt = tonumber(redis.call('HGET', KEYS[1], 'debt') or '0') + cost - target - deviation
  debt = math.min(math.max(debt, horizon * (target - highest)), horizon * (target - lowest))
  redis.call('HSET', KEYS[1], 'debt', string.format('%.17g', debt))
  redis.call('HINCRBY', KEYS[1], 'queries', 1)
  add(KEYS[1], 'cost', cost)
  local span = horizon * (highest - lowest)
  local owed = tonumber(redis.call('HGET', KEYS[6], tenant) or '0') + deviation
  redis.call('HSET', KEYS[6], tenant, string.format('%.17g', math.min(math.max(owed, -span), span)))
end
redis.call('HINCRBY', KEYS[3], tenant, 1)
redis.call('HINCRBY', KEYS[4], tenant, ARGV[9])
add(KEYS[5], tenant, cost)
if ARGV[11] ~= '' then
  local key, spent = string.match(redis.call('HGET', KEYS[7], tenant) or '', '(%S+) (%S+)')
  local total = (key == ARGV[11] and tonumber(spent) or 0) + cost
  redis.call('HSET', KEYS[7], tenant, ARGV[11] .. ' ' .. string.format('%.17g', total))
end
for i = 12, #ARGV, 3 do
  redis.call('HINCRBY', KEYS[9], ARGV[i], ARGV[i + 1])
  redis.call('HINCRBY', KEYS[10], ARGV[i], ARGV[i + 2])
end
return 1
"""

# KEYS: tenants' cost, the tenant's reservations, tenants' periods.
# ARGV: tenant, reservation id, amount, quota, now, seconds, period ('' for a lifetime quota).
# A reservation is "amount lapse-time", grown by each round of its query; lapsed ones (a gateway that died
# mid-query) are dropped here.
_RESERVE = """
local now = tonumber(ARGV[5])
local held = 0
local entries = redis.call('HGETALL', KEYS[2])
for i = 1, #entries, 2 do
  local amount, lapses = string.match(entries[i + 1], '(%S+) (%S+)')
  if tonumber(lapses) <= now then redis.call('HDEL', KEYS[2], entries[i]) else held = held + tonumber(amount) end
end
local spent = 0
if ARGV[7] == '' then
  spent = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
else
  local key, amount = string.match(redis.call('HGET', KEYS[3], ARGV[1]) or '', '(%S+) (%S+)')
  if key == ARGV[7] then spent = tonumber(amount) end
end
local granted = math.max(math.min(tonumber(ARGV[3]), tonumber(ARGV[4]) - spent - held), 0)
if granted > 0 then
  local own = tonumber(string.match(redis.call('HGET', KEYS[2], ARGV[2]) or '0', '(%S+)'))
  local entry = string.format('%.17g', own + granted) .. ' ' .. string.format('%.17g', now + tonumber(ARGV[6]))
  redis.call('HSET', KEYS[2], ARGV[2], entry)
  redis.call('EXPIRE', KEYS[2], math.ceil(tonumber(ARGV[6])) + 60)
end
return tostring(granted)
"""

_TENANT_KEYS = ("tenant_queries", "tenant_samples", "tenant_cost", "tenant_debt", "tenant_period")


class RedisLedger:
    kind: StoreKind = "redis"

    def __init__(self, client: aioredis.Redis, controller: BudgetController, prefix: str = "apportion") -> None:
        self.client = client
        self.controller = controller
        self.prefix = prefix
        names = ("ledger", *_TENANT_KEYS, "model_samples", "model_units")
        self.keys = {name: f"{prefix}:{name}" for name in names}
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
                for key in _TENANT_KEYS:
                    pipe.hgetall(self.keys[key]) if tenant is None else pipe.hmget(self.keys[key], [tenant])
                pipe.hgetall(self.keys["model_samples"])
                pipe.hgetall(self.keys["model_units"])
                ledger, *columns, model_samples, model_units = await pipe.execute()
            if b"target" in ledger:
                break
            await self.restore()
        if tenant is not None:
            columns = [{tenant.encode(): v[0]} if v[0] is not None else {} for v in columns]
        queries, samples, cost, debts, periods = columns
        state = ControlState(
            target=float(ledger[b"target"]),
            debt=float(ledger.get(b"debt", 0)),
            queries=int(ledger.get(b"queries", 0)),
            cost=float(ledger.get(b"cost", 0)),
        )
        tenants = {}
        for name in samples:
            key, _, spent = periods.get(name, b"").decode().partition(" ")
            tenants[name.decode()] = Spend(
                int(queries.get(name, 0)),
                int(samples[name]),
                float(cost.get(name, 0)),
                float(debts.get(name, 0)),
                key or None,
                float(spent or 0),
            )
        models = {
            name.decode(): ModelSpend(int(count), int(model_units.get(name, 0)))
            for name, count in model_samples.items()
        }
        view = LedgerView(state, float(ledger.get(b"since", 0)), tenants, models)
        if tenant is None:
            self.last, self.last_at = view, time.monotonic()
        return view

    async def reserve(self, hold: Hold) -> float:
        keys = [self.keys["tenant_cost"], self._reserved(hold.tenant), self.keys["tenant_period"]]
        args = [hold.tenant, hold.reservation, repr(float(hold.amount)), repr(float(hold.quota))]
        args += [repr(time.time()), repr(hold.seconds), hold.period or ""]
        return float(await self.reserve_script(keys=keys, args=args))

    async def charge(self, charge: Charge) -> bool:
        keys = [
            self.keys["ledger"],
            f"{self.prefix}:charged:{charge.id}",
            *(self.keys[key] for key in _TENANT_KEYS),
            self._reserved(charge.tenant),
            self.keys["model_samples"],
            self.keys["model_units"],
        ]
        c = self.controller
        args: list[Any] = [repr(float(charge.cost)), charge.tenant, c.horizon, c.lowest, c.highest, _CHARGE_TTL]
        args += [repr(float(charge.deviation)), charge.reservation or "", charge.samples]
        args += ["1" if charge.allocated else "0", charge.period or ""]
        for model, (samples, units) in charge.models.items():
            args += [model, samples, units]
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
                pipe.hsetnx(self.keys["tenant_cost"], name, repr(spend.cost))
                pipe.hsetnx(self.keys["tenant_debt"], name, repr(spend.debt))
                if spend.period_key is not None:
                    pipe.hsetnx(self.keys["tenant_period"], name, f"{spend.period_key} {spend.period!r}")
            for model, totals in last.models.items():
                pipe.hsetnx(self.keys["model_samples"], model, totals.samples)
                pipe.hsetnx(self.keys["model_units"], model, totals.units)
            await pipe.execute()


def _fields(state: ControlState, since: float | None = None) -> dict[str, str]:
    """The ledger hash of `state`."""
    return {
        "target": repr(state.target),
        "debt": repr(state.debt),
        "queries": str(state.queries),
        "cost": repr(state.cost),
        "since": repr(time.time() if since is None else since),
    }
