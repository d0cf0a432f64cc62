"""The fleet's ledger and the controller whose arithmetic every ledger runs (see `base` for the stores)."""

from service.ledger.base import Charge, Hold, Ledger, LedgerUnavailable, LedgerView, ModelSpend, Spend, StoreKind
from service.ledger.control import BudgetController, ControlState, UnreachableTarget
from service.ledger.fallback import FallbackLedger
from service.ledger.local import LocalLedger
from service.ledger.redis_store import RedisLedger, redis_client

__all__ = [
    "BudgetController",
    "Charge",
    "ControlState",
    "FallbackLedger",
    "Hold",
    "Ledger",
    "LedgerUnavailable",
    "LedgerView",
    "LocalLedger",
    "ModelSpend",
    "RedisLedger",
    "Spend",
    "StoreKind",
    "UnreachableTarget",
    "redis_client",
]
