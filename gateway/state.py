"""What the gateway knows about the request in hand, in one typed object.

Every part that learns something about a request (routing, the API key, the
cache, the transport) writes it on the one :class:`RequestState`, and every
part that reports on a request (the access log, metrics, later traces) reads
it from there, so they can never disagree. It lives on ``flask.g`` and is
created before anything else runs (:func:`init_app`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, Response, g, has_app_context, request
from flask.globals import request_ctx
from werkzeug.exceptions import MethodNotAllowed

from .telemetry.requestid import HEADER as REQUEST_ID_HEADER
from .telemetry.requestid import incoming_or_new
from .transport import Exchange


@dataclass(slots=True)
class RequestState:
    """One request, as the gateway saw it."""

    request_id: str
    #: ``time.perf_counter()`` when the gateway took the request
    started: float
    #: the service or hand-written blueprint the request belongs to; None for
    #: the gateway's own endpoints and for paths no route matches
    route: str | None = None
    #: the consumer whose API key (or token: ``<issuer>:<sub>``) was accepted
    consumer: str | None = None
    #: the issuer of the accepted token
    issuer: str | None = None
    #: headers every upstream call of the request carries (claims_to_headers)
    upstream_headers: dict[str, str] | None = None
    #: the upstream target of the last upstream call, and the time all calls took
    upstream: str | None = None
    upstream_ms: float | None = None
    #: the kind of upstream failure (connect, timeout, reset, tls, circuit_open)
    upstream_error: str | None = None
    #: HIT, MISS or BYPASS when the route has a cache
    cache_status: str | None = None
    cache_key: str | None = None
    cors_preflight: bool = False
    quota_storage_failed: bool = False
    #: each quota window hit: key -> (count, reset time), read by the RateLimit-* headers
    quota_windows: dict[str, tuple[int, float]] = field(default_factory=dict)
    #: the request's server span and the app's Tracing, when tracing is on
    span: Any = None
    tracing: Any = None
    #: the trace id (32 hex digits) of a recorded trace, for the access log
    trace_id: str | None = None


def current() -> RequestState:
    """The state of the request in hand."""
    return g._gateway_state


def current_or_none() -> RequestState | None:
    """The request's state, or None outside a request (a call from a script or
    thread) or before the state was made."""
    return g.get("_gateway_state") if has_app_context() else None


class RequestExchange(Exchange):
    """What every upstream call of the request carries (request id, consumer)
    and where it reports (the request's state). Shared by all services.
    A call made outside any request carries and reports nothing."""

    def headers(self) -> dict[str, str]:
        state = current_or_none()
        if state is None:
            return {}
        headers = {REQUEST_ID_HEADER: state.request_id}
        if state.consumer:
            headers["X-Consumer"] = state.consumer
        if state.upstream_headers:
            headers.update(state.upstream_headers)
        return headers

    #: set when the app traces requests; otherwise attempts cost one attribute read
    traced = False

    def attempt(self, method: str, target: str, number: int, breaker: str,
                headers: dict[str, str]) -> Callable[[int | None, str | None], None]:
        state = current_or_none() if self.traced else None
        if state is None or state.tracing is None:
            return super().attempt(method, target, number, breaker, headers)
        return state.tracing.attempt(method, target, number, breaker, headers)

    def record(self, target: str, elapsed_ms: float, error: str | None) -> None:
        state = current_or_none()
        if state is None:
            return
        if target:
            state.upstream = target
        state.upstream_ms = (state.upstream_ms or 0.0) + elapsed_ms
        if error is not None:
            state.upstream_error = error


def init_app(app: Flask, route_names: set[str]) -> None:
    """Create each request's state first, and return its id on every response.

    :param route_names: the services and hand-written blueprints; requests to
        anything else (the gateway's own endpoints) have no route.
    """
    @app.before_request
    def create_request_state() -> None:
        state = RequestState(request_id=incoming_or_new(request.environ.get("HTTP_X_REQUEST_ID")),
                             started=time.perf_counter())
        blueprint = request.blueprint
        if blueprint is None and isinstance(request.routing_exception, MethodNotAllowed):
            blueprint = _blueprint_allowing_other_methods()
        if blueprint in route_names:
            state.route = blueprint
        g._gateway_state = state

    @app.after_request
    def return_request_id(response: Response) -> Response:
        state = current_or_none()
        response.headers[REQUEST_ID_HEADER] = state.request_id if state else incoming_or_new(None)
        return response


def _blueprint_allowing_other_methods() -> str | None:
    """A 405's route: the blueprint whose rule matched the path for other methods."""
    exc = request.routing_exception
    methods = getattr(exc, "valid_methods", None) or []
    adapter = request_ctx.url_adapter
    if not methods or adapter is None:
        return None
    try:
        rule, _ = adapter.match(method=methods[0], return_rule=True)
    except Exception:  # any routing outcome: no route to name
        return None
    endpoint = rule.endpoint
    return endpoint.rpartition(".")[0] or None
