"""The one clock every timer of a gateway reads: quotas, allowances, cache TTLs, breaker
cool-downs, key and token expiry, health-check intervals, document re-fetches and usage
hours.

:func:`gateway.app.create_app` takes a :class:`Clock` (default :data:`SYSTEM`) and hands
its ``time`` (wall seconds, for what is compared with timestamps) or ``monotonic`` (for
intervals) to each part, so that a test can move time by hand instead of sleeping
(``gateway.testing``'s ``gateway_clock``).
"""

from __future__ import annotations

from time import monotonic as _monotonic
from time import time as _time
from typing import Protocol


class Clock(Protocol):
    """Wall time and monotonic time, read together from one source."""

    def time(self) -> float:
        """Seconds since the epoch (as :func:`time.time`)."""
        ...

    def monotonic(self) -> float:
        """Seconds from an arbitrary start that never goes back (as :func:`time.monotonic`)."""
        ...


class SystemClock:
    """The machine's clocks."""

    time = staticmethod(_time)
    monotonic = staticmethod(_monotonic)


#: The clock of every gateway that is not given another.
SYSTEM: Clock = SystemClock()
