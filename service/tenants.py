"""API keys: who is calling, their lifetime sample quota, and whether they may change the fleet's target.

Keys are random tokens, so a plain SHA-256 of each is what is stored (a slow password hash buys nothing
against a 256-bit secret). The presented key's hash is compared with every stored hash in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from pathlib import Path

ANONYMOUS = "anonymous"


@dataclass(frozen=True)
class Tenant:
    name: str
    quota: int | None = None
    """Samples this tenant may spend in all (None: no limit); the tenants file calls it `budget`."""
    admin: bool = False


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
        """Tenants from a JSON file of `{"tenant", "key_sha256", "budget"}` objects (see `apportion key`)."""
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
            try:
                digest, name, quota = str(entry["key_sha256"]).lower(), str(entry["tenant"]), entry.get("budget")
            except (KeyError, TypeError):
                raise TenantFileError(f"{path}: entry {index} needs 'tenant' and 'key_sha256'") from None
            if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
                raise TenantFileError(f"{path}: entry {index}: key_sha256 is not a SHA-256 hex digest")
            if quota is not None and (not isinstance(quota, int) or isinstance(quota, bool) or quota < 0):
                raise TenantFileError(f"{path}: entry {index}: budget must be a whole number of samples or null")
            tenants[digest] = Tenant(name, quota)
        return cls(tenants, admin_hash)

    def by_name(self) -> dict[str, Tenant]:
        return {tenant.name: tenant for tenant in self.by_hash.values()}

    def quotas(self) -> dict[str, int | None]:
        return {name: tenant.quota for name, tenant in self.by_name().items()}

    def identify(self, authorization: str | None) -> Tenant | None:
        """The tenant a `Bearer` header names; the anonymous tenant on an open API; None when refused."""
        key = (authorization or "").removeprefix("Bearer ").strip()
        if key:
            digest = key_hash(key)
            found = None
            for stored, tenant in self.by_hash.items():  # no early exit: every comparison takes as long
                if hmac.compare_digest(stored, digest):
                    found = tenant
            if found is not None:
                return found
        return _ANONYMOUS if self.open else None
