"""Redis while it answers; while it does not, a local ledger (fail open) or an error (fail closed).

Charges are never dropped: one that Redis cannot take is kept and replayed when it is back (the request ids
keep that from double-charging), and failing closed only stops new queries.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from redis.exceptions import RedisError

from service.ledger.base import LedgerUnavailable, LedgerView, StoreKind
from service.ledger.control import ControlState
from service.ledger.local import LocalLedger
from service.ledger.redis_store import RedisLedger


@dataclass
class PendingCharge:
    request_id: str
    tenant: str
    samples: int


class FallbackLedger:
    """After a failure Redis is tried again only after `retry_after` seconds, so that an outage does not cost
    every query a connection timeout."""

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

    async def restart(self, state: ControlState) -> LedgerView:
        try:
            view = await self.shared.restart(state)
        except (RedisError, OSError) as exc:
            raise LedgerUnavailable(f"the shared ledger (Redis) is unreachable: {exc}") from None
        await self.local.restart(state)
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
