"""``gateway_clock``: the clock a gateway under test reads, moved by hand.

Wall time and monotonic time move together, and only when the test says so
(:meth:`MovedClock.advance`): a quota's window, a cached answer's TTL, a breaker's
cool-down, a key's expiry and the month of an allowance all pass without a sleep.
Timers that run in the background (health-check probes) run at their time within
an advance, in order: each is registered with :meth:`MovedClock.on_advance` and says
when it is due next.
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
        #: each timer and when it is next due (monotonic seconds)
        self._timers: dict[Callable[[], float | None], float | None] = {}

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
        """Move both clocks ``seconds`` forward. Every timer due in the span runs at its
        time, in order (a span of three probe intervals runs three rounds)."""
        if seconds < 0:
            raise ValueError("a clock moves forward only: advance(seconds >= 0)")
        end = self._monotonic + seconds
        for _ in range(1_000_000):  # (a timer that keeps itself due cannot hang a test)
            due = [(when, listener) for listener, when in self._timers.items()
                   if when is not None and when <= end]
            if not due:
                break
            when = min(w for w, _ in due)
            self._move(max(0.0, when - self._monotonic))
            for listener, timer_due in list(self._timers.items()):
                if timer_due is not None and timer_due <= self._monotonic:
                    self._timers[listener] = listener()
        self._move(end - self._monotonic)

    def on_advance(self, listener: Callable[[], float | None],
                   due: float | None = None) -> None:
        """A timer: ``listener()`` runs when the clock reaches ``due`` (monotonic) and
        returns when it is due next (None: not until told)."""
        self._timers[listener] = due

    def _move(self, seconds: float) -> None:
        with self._lock:
            self._time += seconds
            self._monotonic += seconds
