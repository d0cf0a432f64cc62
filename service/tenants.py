"""API keys: who is calling, what each tenant may spend and ask for, and who may change the fleet's target.

Keys are random tokens, so a plain SHA-256 of each is what is stored (a slow password hash buys nothing
against a 256-bit secret). The presented key's hash is compared with every stored hash in constant time.

A tenants-file entry: `{"tenant", "key_sha256", "budget"?, "budget_period"?, "max_budget_hint"?, "max_in_flight"?}`:
- `budget`: what the tenant may spend, in the gateway's cost units (null: no limit): in all, or
- `budget_period`: per calendar day or month (UTC), `"daily"` or `"monthly"`: an allowance that starts again
  each period, like LiteLLM's `budget_duration`;
- `max_budget_hint`: the highest per-query `budget` hint it may send (default: the fleet target);
- `max_in_flight`: its requests in flight at once, per gateway process (default: `--max-in-flight-per-tenant`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

Period = Literal["daily", "monthly"]
_PERIOD_FORMAT = {"daily": "%Y-%m-%d", "monthly": "%Y-%m"}

ANONYMOUS = "anonymous"


@dataclass(frozen=True)
class Tenant:
    name: str
    quota: float | None = None
    """What this tenant may spend, in cost units (None: no limit); the tenants file calls it `budget`."""
    admin: bool = False
    max_hint: float | None = None
    """The highest per-query budget hint honoured (None: the fleet target)."""
    max_in_flight: int | None = None
    """Requests in flight at once (None: the gateway's default)."""
    period: Period | None = None
    """The quota's period (None: a lifetime quota)."""

    def period_key(self, now: float | None = None) -> str | None:
        """The quota period `now` falls in ("2026-12-02", "2026-12"; UTC), None for a lifetime quota."""
        if self.period is None:
            return None
        return time.strftime(_PERIOD_FORMAT[self.period], time.gmtime(now))


_ANONYMOUS = Tenant(ANONYMOUS)


class TenantFileError(ValueError):
    """A tenants file that cannot be used; the message names the file and the problem."""


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_key() -> str:
    return "apk-" + secrets.token_urlsafe(32)


class Tenants:
    """Known tenants by key hash. Without any, the API is open and every caller is the anonymous tenant."""

    def __init__(self, tenants: dict[str, Tenant], admin_hash: str | None = None) -> None:
        self.by_hash = dict(tenants)
        if admin_hash:
            self.by_hash[admin_hash] = Tenant("admin", None, admin=True)
        self.open = not tenants

    @classmethod
    def read(cls, path: Path | None, admin_key: str | None) -> Tenants:
        """Tenants from a JSON list of entries (see the module's docstring and `apportion key`)."""
        admin_hash = key_hash(admin_key) if admin_key else None
        if path is None:
            return cls({}, admin_hash)
        try:
            entries = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise TenantFileError(f"{path}: cannot read tenants ({exc})") from None
        if not isinstance(entries, list):
            raise TenantFileError(f"{path}: expected a JSON list of tenants")
        tenants: dict[str, Tenant] = {}
        for index, entry in enumerate(entries):
            where = f"{path}: entry {index}"
            try:
                tenant, digest = _entry(entry)
            except ValueError as exc:
                raise TenantFileError(f"{where}: {exc}") from None
            if digest in tenants:
                raise TenantFileError(f"{where}: the same key as tenant {tenants[digest].name!r}")
            tenants[digest] = tenant
        return cls(tenants, admin_hash)

    def by_name(self) -> dict[str, Tenant]:
        return {tenant.name: tenant for tenant in self.by_hash.values()}

    def identify(self, authorization: str | None) -> Tenant | None:
        """The tenant a `Bearer` header names (the scheme in any case); the anonymous tenant on an open API; None
        when refused."""
        scheme, _, key = (authorization or "").strip().partition(" ")
        key = key.strip() if scheme.lower() == "bearer" else ""
        if key:
            digest = key_hash(key)
            found = None
            for stored, tenant in self.by_hash.items():  # no early exit: every comparison takes as long
                if hmac.compare_digest(stored, digest):
                    found = tenant
            if found is not None:
                return found
        return _ANONYMOUS if self.open else None


def _entry(entry: Any) -> tuple[Tenant, str]:
    if not isinstance(entry, dict) or "tenant" not in entry or "key_sha256" not in entry:
        raise ValueError("needs 'tenant' and 'key_sha256'")
    digest, name = str(entry["key_sha256"]).lower(), entry["tenant"]
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise ValueError("key_sha256 is not a SHA-256 hex digest")
    if not isinstance(name, str) or not name or len(name) > 64 or not name.isprintable():
        raise ValueError("tenant must be a printable name of 1 to 64 characters")
    unknown = set(entry) - {"tenant", "key_sha256", "budget", "budget_period", "max_budget_hint", "max_in_flight"}
    if unknown:
        raise ValueError(f"unknown field {sorted(unknown)[0]!r}")
    quota, hint, in_flight = entry.get("budget"), entry.get("max_budget_hint"), entry.get("max_in_flight")
    period = entry.get("budget_period")
    if quota is not None and not (_number(quota) and quota >= 0):
        raise ValueError("budget must be a number of cost units (0 or more) or null")
    if period is not None and (period not in _PERIOD_FORMAT or quota is None):
        raise ValueError('budget_period must be "daily" or "monthly" (or null), and needs a budget')
    if hint is not None and not (_number(hint) and hint > 0):
        raise ValueError("max_budget_hint must be a positive number or null")
    if in_flight is not None and not _whole(in_flight, 1):
        raise ValueError("max_in_flight must be a whole number (1 or more) or null")
    quota = None if quota is None else float(quota)
    tenant = Tenant(name, quota, max_hint=None if hint is None else float(hint), max_in_flight=in_flight, period=period)
    return tenant, digest


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _whole(value: Any, least: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= least
