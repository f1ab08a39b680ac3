"""Allowances: a consumer's quota per calendar period (``10000/month``, ``500/day``, UTC).

One counter per consumer and period, across every service of the consumer,
in ``storage:``. On Redis it is always counted in leases (:class:`~.lease.Leases`,
as ``quota: {mode: lease}`` counts rate limits, whatever ``quota.mode`` says):
never over-admitted across workers and hosts, with few round trips. On
``memory://`` it is an exact count in the process, as every memory counter.

The counter's key names the period (``2026-12`` or ``2026-12-05``), not the
allowance: a consumer moved to another plan keeps what it already used in the
period, and the next period starts from zero without anyone resetting it.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from limits.storage import RedisStorage, Storage

from ..config.plans import PERIODS, Allowance
from ..usage import ANONYMOUS
from .lease import Leases

#: Seconds a period's counter outlives the period (a clock a little behind still finds it).
KEPT_AFTER = 3600


def period_of(now: float, period: str) -> tuple[datetime, datetime]:
    """The calendar period (UTC) holding ``now``: its start and its end."""
    moment = datetime.fromtimestamp(now, UTC)
    if period == "day":
        start = moment.replace(hour=0, minute=0, second=0, microsecond=0)
        end = datetime.fromtimestamp(start.timestamp() + 86400, UTC)
        return start, end
    start = moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = start.replace(year=start.year + 1, month=1) if start.month == 12 \
        else start.replace(month=start.month + 1)
    return start, end


def period_label(start: datetime, period: str) -> str:
    return start.strftime("%Y-%m-%d" if period == "day" else "%Y-%m")


@dataclass(frozen=True)
class Spent:
    """What one request did to its consumer's allowance (the ``X-Quota-*`` headers)."""

    admitted: bool
    limit: int
    #: what is left after this request (0 on a refusal)
    remaining: int
    #: seconds to the period's end
    reset: int


class MemoryCounters:
    """Exact counters of one process (``memory://``)."""

    def __init__(self) -> None:
        self._counts: dict[str, tuple[int, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str, amount: int, ends: float, now: float) -> tuple[bool, int]:
        with self._lock:
            count, _ = self._counts.get(key, (0, ends))
            if count + 1 > amount:
                return False, count
            self._counts[key] = (count + 1, ends)
            if len(self._counts) % 1024 == 0:  # periods that ended are forgotten
                self._counts = {k: v for k, v in self._counts.items() if v[1] > now}
            return True, count + 1

    def used(self, key: str) -> int:
        with self._lock:
            return self._counts.get(key, (0, 0.0))[0]


class LeasedCounters:
    """Counters in Redis, spent in leases (never over-admitted across workers and hosts)."""

    def __init__(self, storage: RedisStorage, clock: Callable[[], float]):
        self.storage = storage
        self.leases = Leases(storage, clock)

    def take(self, key: str, amount: int, ends: float, now: float) -> tuple[bool, int]:
        admitted, count, _ = self.leases.take(
            key, amount, math.ceil(ends - now) + KEPT_AFTER)
        return admitted, count

    def used(self, key: str) -> int:
        return int(self.storage.get(key) or 0)


class Allowances:
    """Every consumer's allowance counters, on the gateway's one storage."""

    def __init__(self, storage: Storage, clock: Callable[[], float] = time.time):
        self.clock = clock
        self.counters = LeasedCounters(storage, clock) if isinstance(storage, RedisStorage) \
            else MemoryCounters()

    def spend(self, consumer: str, allowance: Allowance) -> Spent:
        """Count one request of ``consumer``, or refuse it when the period's is spent."""
        now = self.clock()
        start, end = period_of(now, allowance.period)
        admitted, count = self.counters.take(self.key(consumer, allowance, start),
                                             allowance.amount, end.timestamp(), now)
        remaining = max(0, allowance.amount - count) if admitted else 0
        return Spent(admitted, allowance.amount, remaining, max(0, math.ceil(end.timestamp()
                                                                           - now)))

    def used(self, consumer: str, allowance: Allowance) -> tuple[int, datetime, int]:
        """(requests counted in the current period, its start, seconds to its end)."""
        now = self.clock()
        start, end = period_of(now, allowance.period)
        used = min(allowance.amount, self.counters.used(self.key(consumer, allowance, start)))
        return used, start, max(0, math.ceil(end.timestamp() - now))

    @staticmethod
    def key(consumer: str, allowance: Allowance, start: datetime) -> str:
        return f"gateway/allowance/{consumer}/{period_label(start, allowance.period)}"


class ServiceCounts:
    """Requests per consumer, service and calendar period (month and day), added at each
    usage flush (gateway/usage): what ``/_gateway/usage`` answers, on the shared storage
    (a Redis hash per consumer and period) or, without one, in the process."""

    def __init__(self, connection: Callable[[], Any] | None = None):
        """:param connection: ``f() -> the storage's Redis client`` (None: this process
            alone), as gateway/storage.py's ``redis_connection`` gives it."""
        self.connection = connection
        self._memory: dict[str, dict[str, int]] = {}
        self._ends: dict[str, float] = {}
        self._pruned_at = 1024
        self._lock = threading.Lock()

    def write(self, rows) -> None:
        """An outbox's ``write``: rows keyed (consumer, service, hour)."""
        added: dict[tuple[str, float], dict[str, int]] = {}
        for (consumer, service, hour), counts in rows.items():
            if consumer == ANONYMOUS:
                continue  # nobody can ask for them
            for period in PERIODS:
                start, end = period_of(hour, period)
                key = f"gateway/usage/{consumer}/{period_label(start, period)}"
                by_service = added.setdefault((key, end.timestamp()), {})
                by_service[service] = by_service.get(service, 0) + counts[0]
        if self.connection is None:
            with self._lock:
                for (key, ends), by_service in added.items():
                    kept = self._memory.setdefault(key, {})
                    for service, requests in by_service.items():
                        kept[service] = kept.get(service, 0) + requests
                    self._ends[key] = ends
                if len(self._memory) > self._pruned_at * 2:  # periods that ended go
                    now = time.time()
                    for key in [k for k, ends in self._ends.items() if ends < now]:
                        del self._memory[key], self._ends[key]
                    self._pruned_at = max(1024, len(self._memory))
            return
        pipeline = self.connection().pipeline(transaction=False)
        for (key, ends), by_service in added.items():
            for service, requests in by_service.items():
                pipeline.hincrby(key, service, requests)
            pipeline.expireat(key, int(ends) + KEPT_AFTER)
        pipeline.execute()

    def read(self, consumer: str, period: str, now: float) -> tuple[datetime, dict[str, int]]:
        """The period holding ``now``: its start, and the consumer's requests per service."""
        start, _ = period_of(now, period)
        key = f"gateway/usage/{consumer}/{period_label(start, period)}"
        if self.connection is None:
            with self._lock:
                return start, dict(self._memory.get(key, {}))
        return start, {name.decode() if isinstance(name, bytes) else name: int(value)
                       for name, value in self.connection().hgetall(key).items()}
