"""Idempotent requests: a chat request that carries an id (`request_id` in the body, or `X-Request-ID`) is
answered once per tenant and id.

An exact replay (same tenant, id and body) gets the stored reply, byte for byte, and draws no sample; the same
id with another body is a 409 `idempotency_key_reused`; a replay of a request still being answered waits for
its reply, or gets a 409 if none comes in time. Ids are scoped to the tenant (another tenant's id is simply a
new id) and stored hashed, so their length and content cost nothing. Replies are kept `keep` seconds, and only
up to `max_bytes` each: a larger one is remembered as answered, and its replay is a 409 rather than a second draw.
In Redis when the gateway has one (replicas see each other's replies); in the process otherwise, bounded.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal, Protocol

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from service.errors import GatewayError

ClaimState = Literal["new", "done", "busy", "conflict"]
_POLL = 0.05  # seconds between looks at a request still being answered


@dataclass(frozen=True)
class Claim:
    state: ClaimState
    reply: bytes | None = None
    """The stored reply of a `done` claim (None when it was too large to keep)."""


class Replies(Protocol):
    async def claim(self, key: str, fingerprint: str, seconds: float) -> Claim:
        """Take `key` for `seconds` (the time a request may run) unless it is taken or answered."""
        ...

    async def complete(self, key: str, fingerprint: str, reply: bytes | None) -> None:
        """Store the reply to `key` (None: answered, but too large to keep)."""
        ...

    async def release(self, key: str, fingerprint: str) -> None:
        """Give `key` back: its request failed and drew nothing, so it may be tried again."""
        ...


def request_key(tenant: str, request_id: str) -> str:
    return hashlib.sha256(f"{tenant}\0{request_id}".encode()).hexdigest()


def body_fingerprint(body: str) -> str:
    return hashlib.sha256(body.encode("utf-8", "surrogatepass")).hexdigest()


async def answer_once(
    replies: Replies, key: str, fingerprint: str, produce: Callable[[], Awaitable[bytes]], wait: float
) -> tuple[bytes, bool]:
    """The reply to a request with an id: produced now, or the stored one (True) for an exact replay."""
    deadline = time.monotonic() + wait
    claim = await replies.claim(key, fingerprint, wait + 30)
    while claim.state == "busy" and time.monotonic() < deadline:
        await asyncio.sleep(_POLL)
        claim = await replies.claim(key, fingerprint, wait + 30)
    if claim.state == "conflict":
        message = "this request id was used for another request; use a new id for a new request"
        raise GatewayError(409, message, "invalid_request_error", "idempotency_key_reused", "request_id")
    if claim.state == "busy":
        message = "a request with this id is still being answered; try again later"
        raise GatewayError(409, message, "invalid_request_error", "request_in_flight", "request_id")
    if claim.state == "done":
        if claim.reply is None:
            message = "this request was answered already, and its reply was too large to keep for replays"
            raise GatewayError(409, message, "invalid_request_error", "reply_not_kept", "request_id")
        return claim.reply, True
    try:
        reply = await produce()
    except BaseException:
        await replies.release(key, fingerprint)
        raise
    await replies.complete(key, fingerprint, reply)
    return reply, False


@dataclass
class _Entry:
    fingerprint: str
    reply: bytes | None
    done: bool
    until: float


class LocalReplies:
    """In the process: at most `entries` ids and `total_bytes` of replies, the oldest dropped first."""

    def __init__(self, keep: float, max_bytes: int, entries: int = 100_000, total_bytes: int = 256 * 2**20) -> None:
        self.keep, self.max_bytes, self.entries, self.total_bytes = keep, max_bytes, entries, total_bytes
        self.store: OrderedDict[str, _Entry] = OrderedDict()
        self.size = 0

    async def claim(self, key: str, fingerprint: str, seconds: float) -> Claim:
        now = time.monotonic()
        entry = self.store.get(key)
        if entry is not None and entry.until <= now:
            self._drop(key)
            entry = None
        if entry is None:
            self.store[key] = _Entry(fingerprint, None, False, now + seconds)
            self._bound()
            return Claim("new")
        if entry.fingerprint != fingerprint:
            return Claim("conflict")
        return Claim("done", entry.reply) if entry.done else Claim("busy")

    async def complete(self, key: str, fingerprint: str, reply: bytes | None) -> None:
        entry = self.store.get(key)
        if entry is None or entry.fingerprint != fingerprint:
            return
        kept = reply if reply is not None and len(reply) <= self.max_bytes else None
        self.size += len(kept or b"")
        self.store[key] = _Entry(fingerprint, kept, True, time.monotonic() + self.keep)
        self.store.move_to_end(key)
        self._bound()

    async def release(self, key: str, fingerprint: str) -> None:
        entry = self.store.get(key)
        if entry is not None and entry.fingerprint == fingerprint and not entry.done:
            self._drop(key)

    def _drop(self, key: str) -> None:
        entry = self.store.pop(key)
        self.size -= len(entry.reply or b"")

    def _bound(self) -> None:
        while len(self.store) > self.entries or self.size > self.total_bytes:
            self._drop(next(iter(self.store)))


# KEYS: the id's hash. ARGV: fingerprint, seconds. Returns {state, reply}.
_CLAIM = """
local state = redis.call('HGET', KEYS[1], 'state')
if not state then
  redis.call('HSET', KEYS[1], 'fp', ARGV[1], 'state', 'busy')
  redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[2])))
  return {'new', false}
