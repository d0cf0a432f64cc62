"""A circuit breaker per backend: after repeated failures, stop sending it traffic for a while, then probe.

A pure state machine over an injected clock, so the tests drive time instead of sleeping.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from time import monotonic
from typing import Literal

BreakerState = Literal["closed", "open", "half-open"]


@dataclass
class CircuitBreaker:
    """Opens after `threshold` consecutive failures; after `cooldown` seconds lets one probe through
    (half-open), which closes it on success or opens it again on failure."""

    threshold: int = 5
    cooldown: float = 5.0
    clock: Callable[[], float] = monotonic
    failures: int = 0
    opened_at: float | None = None
    probing: bool = field(default=False)

    @property
    def state(self) -> BreakerState:
        if self.opened_at is None:
            return "closed"
        return "half-open" if self.clock() - self.opened_at >= self.cooldown else "open"

    def allows(self) -> bool:
        """Whether a request may go to this backend now (in half-open state, only one at a time)."""
        state = self.state
        if state == "closed":
            return True
        if state == "half-open" and not self.probing:
            self.probing = True
            return True
        return False

    def succeeded(self) -> None:
        self.failures, self.opened_at, self.probing = 0, None, False

    def failed(self) -> None:
        self.failures += 1
        if self.probing or self.failures >= self.threshold:
            self.opened_at = self.clock()
        self.probing = False
