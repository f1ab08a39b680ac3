"""The figures of the status page, over the last minute, from the Prometheus metrics.

Under gunicorn the metrics are every worker's added up (the multiprocess
registry /metrics serves), so whichever worker answers sees the whole
gateway. Counters only grow: a rate over the last minute is the difference
between now and a reading taken up to a minute ago. Each worker keeps its
own readings (:class:`Window`), taken whenever it answers the status page;
the page asks every few seconds, so after a minute the window is a full
minute; until a second reading exists the rates are ``None``.
"""

from __future__ import annotations

import collections
import math
import threading
import time
from dataclasses import dataclass, field

#: How far back the figures look, in seconds.
WINDOW = 60.0


@dataclass
class Reading:
    """The cumulative counters at one moment, keyed by their labels."""

    taken: float
    requests: dict[tuple[str, str], float] = field(default_factory=dict)   # (route, status class)
    buckets: dict[str, dict[float, float]] = field(default_factory=dict)   # route -> le -> count
    rate_limited: dict[str, float] = field(default_factory=dict)
    cache: dict[tuple[str, str], float] = field(default_factory=dict)      # (route, result)
    calls: dict[tuple[str, str, str], float] = field(default_factory=dict)  # aggregate, call, result
    circuit_open: dict[tuple[str, str], bool] = field(default_factory=dict)  # (service, target)
    websockets: dict[str, float] = field(default_factory=dict)  # service -> open now


def read(registry) -> Reading:
    """One reading of the gateway's metrics from a prometheus_client registry."""
    reading = Reading(taken=time.monotonic())
    for family in registry.collect():
        for sample in family.samples:
            labels, value = sample.labels, sample.value
            if sample.name == "gateway_requests_total":
                key = (labels["service"], labels["status"][0] + "xx")
                reading.requests[key] = reading.requests.get(key, 0.0) + value
            elif sample.name == "gateway_request_duration_seconds_bucket":
                le = float(labels["le"])
                route = reading.buckets.setdefault(labels["service"], {})
                route[le] = route.get(le, 0.0) + value
            elif sample.name == "gateway_rate_limited_total":
                reading.rate_limited[labels["service"]] = value
            elif sample.name == "gateway_cache_total":
                reading.cache[(labels["service"], labels["result"])] = value
            elif sample.name == "gateway_aggregate_calls_total":
                reading.calls[(labels["aggregate"], labels["call"], labels["result"])] = value
            elif sample.name == "gateway_circuit_open":
                reading.circuit_open[(labels["service"], labels["target"])] = value >= 1
            elif sample.name == "gateway_websocket_connections":
                reading.websockets[labels["service"]] = value
    return reading


class Window:
    """This worker's readings of the last minute."""

    def __init__(self):
        self._readings: collections.deque[Reading] = collections.deque()
        self._lock = threading.Lock()

    def add(self, reading: Reading) -> Reading | None:
        """Keep ``reading``; return the one to compare it with: the oldest within
        the window, or the last one before it when none is that recent (the
        figures then cover the time since that reading)."""
        with self._lock:
            while len(self._readings) > 1 and reading.taken - self._readings[1].taken >= WINDOW:
                self._readings.popleft()
            oldest = self._readings[0] if self._readings else None
            self._readings.append(reading)
            return oldest


@dataclass
class RouteFigures:
    requests_per_second: float | None
    error_percent: float | None
    p50_ms: float | None
    p99_ms: float | None
    quota_rejections: float | None
    cache_hit_ratio: float | None
    total_requests: int


def route_figures(route: str, now: Reading, then: Reading | None) -> RouteFigures:
    """One route's figures between ``then`` and ``now`` (rates None without ``then``)."""
    def total(reading: Reading | None, status: str | None = None) -> float:
        if reading is None:
            return 0.0
        return sum(v for (r, s), v in reading.requests.items()
                   if r == route and (status is None or s == status))

    lifetime = int(total(now))
    if then is None or now.taken <= then.taken:
        return RouteFigures(None, None, None, None, None, None, lifetime)
    seconds = now.taken - then.taken
    count = total(now) - total(then)
    errors = total(now, "5xx") - total(then, "5xx")
    buckets = {le: c - (then.buckets.get(route, {}).get(le, 0.0))
               for le, c in now.buckets.get(route, {}).items()}
    def cached(result: str) -> float:
        return now.cache.get((route, result), 0.0) - then.cache.get((route, result), 0.0)
    # hits over lookups that could hit: a BYPASS (client no-cache, refused request) is neither
    hits = cached("hit")
    looked = hits + cached("miss")
    return RouteFigures(
        requests_per_second=round(count / seconds, 2),
        error_percent=round(100.0 * errors / count, 1) if count else None,
        p50_ms=_quantile(0.5, buckets), p99_ms=_quantile(0.99, buckets),
        quota_rejections=now.rate_limited.get(route, 0.0) - then.rate_limited.get(route, 0.0),
        cache_hit_ratio=round(hits / looked, 3) if looked else None,
        total_requests=lifetime)


def _quantile(q: float, buckets: dict[float, float]) -> float | None:
    """Prometheus's histogram_quantile: linear within the bucket, in milliseconds."""
    ordered = sorted(buckets.items())
    if not ordered or ordered[-1][1] <= 0:
        return None
    rank = q * ordered[-1][1]
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in ordered:
        if count >= rank:
            if math.isinf(bound):
                return round(lower_bound * 1000.0, 1)  # beyond the last finite bucket
            share = (rank - lower_count) / (count - lower_count) if count > lower_count else 1.0
            return round((lower_bound + (bound - lower_bound) * share) * 1000.0, 1)
        lower_bound, lower_count = bound, count
    return None
