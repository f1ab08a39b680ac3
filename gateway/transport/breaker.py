"""``circuit_breaker: {failures: 5, reset_after: 30}``: one breaker per upstream target.

Closed: requests flow; each failure (connection error, timeout, 5xx) adds one,
any success resets the count. ``failures`` in a row open the breaker: requests
get 503 ``upstream_unavailable`` at once, with ``Retry-After``, and the target
is not touched. After ``reset_after`` seconds one probe is let through (across
all workers, when the state is in Redis); its success closes the breaker, its
failure opens it again. With several targets an open one is simply passed over.

State lives in this process (``memory://``) or in Redis, so every worker and
gateway sees the same breaker. If Redis cannot be reached the breaker fails
open (lets requests through): the upstream, not the store, decides then.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from ..config import BreakerConfig
from ..storage import BACKEND_ERRORS, redis_connection

log = logging.getLogger("gateway.breaker")
REDIS_PREFIX = "gateway:breaker:"


class MemoryBreakerState:
    """Breaker state for one process."""

    def __init__(self, clock: Callable[[], float] = time.time):
        """:param clock: seconds now (tests drive it by hand)."""
        self.clock = clock
        self._lock = threading.Lock()
        self._failures: dict[str, int] = {}
        self._open_until: dict[str, float] = {}
        self._probing: dict[str, float] = {}

    def check(self, key: str, reset_after: float) -> tuple[float, bool]:
        """(0 if a request may go now, else seconds until it may; whether a
        success would have anything to reset)."""
        with self._lock:
            open_until = self._open_until.get(key)
            if open_until is None:
                return 0.0, key in self._failures
            now = self.clock()
            if now < open_until:
                return open_until - now, True
            if self._probing.get(key, 0) > now:  # someone else is probing
                return max(1.0, reset_after), True
            self._probing[key] = now + reset_after
            return 0.0, True

    def success(self, key: str) -> bool:
        """Record a success; True if that closed an open breaker."""
        with self._lock:
            self._failures.pop(key, None)
            self._probing.pop(key, None)
            return self._open_until.pop(key, None) is not None

    def failure(self, key: str, threshold: int, reset_after: float) -> bool:
        """Record a failure; True if that opened the breaker."""
        with self._lock:
            self._probing.pop(key, None)
            count = self._failures.get(key, 0) + 1
            self._failures[key] = count
            if count >= threshold or key in self._open_until:
                was_open = key in self._open_until
                self._open_until[key] = self.clock() + reset_after
                return not was_open
            return False


class RedisBreakerState:
    """Breaker state in Redis: the same breaker for every worker and gateway."""

    def __init__(self, connection, clock: Callable[[], float] = time.time):
        """:param connection: ``f() -> client`` (gateway/storage.py: redis_connection).
        :param clock: seconds now, when an open breaker's time ends (the half-open probe's
            claim expires by Redis's own clock)."""
        self.connection = connection
        self.clock = clock

    def check(self, key: str, reset_after: float) -> tuple[float, bool]:
        base = _base(key)
        open_until, failures = self.connection().mget(base + ":open", base + ":failures")
        if open_until is None:
            return 0.0, failures is not None
        remaining = float(open_until) - self.clock()
        if remaining > 0:
            return remaining, True
        # half-open: one probe for everyone, elected by SET NX
        if self.connection().set(base + ":probe", "1", nx=True, px=int(reset_after * 1000)):
            return 0.0, True
        return max(1.0, reset_after), True

    def success(self, key: str) -> bool:
        base = _base(key)
        pipe = self.connection().pipeline()
        pipe.delete(base + ":open")
        pipe.delete(base + ":failures", base + ":probe")
        closed, _ = pipe.execute()
        return bool(closed)

    def failure(self, key: str, threshold: int, reset_after: float) -> bool:
        base = _base(key)
        ttl_ms = int(reset_after * 1000) * 10  # forget stale counts eventually
        pipe = self.connection().pipeline()
        pipe.incr(base + ":failures")
        pipe.pexpire(base + ":failures", ttl_ms)
        pipe.exists(base + ":open")
        pipe.delete(base + ":probe")
        count, _, was_open, _ = pipe.execute()
        if count >= threshold or was_open:
            self.connection().set(base + ":open", repr(self.clock() + reset_after), px=ttl_ms)
            return not was_open
        return False


def _base(key: str) -> str:
    """A breaker's keys share one hash tag: one slot on a Redis Cluster (MGET, pipelines)."""
    return f"{REDIS_PREFIX}{{{key}}}"


class CircuitBreaker:
    """The breaker of one target. ``allow()`` before a request, ``record()`` after."""

    def __init__(self, config: BreakerConfig, state, service: str, target: str,
                 on_change=None, on_storage_error=None):
        self.config = config
        self.state = state
        self.key = f"{service}:{target}"
        self.service, self.target = service, target
        self.on_change = on_change or (lambda breaker, is_open: None)
        self.on_storage_error = on_storage_error or (lambda exc: None)

    def allow(self) -> tuple[float, bool]:
        """(0 if a request may go to the target now, else seconds until it may;
        whether a success must be written back). One store round trip."""
        try:
            return self.state.check(self.key, self.config.reset_after)
        except BACKEND_ERRORS as exc:
            self._storage_failed(exc)
            return 0.0, False

    def record(self, ok: bool, dirty: bool) -> None:
        """Count the outcome; a success with nothing to reset costs nothing."""
        try:
            if ok:
                if dirty and self.state.success(self.key):
                    log.info("circuit closed for %s", self.key)
                    self.on_change(self, False)
            elif self.state.failure(self.key, self.config.failures, self.config.reset_after):
                log.warning("circuit opened for %s after %d failures",
                            self.key, self.config.failures)
                self.on_change(self, True)
        except BACKEND_ERRORS as exc:
            self._storage_failed(exc)

    def _storage_failed(self, exc: Exception) -> None:
        self.on_storage_error(exc)
        log.warning("breaker store unreachable, letting requests through: %s", exc)


def breaker_factory(service: str, config: BreakerConfig, storage,
                    on_change=None, on_storage_error=None,
                    clock: Callable[[], float] = time.time) -> Callable[[str], CircuitBreaker]:
    """``f(target_url) -> CircuitBreaker`` for a service, sharing one state store
    (Redis when ``storage`` is a Redis storage, else this process's memory).

    :param clock: seconds since the epoch, when an open breaker's time ends."""
    connection = redis_connection(storage)
    state = RedisBreakerState(connection, clock) if connection is not None \
        else MemoryBreakerState(clock)
    return lambda target: CircuitBreaker(config, state, service, target, on_change=on_change,
                                         on_storage_error=on_storage_error)
