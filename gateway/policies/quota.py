"""Quotas: ``rate_limit`` counted with ``limits``, on the storage named by ``storage``.

A route's ``rate_limit`` is shared by all of the route's paths and counted per
caller (the consumer, else the client address); a consumer's own
``rate_limit`` counts across every route on top of that. Over quota is 429
``rate_limited`` with ``Retry-After``; every response of a limited route
carries ``RateLimit-Limit``, ``-Remaining`` and ``-Reset`` (seconds) for the
window closest to running out. Then a consumer's allowance per calendar
period (:mod:`.allowance`) is spent: 429 ``quota_exhausted`` when it is gone,
and ``X-Quota-Limit``, ``-Remaining`` and ``-Reset`` on every answer.

The counting is the ``limits`` library's, the one Flask-Limiter is built on,
used through its public API: a rate limit string parsed once per route into
``RateLimitItem``s, one strategy (fixed window, moving window, sliding window
counter) on the gateway's one storage, and on Redis the fixed window's
one-round-trip (:mod:`.onetrip`) or leasing (:mod:`.lease`) variants. The
limits are known per route and consumer once the app is built: a request only
hits them, shortest window first, and stops at the first that refuses it
(as Flask-Limiter does).

When the store cannot be reached, ``on_storage_error`` decides: ``allow``
passes the request (logged and counted), ``deny`` answers 503. redis-py
reconnects on the next call, so the gateway recovers by itself.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from flask import Response
from limits import RateLimitItem, parse_many
from limits.storage import RedisStorage, Storage
from limits.strategies import STRATEGIES, RateLimiter

from .. import state as request_state
from ..config import GatewayConfig
from ..errors import GatewayError
from ..keyring import Directory
from ..storage import BACKEND_ERRORS
from . import Policy
from .allowance import Allowances
from .lease import LeasedFixedWindow
from .onetrip import OneTripFixedWindow

log = logging.getLogger("gateway.quota")

#: The first part of every quota's storage key (as Flask-Limiter's ``key_prefix`` made it:
#: the windows counted before keep counting).
KEY_PREFIX = "gateway"


def strategy_for(config: GatewayConfig, storage: Storage,
                 clock: Callable[[], float] = time.time) -> RateLimiter:
    """The ``limits`` strategy that counts every quota of the gateway."""
    name = config.rate_limit_strategy
    if name == "fixed-window" and isinstance(storage, RedisStorage):
        return LeasedFixedWindow(storage, clock) if config.quota.mode == "lease" \
            else OneTripFixedWindow(storage, clock)
    return STRATEGIES[name](storage)


@dataclass(frozen=True)
class Limit:
    """One window a request is counted in: the item, and the scope it counts under."""

    item: RateLimitItem
    scope: str


class Quotas:
    """The gateway's one strategy, its consumers' own limits, and what a store failure does."""

    def __init__(self, config: GatewayConfig, storage: Storage,
                 on_storage_error: Callable[[Exception], None] | None = None,
                 on_limited: Callable[[], None] | None = None,
                 clock: Callable[[], float] = time.time, directory: Directory | None = None):
        """:param on_storage_error: ``f(exception)`` when the store cannot be reached.
        :param on_limited: called for each request refused 429 (the metric).
        :param clock: seconds now, for ``RateLimit-Reset`` and ``Retry-After``.
        :param directory: the consumers, with their own limits (default: gateway.yaml's)."""
        self.strategy = strategy_for(config, storage, clock)
        self.directory = directory if directory is not None else Directory.of(config)
        #: a rate limit's text -> its windows (consumers change at runtime; texts repeat)
        self._windows: dict[str, tuple[Limit, ...]] = {}
        self.deny_on_storage_error = config.on_storage_error == "deny"
        self.on_storage_error = on_storage_error or (lambda exc: None)
        self.on_limited = on_limited or (lambda: None)
        self.clock = clock
        self.allowances = Allowances(storage, clock)

    def of_consumer(self, name: str | None) -> tuple[Limit, ...]:
        """The consumer's own windows (none for an unknown name, e.g. a token's subject)."""
        consumer = self.directory.consumer(name) if name else None
        if consumer is None or not consumer.rate_limit:
            return ()
        windows = self._windows.get(consumer.rate_limit)
        if windows is None:
            windows = self._windows[consumer.rate_limit] = parsed(consumer.rate_limit, "global")
        return windows

    def seconds_to_reset(self, limit: Limit, caller: str) -> int:
        reset, _ = self.strategy.get_window_stats(limit.item, KEY_PREFIX, caller, limit.scope)
        return max(0, math.ceil(reset - self.clock()))


def parsed(rate_limit: str, scope: str) -> tuple[Limit, ...]:
    """A rate limit string's windows, shortest first (the order they are hit in)."""
    return tuple(sorted((Limit(item, scope) for item in parse_many(rate_limit)),
                        key=lambda limit: limit.item.get_expiry()))


class Quota(Policy):
    """Counts the request in its route's and its consumer's windows; writes ``RateLimit-*``
    for the tightest window on every response of the route."""

    step = "quota"

    def __init__(self, quotas: Quotas, route: str, rate_limit: str | None):
        self.quotas = quotas
        self.own = parsed(rate_limit, f"route:{route}") if rate_limit else ()

    def limits_for(self, consumer: str | None) -> tuple[Limit, ...]:
        extra = self.quotas.of_consumer(consumer)
        if not extra:
            return self.own
        return tuple(sorted((*self.own, *extra), key=lambda limit: limit.item.get_expiry()))

    def before(self):
        state = request_state.current()
        caller = state.caller()
        limits = self.limits_for(state.consumer)
        hit = self.quotas.strategy.hit
        state.quota_checked = True
        try:
            for limit in limits:
                if not hit(limit.item, KEY_PREFIX, caller, limit.scope):
                    self.refuse(limit, caller)
            consumer = self.quotas.directory.consumer(state.consumer) if state.consumer \
                else None
            if consumer is not None and consumer.quota is not None:
                # the allowance last: a request the rate limit refused spends none of it
                spent = state.allowance = self.quotas.allowances.spend(consumer.name,
                                                                       consumer.quota)
                if not spent.admitted:
                    self.quotas.on_limited()
                    raise GatewayError(
                        429, "quota_exhausted",
                        f"consumer {consumer.name!r} has used its {consumer.quota} quota; it "
                        f"renews in {spent.reset}s (or move to a larger plan)",
                        {"Retry-After": str(max(1, spent.reset))})
        except BACKEND_ERRORS as exc:
            self.quotas.on_storage_error(exc)
            state.quota_storage_failed = True
            deny = self.quotas.deny_on_storage_error
            log.warning("quota storage unreachable (%s): request %s", exc,
                        "refused" if deny else "let through")
            if deny:
                raise GatewayError(503, "storage_unavailable",
                                   "the quota store cannot be reached; try again shortly",
                                   {"Retry-After": "1"}) from None
        return None

    def refuse(self, limit: Limit, caller: str) -> None:
        state = request_state.current()
        state.quota_refused_by = limit
        self.quotas.on_limited()
        retry_after = max(1, self.quotas.seconds_to_reset(limit, caller))
        raise GatewayError(429, "rate_limited",
                           f"quota exceeded ({limit.item}); retry in {retry_after}s",
                           {"Retry-After": str(retry_after)})

    def after(self, response: Response) -> Response:
        state = request_state.current()
        if not state.quota_checked or state.quota_storage_failed:
            return response
        spent = state.allowance
        if spent is not None:
            response.headers["X-Quota-Limit"] = str(spent.limit)
            response.headers["X-Quota-Remaining"] = str(spent.remaining)
            response.headers["X-Quota-Reset"] = str(spent.reset)
        limits = self.limits_for(state.consumer)
        if not limits:
            return response
        caller = state.caller()
        stats = self.quotas.strategy.get_window_stats
        try:
            refused = state.quota_refused_by
            if refused is not None:  # the window that said no: nothing left in it
                tightest, (reset, remaining) = refused, (
                    stats(refused.item, KEY_PREFIX, caller, refused.scope)[0], 0)
            else:
                windows = [(limit, stats(limit.item, KEY_PREFIX, caller, limit.scope))
                           for limit in limits]
                tightest, (reset, remaining) = min(
                    windows, key=lambda w: (w[1][1], w[1][0]))
            response.headers["RateLimit-Limit"] = str(tightest.item.amount)
            response.headers["RateLimit-Remaining"] = str(max(0, remaining))
            response.headers["RateLimit-Reset"] = str(max(0, math.ceil(reset - self.quotas.clock())))
        except BACKEND_ERRORS as exc:
            log.warning("quota storage unreachable while writing RateLimit headers: %s", exc)
        return response
