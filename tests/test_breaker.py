"""The circuit breaker, driven by a clock the test moves."""

from __future__ import annotations

from service.breaker import CircuitBreaker


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_opens_after_repeated_failures_then_probes_once_and_recovers() -> None:
    clock = Clock()
    breaker = CircuitBreaker(threshold=3, cooldown=5.0, clock=clock)
    for _ in range(2):
        breaker.failed()
    assert breaker.state == "closed" and breaker.allows()
    breaker.failed()
    assert breaker.state == "open" and not breaker.allows()
    clock.now = 5.0
    assert breaker.state == "half-open"
    assert breaker.allows() and not breaker.allows(), "one probe at a time"
    breaker.succeeded()
    assert breaker.state == "closed" and breaker.allows()


def test_a_failed_probe_opens_it_again() -> None:
    clock = Clock()
    breaker = CircuitBreaker(threshold=1, cooldown=2.0, clock=clock)
    breaker.failed()
    clock.now = 2.5
    assert breaker.allows()
    breaker.failed()
    assert breaker.state == "open"
    clock.now = 4.0
    assert breaker.state == "open"
    clock.now = 4.6
    assert breaker.state == "half-open"
