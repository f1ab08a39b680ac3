"""Quotas: Flask-Limiter on the ``limits`` storage named by ``storage``.

A route's ``rate_limit`` is shared by all of the route's paths and counted per
consumer (per client address when the route has no API key); a consumer's own
``rate_limit`` counts across every route on top of that. Over quota is 429
``rate_limited`` with ``Retry-After``; every response of a limited route
carries ``RateLimit-Limit``, ``-Remaining`` and ``-Reset`` (seconds) for the
window closest to running out.

When the store cannot be reached, ``on_storage_error`` decides: ``allow``
passes the request (logged and counted), ``deny`` answers 503. redis-py
reconnects on the next call, so the gateway recovers by itself.

Flask-Limiter stays the quota engine, but its own ``before_request`` hook is
taken out: the check runs where the route's chain puts it (:class:`Quota`),
after authentication and never for a request an earlier step refused.
"""

from __future__ import annotations

import logging
import math
import time

from flask import Flask, Response
from flask_limiter import Limiter
from flask_limiter._extension import LimiterContext
from flask_limiter.errors import RateLimitExceeded
from limits.storage import RedisStorage, Storage
from limits.strategies import STRATEGIES

from .. import state as request_state
from ..config import GatewayConfig
from ..errors import GatewayError, error_response
from ..storage import BACKEND_ERRORS
from . import Policy
from .lease import LeasedFixedWindow
from .onetrip import OneTripFixedWindow

log = logging.getLogger("gateway.quota")


def _consumer() -> str | None:
    return request_state.current().consumer


def quota_key() -> str:
    """Who a quota counts: the consumer when known, else the client address."""
    return request_state.current().caller()


class GatewayLimiter(Limiter):
    """Flask-Limiter with the gateway's storage-failure policy."""

    def __init__(self, config: GatewayConfig, storage: Storage, on_storage_error=None):
        """:param storage: the gateway's one ``limits`` storage (gateway/storage.py), which
            the cache and breakers share: Flask-Limiter counts in it instead of its own."""
        consumer_limits = {name: c.rate_limit for name, c in config.consumers.items()
                           if c.rate_limit}
        # Flask-Limiter asks for the limit string before it applies exempt_when:
        # answer something valid for requests without a limited consumer
        placeholder = next(iter(consumer_limits.values()), "")
        super().__init__(
            quota_key,
            strategy=config.rate_limit_strategy,
            storage_uri="memory://",      # replaced by ``storage`` in init_app
            key_prefix="gateway",
            headers_enabled=False,        # RateLimit-* are written by Quota.after
            swallow_errors=False,         # on_storage_error decides instead
            application_limits=[lambda: consumer_limits.get(_consumer() or "", placeholder)]
            if consumer_limits else None,
            application_limits_exempt_when=lambda: _consumer() not in consumer_limits,
        )
        self.consumer_limits = consumer_limits
        self.deny_on_storage_error = config.on_storage_error == "deny"
        self.lease = config.quota.mode == "lease"
        self.shared_storage = storage
        self.on_storage_error = on_storage_error or (lambda exc: None)

    def init_app(self, app: Flask) -> None:
        super().init_app(app)
        # the chain decides where the check runs (Quota.before), not hook order
        app.before_request_funcs[None].remove(self._check_request_limit)
        # Quota.after writes the headers, and the bookkeeping lives and dies with the
        # request's state (``context`` below): Flask-Limiter's own after-request and
        # teardown hooks would only cost time on every request
        app.after_request_funcs[None] = [
            f for f in app.after_request_funcs[None] if getattr(f, "args", ()) != (self,)]
        app.teardown_request_funcs[None] = [
            f for f in app.teardown_request_funcs[None] if getattr(f, "__self__", None) is not self]
        self._resolve_once_per_route()
        # one storage for quotas, cache and breakers (one connection pool, or one
        # Cluster client); on Redis the fixed window gets the one-round-trip
        # strategy (policies/onetrip.py) or leases (policies/lease.py); memory://
        # counts exactly in one process either way
        strategy = self._strategy or "fixed-window"
        storage = self._storage = self.shared_storage
        if strategy == "fixed-window" and isinstance(storage, RedisStorage):
            self._limiter = LeasedFixedWindow(storage) if self.lease else \
                OneTripFixedWindow(storage)
        else:
            self._limiter = STRATEGIES[strategy](storage)

    @property
    def context(self) -> LimiterContext:
        """Flask-Limiter's bookkeeping for the request in hand, kept on the request's
        state (Flask-Limiter's own lookup through the request context cost 2 % of a
        worker in the full chain's profile)."""
        state = request_state.current()
        context = state.limiter_context
        if context is None:
            context = state.limiter_context = LimiterContext()
        return context

    def _resolve_once_per_route(self) -> None:
        """Work out which limits apply to a route once, not on every request.

        Flask-Limiter resolves them per request (blueprint limits, exemptions,
        the consumer's limit string parsed again): a profile of the full chain
        put that at 4 % of a worker's time. They depend only on the route and,
        for a consumer with a ``rate_limit`` of its own, on the consumer, all
        fixed once the app is built; what is decided per request (``exempt_when``,
        the key) is still decided per request, when the limits are evaluated.
        """
        manager = self.limit_manager
        resolve, exemption_scope = manager.resolve_limits, manager.exemption_scope
        resolved: dict[tuple, tuple] = {}
        scopes: dict[tuple, object] = {}

        def resolve_once(app, endpoint=None, blueprint=None, callable_name=None,
                         in_middleware=False, marked_for_limiting=False):
            consumer = _consumer()
            key = (endpoint, blueprint, callable_name, in_middleware, marked_for_limiting,
                   consumer if consumer in self.consumer_limits else None)
            limits = resolved.get(key)
            if limits is None:
                limits = resolved[key] = resolve(app, endpoint, blueprint, callable_name,
                                                 in_middleware, marked_for_limiting)
            return limits

        def exemption_scope_once(app, endpoint, blueprint):
            scope = scopes.get((endpoint, blueprint))
            if scope is None:
                scope = scopes[endpoint, blueprint] = exemption_scope(app, endpoint, blueprint)
            return scope

        manager.resolve_limits = resolve_once  # type: ignore[method-assign]
        manager.exemption_scope = exemption_scope_once  # type: ignore[method-assign]

    def check_request(self) -> None:
        """Count the request against every limit that applies to it.

        :raises RateLimitExceeded: over quota (answered 429 by the handler below).
        :raises GatewayError: 503 when the store is down and ``on_storage_error: deny``.
        """
        try:
            self._check_request_limit()
        except RateLimitExceeded:
            raise
        except BACKEND_ERRORS as exc:
            self.on_storage_error(exc)
            request_state.current().quota_storage_failed = True
            log.warning("quota storage unreachable (%s): request %s", exc,
                        "refused" if self.deny_on_storage_error else "let through")
            if self.deny_on_storage_error:
                raise GatewayError(503, "storage_unavailable",
                                   "the quota store cannot be reached; try again shortly",
                                   {"Retry-After": "1"}) from None


