"""The circuit breaker on an injected clock: no sleeps, no network."""

from __future__ import annotations

from gateway.config import BreakerConfig
from gateway.testing import MovedClock
from gateway.transport.breaker import CircuitBreaker, MemoryBreakerState


def breaker(clock: MovedClock, failures: int = 3, reset_after: float = 30.0, changes=None):
    state = MemoryBreakerState(clock=clock)
    on_change = (lambda b, is_open: changes.append(is_open)) if changes is not None else None
    return CircuitBreaker(BreakerConfig(failures=failures, reset_after=reset_after), state,
                          "orders", "http://10.0.0.5", on_change=on_change)


def test_it_opens_after_the_failures_in_a_row_and_says_for_how_long():
    clock, changes = MovedClock(), []
    b = breaker(clock, changes=changes)
    for _ in range(2):
        b.record(False, True)
    assert b.allow()[0] == 0.0
    b.record(False, True)
    assert changes == [True]
    clock.advance(10)
    wait, _ = b.allow()
    assert wait == 20.0


def test_a_success_resets_the_count():
    clock = MovedClock()
    b = breaker(clock)
    b.record(False, True)
    b.record(False, True)
    b.record(True, True)
    b.record(False, True)
    b.record(False, True)
    assert b.allow()[0] == 0.0


def test_after_reset_after_one_probe_goes_and_its_success_closes():
    clock, changes = MovedClock(), []
    b = breaker(clock, changes=changes)
    for _ in range(3):
        b.record(False, True)
    clock.advance(30)
    assert b.allow() == (0.0, True)          # the probe
    assert b.allow()[0] >= 1.0               # everyone else waits for it
    b.record(True, True)
    assert changes == [True, False]
    assert b.allow()[0] == 0.0


def test_a_failed_probe_opens_it_again_for_reset_after():
    clock = MovedClock()
    b = breaker(clock)
    for _ in range(3):
        b.record(False, True)
    clock.advance(30)
    assert b.allow()[0] == 0.0
    b.record(False, True)
    assert b.allow()[0] == 30.0


def test_a_success_with_nothing_to_reset_writes_nothing():
    clock = MovedClock()
    b = breaker(clock)
    assert b.allow() == (0.0, False)          # closed and clean: nothing to write back