end
if redis.call('HGET', KEYS[1], 'fp') ~= ARGV[1] then return {'conflict', false} end
if state == 'busy' then return {'busy', false} end
return {'done', redis.call('HGET', KEYS[1], 'reply')}
"""
# KEYS: the id's hash. ARGV: fingerprint, reply ('' when not kept), kept ('1' or '0'), seconds to keep
_COMPLETE = """
if redis.call('HGET', KEYS[1], 'fp') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'state', 'done')
if ARGV[3] == '1' then redis.call('HSET', KEYS[1], 'reply', ARGV[2]) end
redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[4])))
return 1
"""
_RELEASE = """
if redis.call('HGET', KEYS[1], 'fp') == ARGV[1] and redis.call('HGET', KEYS[1], 'state') == 'busy' then
  redis.call('DEL', KEYS[1])
end
return 0
"""


class RedisReplies:
    """In Redis, shared by replicas; while Redis is away, in the process (a replay that reaches another replica
    meanwhile is answered anew: its charge is still counted once)."""

    def __init__(self, client: aioredis.Redis, prefix: str, keep: float, max_bytes: int) -> None:
        self.prefix, self.keep, self.max_bytes = prefix, keep, max_bytes
        self.scripts = {
            name: client.register_script(text)
            for name, text in (("claim", _CLAIM), ("complete", _COMPLETE), ("release", _RELEASE))
        }
        self.local = LocalReplies(keep, max_bytes)

    async def claim(self, key: str, fingerprint: str, seconds: float) -> Claim:
        try:
            state, reply = await self.scripts["claim"](keys=[self._key(key)], args=[fingerprint, repr(seconds)])
        except (RedisError, OSError):
            return await self.local.claim(key, fingerprint, seconds)
        return Claim(state.decode(), reply or None)

    async def complete(self, key: str, fingerprint: str, reply: bytes | None) -> None:
        kept = reply is not None and len(reply) <= self.max_bytes
        args: list[str | bytes] = [fingerprint, (reply or b"") if kept else b"", "1" if kept else "0", repr(self.keep)]
        try:
            await self.scripts["complete"](keys=[self._key(key)], args=args)
        except (RedisError, OSError):
            await self.local.complete(key, fingerprint, reply)

    async def release(self, key: str, fingerprint: str) -> None:
        try:
            await self.scripts["release"](keys=[self._key(key)], args=[fingerprint])
        except (RedisError, OSError):
            await self.local.release(key, fingerprint)

    def _key(self, key: str) -> str:
        return f"{self.prefix}:reply:{key}"