def seconds_until_reset(limit) -> int:
    """Whole seconds until the limit's window resets (its window is (reset_time, remaining))."""
    return max(0, math.ceil(limit.window[0] - time.time()))


class Quota(Policy):
    """Counts the request; writes ``RateLimit-*`` for the tightest window on every
    response of the route."""

    step = "quota"

    def __init__(self, limiter: GatewayLimiter):
        self.limiter = limiter

    def before(self):
        self.limiter.check_request()
        return None

    def after(self, response: Response) -> Response:
        if request_state.current().quota_storage_failed:
            return response
        try:
            limits = self.limiter.current_limits
            if not limits:
                return response
            if len(limits) == 1:  # the usual case: the route's own limit
                tightest = limits[0]
            else:
                breached = [lim for lim in limits if lim.breached]
                tightest = breached[0] if breached else min(
                    limits, key=lambda lim: (lim.remaining, lim.window[0]))
            reset = seconds_until_reset(tightest)
            response.headers["RateLimit-Limit"] = str(tightest.limit.amount)
            response.headers["RateLimit-Remaining"] = str(max(0, tightest.remaining))
            response.headers["RateLimit-Reset"] = str(reset)
        except BACKEND_ERRORS as exc:
            log.warning("quota storage unreachable while writing RateLimit headers: %s", exc)
        return response


def install_error_handler(app: Flask, limiter: GatewayLimiter, on_limited) -> None:
    """Answer RateLimitExceeded as JSON 429 `rate_limited` with Retry-After."""
    @app.errorhandler(RateLimitExceeded)
    def rate_limited(exc: RateLimitExceeded) -> Response:
        on_limited()
        retry_after = 1
        current = limiter.current_limit
        if current is not None:
            try:
                retry_after = max(1, seconds_until_reset(current))
            except BACKEND_ERRORS:
                pass
        return error_response(429, "rate_limited",
                              f"quota exceeded ({exc.description}); retry in {retry_after}s",
                              {"Retry-After": str(retry_after)})
