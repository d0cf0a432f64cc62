"""The ledger in Redis, shared by every gateway replica pointed at the same prefix.

Each charge is one Lua script that runs `BudgetController.update`'s arithmetic inside Redis, so concurrent
replicas never lose an update (read-modify-write from clients would), and a request id is charged once.
"""

from __future__ import annotations

import time

import redis.asyncio as aioredis

from service.ledger.base import LedgerView, Spend, StoreKind
from service.ledger.control import BudgetController, ControlState

_CHARGE_TTL = 7 * 24 * 3600  # seconds a request id stays charged


def redis_client(url: str, max_connections: int = 256) -> aioredis.Redis:
    """A client whose pool waits for a free connection instead of failing past `max_connections` in flight."""
    pool = aioredis.BlockingConnectionPool.from_url(
        url, max_connections=max_connections, timeout=5, socket_timeout=2, socket_connect_timeout=2
    )
    return aioredis.Redis(connection_pool=pool)


# KEYS: ledger hash, the request id's key, tenants' queries hash, tenants' samples hash
# ARGV: samples, tenant, horizon, lowest, highest, ttl, target to start at, time now
_CHARGE = """
if not redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[6]) then return 0 end
local samples = tonumber(ARGV[1])
local target = tonumber(redis.call('HGET', KEYS[1], 'target') or ARGV[7])
if redis.call('HSETNX', KEYS[1], 'target', ARGV[7]) == 1 then  -- Redis lost the ledger: start it again
  redis.call('HSET', KEYS[1], 'since', ARGV[8])
end
local debt = tonumber(redis.call('HGET', KEYS[1], 'debt') or '0') + samples - target
local horizon, lowest, highest = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
debt = math.max(horizon * (target - highest), math.min(horizon * (target - lowest), debt))
redis.call('HSET', KEYS[1], 'debt', string.format('%.17g', debt))
redis.call('HINCRBY', KEYS[1], 'queries', 1)
redis.call('HINCRBY', KEYS[1], 'samples', samples)
redis.call('HINCRBY', KEYS[1], 'lifetime_samples', samples)
redis.call('HINCRBY', KEYS[3], ARGV[2], 1)
redis.call('HINCRBY', KEYS[4], ARGV[2], samples)
return 1
"""


class RedisLedger:
    """The ledger in Redis, shared by every gateway replica pointed at the same `prefix`."""

    kind: StoreKind = "redis"

    def __init__(self, client: aioredis.Redis, controller: BudgetController, prefix: str = "apportion") -> None:
        self.client = client
        self.controller = controller
        self.keys = {name: f"{prefix}:{name}" for name in ("ledger", "tenant_queries", "tenant_samples")}
        self.charged_prefix = f"{prefix}:charged:"
        self.script = client.register_script(_CHARGE)
        self.default_target = 1.0

    async def join(self, state: ControlState) -> None:
        """Join the shared ledger, starting it from `state` if no replica has yet."""
        self.default_target = state.target
        async with self.client.pipeline(transaction=True) as pipe:
            for field, value in _fields(state).items():
                pipe.hsetnx(self.keys["ledger"], field, value)
            await pipe.execute()

    async def view(self, tenant: str | None = None) -> LedgerView:
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.hgetall(self.keys["ledger"])
            for key in ("tenant_queries", "tenant_samples"):
                if tenant is None:
                    pipe.hgetall(self.keys[key])
                else:
                    pipe.hmget(self.keys[key], [tenant])
            ledger, queries, samples = await pipe.execute()
        if b"target" not in ledger:  # a Redis that lost its data (restarted without persistence)
            await self.join(ControlState(self.default_target))
            return await self.view(tenant)
        if tenant is not None:
            queries, samples = ({tenant.encode(): v[0]} if v[0] is not None else {} for v in (queries, samples))
        state = ControlState(
            target=float(ledger[b"target"]),
            debt=float(ledger.get(b"debt", 0)),
            queries=int(ledger.get(b"queries", 0)),
            samples=int(ledger.get(b"samples", 0)),
        )
        tenants = {name.decode(): Spend(int(queries.get(name, 0)), int(samples[name])) for name in samples}
        return LedgerView(state, float(ledger.get(b"since", 0)), tenants)

    async def charge(self, request_id: str, tenant: str, samples: int) -> bool:
        keys = [
            self.keys["ledger"],
            self.charged_prefix + request_id,
            self.keys["tenant_queries"],
            self.keys["tenant_samples"],
        ]
        c = self.controller
        args: list[str | int | float] = [
            samples,
            tenant,
            c.horizon,
            c.lowest,
            c.highest,
            _CHARGE_TTL,
            repr(self.default_target),
            repr(time.time()),
        ]
        done = await self.script(keys=keys, args=args)
        return bool(done)

    async def restart(self, state: ControlState) -> LedgerView:
        self.default_target = state.target
        await self.client.hset(self.keys["ledger"], mapping=_fields(state))  # type: ignore[arg-type]
        return await self.view()


def _fields(state: ControlState) -> dict[str, str]:
    """The ledger hash of a fresh window."""
    return {
        "target": repr(state.target),
        "debt": repr(state.debt),
        "queries": str(state.queries),
        "samples": str(state.samples),
        "since": repr(time.time()),
    }
