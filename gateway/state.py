"""What the gateway knows about the request in hand, in one typed object.

Every part that learns something about a request (routing, the API key, the
cache, the transport) writes it on the one :class:`RequestState`, and every
part that reports on a request (the access log, metrics, later traces) reads
it from there, so they can never disagree. It lives on ``flask.g`` and is
created before anything else runs (:func:`init_app`).

This module is the bottom of the gateway's layers (setup.cfg, import-linter):
it imports nothing of the gateway's own.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from flask import Flask, Response, current_app, g, has_app_context, request
from werkzeug.exceptions import MethodNotAllowed

#: The request id's header: kept from the client when well-formed, sent
#: upstream, written in the access log and error bodies, returned to the client.
REQUEST_ID_HEADER = "X-Request-ID"
#: in the environ of a request nginx holds while the gateway decides it (gateway/offload):
#: its chain runs, its view answers the decision, nothing is logged or measured for it
OFFLOAD_DECIDING = "gateway.offload.deciding"
_WELL_FORMED_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")



class Tracer(Protocol):
    """What the transport asks of the app's tracing for each upstream attempt
    (gateway/telemetry/tracing.py's ``Tracing``, which sits above this module)."""

    #: the OpenTelemetry tracer that makes the request's spans
    tracer: Any

    def attempt(self, method: str, target: str, number: int, breaker: str,
                headers: dict[str, str]) -> Any: ...


def incoming_or_new(value: str | None) -> str:
    """The client's request id if it is at most 128 of ``[A-Za-z0-9._-]``, else a fresh one."""
    if value and _WELL_FORMED_ID.fullmatch(value):
        return value
    return os.urandom(16).hex()


def client_request_id(environ: dict) -> str | None:
    """The client's ``X-Request-ID``, unless its ``Connection`` header names it.

    A header named in ``Connection`` is hop-by-hop (RFC 9110 §7.6.1): it is
    dropped, and its value never becomes the id the gateway sends upstream.
    """
    value = environ.get("HTTP_X_REQUEST_ID")
    connection = environ.get("HTTP_CONNECTION")
    if value and connection and any(token.strip().lower() == "x-request-id"
                                    for token in connection.split(",")):
        return None
    return value


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
    #: the id of the database key that was accepted (never the key; None for a file key)
    key_id: str | None = None
    #: the issuer of the accepted token
    issuer: str | None = None
    #: the token's claims as headers (claims_to_headers), carried by every upstream call
    claim_headers: dict[str, str] | None = None
    #: the target URL that answered the last upstream call (the access log's ``upstream``)
    upstream_target: str | None = None
    #: (start, end) of each upstream call, ``time.perf_counter()``
    upstream_calls: list[tuple[float, float]] = field(default_factory=list)
    #: the kind of upstream failure (connect, timeout, reset, tls, circuit_open)
    upstream_error: str | None = None
    #: HIT, MISS or BYPASS when the route has a cache
    cache_status: str | None = None
    cache_key: str | None = None
    cors_preflight: bool = False
    #: the quota step counted the request (a request refused before it carries no RateLimit-*)
    quota_checked: bool = False
    quota_storage_failed: bool = False
    #: each quota window hit: key -> (count, reset time), read by the RateLimit-* headers
    quota_windows: dict[str, tuple[int, float]] = field(default_factory=dict)
    #: the request's server span and the app's Tracing, when tracing is on
    span: Any = None  # an OpenTelemetry Span
    tracing: Tracer | None = None
    #: the trace id (32 hex digits) of a recorded trace, for the access log
    trace_id: str | None = None
    #: primary or canary, on a service with a canary (gateway/policies/canary.py)
    branch: str | None = None
    #: the OpenAPI operation the request was validated against (gateway/policies/validate.py)
    operation: Any = None
    #: the request's body, read at most once (gateway/routing/requestbody.py)
    request_body: Any = None
    #: the quota window that refused the request (gateway/policies/quota.py)
    quota_refused_by: Any = None
    #: what the request did to its consumer's allowance (policies/allowance.py's Spent)
    allowance: Any = None

    def caller(self) -> str:
        """Who is calling, for whatever counts or keys by caller (quotas, the canary's
        stickiness, WebSocket connections per consumer): ``consumer:<name>`` when a key
        or token named one, else ``ip:<client address>``."""
        if self.consumer:
            return f"consumer:{self.consumer}"
        return f"ip:{request.remote_addr}"

    @property
    def upstream_ms(self) -> float | None:
        """How long at least one upstream call was in flight: an aggregate's
        concurrent calls count once, so this never exceeds the request's duration."""
        if not self.upstream_calls:
            return None
        total = 0.0
        covered_until = float("-inf")
        for start, end in sorted(self.upstream_calls):
            if end > covered_until:
                total += end - max(start, covered_until)
                covered_until = end
        return total * 1000.0


def current() -> RequestState:
    """The state of the request in hand."""
    return g._gateway_state


def current_or_none() -> RequestState | None:
    """The request's state, or None outside a request (a call from a script or
    thread) or before the state was made."""
    return g.get("_gateway_state") if has_app_context() else None


def init_app(app: Flask, route_names: set[str]) -> None:
    """Create each request's state first, and return its id on every response.

    :param route_names: the services and hand-written blueprints; requests to
        anything else (the gateway's own endpoints) have no route.
    """
    @app.before_request
    def create_request_state() -> None:
        state = RequestState(request_id=incoming_or_new(client_request_id(request.environ)),
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
    if not methods:
        return None
    try:
        adapter = current_app.create_url_adapter(request)
        if adapter is None:
            return None
        rule, _ = adapter.match(method=methods[0], return_rule=True)
    except Exception:  # any routing outcome: no route to name
        return None
    endpoint = rule.endpoint
    return endpoint.rpartition(".")[0] or None
