"""Where the fleet's spend is recorded: in-process for one gateway, or Redis for replicas that share it.

Both run the same `BudgetController.update` arithmetic; Redis runs it in one Lua script so that concurrent
replicas never lose an update (read-modify-write from clients would), and each request id is charged once,
however often a retry or a replayed charge presents it.

With Redis down, a `FallbackLedger` fails open (the default: serve from a local copy, flag the gateway as
degraded, and replay the charges into Redis once it is back; the request ids keep that from double-charging)
or fails closed (refuse to serve).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from allocator.control import BudgetController, ControlState

StoreKind = Literal["local", "redis"]
_REMEMBERED = 1_000_000  # request ids the local ledger remembers for idempotency
_CHARGE_TTL = 7 * 24 * 3600  # seconds a request id stays charged in Redis


@dataclass(frozen=True)
class Spend:
    queries: int = 0
    samples: int = 0


@dataclass(frozen=True)
class LedgerView:
    state: ControlState
    since: float
    tenants: dict[str, Spend]


def redis_client(url: str, max_connections: int = 256) -> aioredis.Redis:
    """A client whose pool waits for a free connection instead of failing past `max_connections` in flight."""
    pool = aioredis.BlockingConnectionPool.from_url(
        url, max_connections=max_connections, timeout=5, socket_timeout=2, socket_connect_timeout=2
    )
    return aioredis.Redis(connection_pool=pool)


class LedgerUnavailable(Exception):
    """The shared ledger cannot be reached and the gateway is configured to fail closed."""


class Ledger(Protocol):
    kind: StoreKind

    async def view(self, tenant: str | None = None) -> LedgerView:
        """The ledger, with every tenant's spend, or only `tenant`'s (what serving a query needs)."""
        ...

    async def charge(self, request_id: str, tenant: str, samples: int) -> bool:
        """Record a served query; False when `request_id` was charged already (nothing changes)."""
        ...

    async def set_target(self, target: float) -> LedgerView:
        """A new target starts a new window: debt, queries and samples start again from zero."""
        ...


class LocalLedger:
    """One process's ledger."""

    kind: StoreKind = "local"

    def __init__(self, controller: BudgetController, target: float, clock: Callable[[], float] = time.time) -> None:
        self.controller = controller
        self.clock = clock
        self.state = controller.start(target)
        self.since = clock()
        self.tenants: dict[str, Spend] = {}
        self.charged: OrderedDict[str, None] = OrderedDict()

    async def view(self, tenant: str | None = None) -> LedgerView:
        if tenant is None:
            return LedgerView(self.state, self.since, dict(self.tenants))
        return LedgerView(self.state, self.since, {tenant: self.tenants[tenant]} if tenant in self.tenants else {})

    async def charge(self, request_id: str, tenant: str, samples: int) -> bool:
        if request_id in self.charged:
            return False
        self.charged[request_id] = None
        if len(self.charged) > _REMEMBERED:
            self.charged.popitem(last=False)
        self.state = self.controller.update(self.state, samples)
        spent = self.tenants.get(tenant, Spend())
        self.tenants[tenant] = Spend(spent.queries + 1, spent.samples + samples)
        return True

    async def set_target(self, target: float) -> LedgerView:
        self.state = self.controller.start(target)
        self.since = self.clock()
        return await self.view()


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

    async def start(self, target: float) -> None:
        """Join the shared ledger, starting it at `target` if no replica has yet."""
        self.default_target = float(target)
        fresh = {"target": repr(float(target)), "debt": "0", "queries": "0", "samples": "0", "since": repr(time.time())}
        async with self.client.pipeline(transaction=True) as pipe:
            for field, value in fresh.items():
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
            await self.start(self.default_target)
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

    async def set_target(self, target: float) -> LedgerView:
        self.controller.start(target)  # validates
        fields = {
            "target": repr(float(target)),
            "debt": "0",
            "queries": "0",
            "samples": "0",
            "since": repr(time.time()),
        }
        await self.client.hset(self.keys["ledger"], mapping=fields)  # type: ignore[arg-type]
        return await self.view()


@dataclass
class PendingCharge:
    request_id: str
    tenant: str
    samples: int


class FallbackLedger:
    """Redis while it answers; while it does not, a local ledger (fail open) or an error (fail closed).

    Charges are never dropped: one that Redis cannot take is kept and replayed when it is back (fail closed
    only stops new queries). After a failure Redis is tried again only after `retry_after` seconds, so an
    outage does not cost every query a connection timeout.
    """

    kind: StoreKind = "redis"

    def __init__(
        self, shared: RedisLedger, local: LocalLedger, fail_open: bool = True, retry_after: float = 1.0
    ) -> None:
        self.shared = shared
        self.local = local
        self.fail_open = fail_open
        self.retry_after = retry_after
        self.pending: list[PendingCharge] = []
        self.degraded = False
        self.retry_at = 0.0

    async def view(self, tenant: str | None = None) -> LedgerView:
        if self.degraded and time.monotonic() < self.retry_at:
            return await self._local_view("Redis is unreachable")
        try:
            await self._replay()
            view = await self.shared.view()
        except (RedisError, OSError) as exc:
            self._failed()
            return await self._local_view(str(exc))
        self.degraded = False
        self.local.state, self.local.since, self.local.tenants = view.state, view.since, dict(view.tenants)
        return view if tenant is None else await self.local.view(tenant)

    async def charge(self, request_id: str, tenant: str, samples: int) -> bool:
        """Charged in Redis and mirrored locally, so that an outage starts from where the fleet was."""
        if not (self.degraded and time.monotonic() < self.retry_at):
            try:
                await self._replay()
                charged = await self.shared.charge(request_id, tenant, samples)
                if charged:
                    await self.local.charge(request_id, tenant, samples)
                return charged
            except (RedisError, OSError):
                self._failed()
        self.pending.append(PendingCharge(request_id, tenant, samples))
        return await self.local.charge(request_id, tenant, samples)

    async def set_target(self, target: float) -> LedgerView:
        try:
            view = await self.shared.set_target(target)
        except (RedisError, OSError) as exc:
            raise LedgerUnavailable(f"the shared ledger (Redis) is unreachable: {exc}") from None
        await self.local.set_target(target)
        return view

    def _failed(self) -> None:
        self.degraded = True
        self.retry_at = time.monotonic() + self.retry_after

    async def _replay(self) -> None:
        """Charges taken while Redis was away, sent now; each request id counts once whatever happened."""
        while self.pending:
            charge = self.pending[0]
            await self.shared.charge(charge.request_id, charge.tenant, charge.samples)
            self.pending.pop(0)

    async def _local_view(self, reason: str) -> LedgerView:
        if not self.fail_open:
            raise LedgerUnavailable(f"the shared ledger (Redis) is unreachable: {reason}")
        return await self.local.view()
