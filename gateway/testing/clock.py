"""``gateway_clock``: the clock a gateway under test reads, moved by hand.

Wall time and monotonic time move together, and only when the test says so
(:meth:`MovedClock.advance`): a quota's window, a cached answer's TTL, a breaker's
cool-down, a key's expiry and the month of an allowance all pass without a sleep.
Timers that run in the background (health-check probes) are run when their time
comes within an advance, by the callbacks registered with :meth:`MovedClock.on_advance`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class MovedClock:
    """A :class:`gateway.clock.Clock` that stands still until :meth:`advance` moves it."""

    def __init__(self, start: float | None = None):
        """:param start: seconds since the epoch to start at (default: now)."""
        self._time = time.time() if start is None else start
        self._monotonic = 1_000_000.0
        self._lock = threading.Lock()
        self._listeners: list[Callable[[], None]] = []

    def time(self) -> float:
        """Seconds since the epoch, as the gateway under test reads them."""
        return self._time

    def __call__(self) -> float:
        """:meth:`time`: a part that takes ``clock: Callable[[], float]`` takes the clock."""
        return self._time

    def monotonic(self) -> float:
        """Seconds for intervals, moving with :meth:`time`."""
        return self._monotonic

    def advance(self, seconds: float) -> None:
        """Move both clocks ``seconds`` forward, then run what came due meanwhile."""
        if seconds < 0:
            raise ValueError("a clock moves forward only: advance(seconds >= 0)")
        with self._lock:
            self._time += seconds
            self._monotonic += seconds
        for listener in list(self._listeners):
            listener()

    def on_advance(self, listener: Callable[[], None]) -> None:
        """Call ``listener()`` after every advance (a timer checks what is due)."""
        self._listeners.append(listener)
