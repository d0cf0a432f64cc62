"""Redis while it answers; while it does not, a local ledger (fail open) or an error (fail closed).

Charges are never dropped: one that Redis cannot take is kept and replayed when it is back (the charge ids
keep that from double-charging), and failing closed only stops new queries. While degraded, queries never wait
on Redis: `maintain`, called once a second, is the only thing that tries it again, and replays what is owed,
one replay at a time. It also notices a Redis that restarted (its run id changed) and re-sends the charges of
the last seconds, which an append-only file synced every second may have lost; the ids make that exact.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from typing import Any

from redis.exceptions import RedisError

from service.ledger.base import Charge, Hold, LedgerUnavailable, LedgerView, StoreKind
from service.ledger.control import ControlState
from service.ledger.local import LocalLedger
from service.ledger.redis_store import RedisLedger

log = logging.getLogger("apportion.ledger")
_JOURNAL_SECONDS = 10.0  # charges re-sent after a Redis restart: more than an fsync-every-second file can lose
_JOURNAL_MOST = 100_000


class FallbackLedger:
    kind: StoreKind = "redis"

    def __init__(self, shared: RedisLedger, local: LocalLedger, fail_open: bool = True) -> None:
        self.shared = shared
        self.local = local
        self.fail_open = fail_open
        self.pending: list[Charge] = []
        """Charges Redis has not taken yet, in order."""
        self.journal: deque[tuple[float, Charge]] = deque(maxlen=_JOURNAL_MOST)
        self.degraded = False
        self.replaying = asyncio.Lock()
        self.server: str | None = None
        self.restarts = 0
        self.wipes_seen = 0

    async def view(self, tenant: str | None = None) -> LedgerView:
        if not self.degraded:
            try:
                view = await self.shared.view()
            except (RedisError, OSError) as exc:
                self._failed(exc)
            else:
                self.local.state, self.local.since = view.state, view.since
                self.local.tenants, self.local.models = dict(view.tenants), dict(view.models)
                return view if tenant is None else await self.local.view(tenant)
        if not self.fail_open:
            raise LedgerUnavailable("the shared ledger (Redis) is unreachable and the gateway fails closed")
        return await self.local.view(tenant)

    async def reserve(self, hold: Hold) -> float:
        if not self.degraded:
            try:
                return await self.shared.reserve(hold)
            except (RedisError, OSError) as exc:
                self._failed(exc)
        return await self.local.reserve(hold)

    async def charge(self, charge: Charge) -> bool:
        """Charged in Redis and mirrored locally, so that an outage starts from where the fleet was."""
        if not self.degraded and not self.pending:
            try:
                charged = await self.shared.charge(charge)
            except (RedisError, OSError) as exc:
                self._failed(exc)
            else:
                if charged:
                    await self.local.charge(charge)
                    self._journal(charge)
                return charged
        self.pending.append(charge)
        return await self.local.charge(charge)

    async def release(self, tenant: str, reservation: str) -> None:
        await self.local.release(tenant, reservation)
        if not self.degraded:
            try:
                await self.shared.release(tenant, reservation)
            except (RedisError, OSError) as exc:  # the reservation lapses by itself
                self._failed(exc)

    async def restart(self, state: ControlState) -> LedgerView:
        try:
            view = await self.shared.restart(state)
        except (RedisError, OSError) as exc:
            raise LedgerUnavailable(f"the shared ledger (Redis) is unreachable: {exc}") from None
        await self.local.restart(state)
        return view

    async def maintain(self) -> None:
        """Reconnect and replay while degraded; notice a restarted Redis and re-send the last seconds."""
        async with self.replaying:
            try:
                server = await self.shared.server_id()
                restarted, self.server = self.server is not None and server != self.server, server
                if not await self.shared.intact():
                    await self.shared.restore()
                if restarted or len(self.shared.wipes) > self.wipes_seen:
                    await self._resend_recent(restarted)
                while self.pending:  # charges taken meanwhile join the queue: replay until it is empty
                    await self._resend([self.pending[0]])
                    self.pending.pop(0)
            except (RedisError, OSError) as exc:
                self._failed(exc)
                return
            if self.degraded:
                log.warning("the shared ledger (Redis) is back; serving from it again")
            self.degraded = False

    def health(self) -> dict[str, Any]:
        return {
            "store": "redis",
            "degraded": self.degraded,
            "pending_charges": len(self.pending),
            "redis_restarts_seen": self.restarts,
            "ledger_wiped_at": self.shared.wipes[-1] if self.shared.wipes else None,
        }

    async def _resend_recent(self, restarted: bool) -> None:
        """Re-send the charges of the last seconds: all of them after a restart that kept the data (the tail of
        an append-only file synced every second may be gone), or, when the ledger was lost and restored, those
        after the state it was restored from (the rest are in it). The ids make either exact."""
        wiped = len(self.shared.wipes) > self.wipes_seen
        self.wipes_seen = len(self.shared.wipes)
        self.restarts += restarted
        after = self.shared.restored_from if wiped else float("-inf")
        recent = [charge for at, charge in self._recent() if at > after]
        log.warning(
            "Redis %s: re-sending the last %d charges", "lost the ledger" if wiped else "restarted", len(recent)
        )
        await self._resend(recent)

    async def _resend(self, charges: Any) -> None:
        for charge in charges:
            if await self.shared.charge(charge):
                self._journal(charge)

    def _journal(self, charge: Charge) -> None:
        self.journal.append((time.monotonic(), charge))

    def _recent(self) -> list[tuple[float, Charge]]:
        horizon = time.monotonic() - _JOURNAL_SECONDS
        while self.journal and self.journal[0][0] < horizon:
            self.journal.popleft()
        return list(self.journal)

    def _failed(self, exc: Exception) -> None:
        if not self.degraded:
            log.warning(
                "the shared ledger (Redis) is unreachable (%s); %s",
                exc,
                "serving from a local copy" if self.fail_open else "refusing new queries",
            )
        self.degraded = True
