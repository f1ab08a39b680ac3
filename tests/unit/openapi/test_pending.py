"""The backoff between fetches of a missing OpenAPI document, on a moved clock."""

from __future__ import annotations

import pytest

from gateway.openapi.pending import MAX_DELAY, Backoff
from gateway.testing import MovedClock

pytestmark = pytest.mark.unit


def test_tries_again_after_1_s_then_doubles_up_to_30_s():
    clock = MovedClock(100.0)
    backoff = Backoff(clock)
    assert backoff.seconds_left() == 1.0 and backoff.retry_after() == 1
    delays = []
    for _ in range(8):
        backoff.failed()
        delays.append(backoff.seconds_left())
    assert delays == [2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0, 30.0]
    assert MAX_DELAY == 30.0


def test_retry_after_is_whole_seconds_and_at_least_one():
    clock = MovedClock(100.0)
    backoff = Backoff(clock)
    backoff.failed()  # due in 2 s
    clock.advance(0.5)
    assert backoff.retry_after() == 2  # 1.5 s, rounded up
    clock.advance(1.49)
    assert backoff.retry_after() == 1
    clock.advance(5)  # overdue: still tells the client to wait a second
    assert backoff.seconds_left() == 0.0 and backoff.retry_after() == 1
