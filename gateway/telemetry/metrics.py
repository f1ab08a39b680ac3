"""Prometheus metrics: the instruments, and the hook that counts every request.

Labels come from the request's state: ``service`` is the route the request
belongs to (``none`` for the gateway's own endpoints and unmatched paths),
the same value the access log writes. Under gunicorn the metrics are kept in
prometheus_client's multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``, set up
and cleaned by gateway/serve/gunicorn_conf.py); ``/metrics`` is gateway/endpoints/metrics.py.
"""

from __future__ import annotations

import time

from flask import Flask, Response, request
from prometheus_client import Counter, Gauge, Histogram

from .. import state as request_state
from ..transport import when_sent

REQUESTS = Counter("gateway_requests_total", "Requests answered, by route, method and status",
                   ["service", "method", "status"])
DURATION = Histogram("gateway_request_duration_seconds",
                     "Time from request to the last byte of the answer", ["service"])
UPSTREAM_DURATION = Histogram("gateway_upstream_duration_seconds",
                              "Time the upstream took to send its status and headers", ["service"])
RATE_LIMITED = Counter("gateway_rate_limited_total", "Requests refused by a quota", ["service"])
CACHE = Counter("gateway_cache_total", "Response cache lookups by result", ["service", "result"])
CIRCUIT_OPEN = Gauge("gateway_circuit_open", "1 while the target's circuit breaker is open",
                     ["service", "target"], multiprocess_mode="mostrecent")
UPSTREAM_ERRORS = Counter("gateway_upstream_errors_total",
                          "Failed upstream calls (connect, timeout, reset, tls, circuit_open)",
                          ["service", "kind"])
AGGREGATE_CALLS = Counter("gateway_aggregate_calls_total",
                          "Aggregate calls by aggregate, call and result (ok or the error code)",
                          ["aggregate", "call", "result"])
AUTH_FAILURES = Counter("gateway_auth_failures_total",
                        "Requests refused by API key or token checks, by reason (the error "
                        "code: missing_api_key, invalid_api_key, forbidden, or a token's)",
                        ["service", "reason"])
STORAGE_ERRORS = Counter("gateway_storage_errors_total",
                         "Times the shared store (quotas, cache, breakers) could not be reached",
                         ["component"])
BRANCH_REQUESTS = Counter("gateway_branch_requests_total",
                          "Requests to a service with a canary, by the branch they went to",
                          ["service", "branch"])
TARGET_HEALTHY = Gauge("gateway_target_healthy",
                       "1 while active health checks keep the target in rotation, 0 while out",
                       ["service", "target"], multiprocess_mode="mostrecent")
MIRROR_REQUESTS = Counter("gateway_mirror_requests_total",
                          "Mirrored copies: sent (an answer came back), failed (none came), "
                          "dropped (max_in_flight reached), too_large (body over the cap)",
                          ["service", "result"])
VALIDATION_FAILURES = Counter("gateway_validation_failures_total",
                              "Problems found by OpenAPI validation, one count per problem: "
                              "mode enforce (refused), report (passed) or response (an answer)",
                              ["service", "operation", "location", "mode"])
VALIDATION_ACTIVE = Gauge("gateway_validation_active",
                          "1 while the service's requests are validated against a good "
                          "document, 0 while it runs unvalidated (no usable document)",
                          ["service"], multiprocess_mode="mostrecent")
VALIDATION_DOCUMENT_MISSING = Gauge(
    "gateway_validation_document_missing",
    "1 while the service's OpenAPI document could not be fetched and is fetched again "
    "(requests refused 503 validation_unavailable, or passed with on_missing_document: pass)",
    ["service"], multiprocess_mode="mostrecent")
DATABASE_UP = Gauge("gateway_database_up",
                    "1 while the database of consumers and keys answers, 0 while the workers "
                    "go on with the keys they last knew (the lowest of the live workers)",
                    multiprocess_mode="livemin")
USAGE_DROPPED = Counter("gateway_usage_dropped_total",
                        "Requests whose usage records were dropped unwritten: the oldest, "
                        "beyond what a worker keeps while the database is down")
WEBSOCKETS_OPEN = Gauge("gateway_websocket_connections", "WebSocket connections open now",
                        ["service"], multiprocess_mode="livesum")
WEBSOCKETS_CLOSED = Counter("gateway_websocket_closed_total",
                            "WebSocket connections ended, by who or what ended them "
                            "(client, upstream, idle, lifetime, shutdown, error)",
                            ["service", "reason"])
WEBSOCKET_BYTES = Counter("gateway_websocket_bytes_total",
                          "Bytes relayed on WebSocket connections after the handshake",
                          ["service", "direction"])
OFFLOAD_LINES = Counter("gateway_offload_log_lines_total",
                        "nginx's log lines of offloaded requests read from the log socket "
                        "(each also counted as a request above)", ["service"])
OFFLOAD_LOST = Counter("gateway_offload_log_lost_total",
                       "Offloaded requests the gateway decided whose log line never came "
                       "(nginx could not send it: the log socket's queue was full)")


def branch_counter(service: str):
    """``f(branch)`` counting one request of ``service`` on that branch."""
    children = {branch: BRANCH_REQUESTS.labels(service, branch) for branch in ("primary", "canary")}
    return lambda branch: children[branch].inc()


def target_health(service: str, target: str, healthy: bool) -> None:
    TARGET_HEALTHY.labels(service, target).set(1 if healthy else 0)


def mirror_counter(service: str):
    """``f(result)`` counting one mirrored copy of ``service``."""
    return lambda result: MIRROR_REQUESTS.labels(service, result).inc()


def validation_problem(service: str):
    """``f(operation, location, mode)`` counting one validation problem of ``service``."""
    return lambda operation, location, mode: VALIDATION_FAILURES.labels(
        service, operation, location, mode).inc()


def validation_document(service: str):
    """``f(active, missing)`` setting the service's two validation gauges."""
    def changed(active: bool, missing: bool) -> None:
        VALIDATION_ACTIVE.labels(service).set(1 if active else 0)
        VALIDATION_DOCUMENT_MISSING.labels(service).set(1 if missing else 0)
    return changed


def route_label() -> str:
    return request_state.current().route or "none"


def init_app(app: Flask) -> None:
    @app.after_request
    def count_request(response: Response) -> Response:
        if request.environ.get(request_state.OFFLOAD_DECIDING):  # nginx's line counts it
            return response
        state = request_state.current()
        service = state.route or "none"
        _child(REQUESTS, service, request.method, response.status_code).inc()
        if state.upstream_ms is not None and state.upstream_error is None:
            _child(UPSTREAM_DURATION, service).observe(state.upstream_ms / 1000.0)
        if state.upstream_error:
            UPSTREAM_ERRORS.labels(service, state.upstream_error).inc()
        histogram = _child(DURATION, service)
        started = state.started
        when_sent(response, lambda sent, error: _finish(histogram, started, service, error))
        return response


#: labelled children, looked up once: ``labels()`` validates and locks on every call
_children: dict[tuple, object] = {}


def _child(metric, *labels):
    key = (metric, *labels)
    child = _children.get(key)
    if child is None:
        child = _children[key] = metric.labels(*[str(label) for label in labels])
    return child


def offloaded_request(entry: dict) -> None:
    """A request nginx carried for an offloaded service, from its log line
    (gateway/offload/reader.py): counted as the hooks above count a proxied one."""
    service = entry["service"] or "none"
    _child(REQUESTS, service, entry["method"], entry["status"]).inc()
    _child(DURATION, service).observe(entry["duration_ms"] / 1000.0)
    error = entry.get("upstream_error")
    if error:
        UPSTREAM_ERRORS.labels(service, error).inc()
    elif entry.get("upstream_ms") is not None:
        _child(UPSTREAM_DURATION, service).observe(entry["upstream_ms"] / 1000.0)
    if entry["status"] == 101:  # a WebSocket: what nginx relayed after the handshake
        _child(WEBSOCKET_BYTES, service, "to_client").inc(entry["bytes_sent"])
    _child(OFFLOAD_LINES, service).inc()


def offload_lines_lost(count: int) -> None:
    OFFLOAD_LOST.inc(count)


def _finish(histogram, started: float, service: str, error) -> None:
    histogram.observe(time.perf_counter() - started)
    if error is not None:
        UPSTREAM_ERRORS.labels(service, error.kind).inc()


# -- hooks the policies call ------------------------------------------------------

def rate_limited() -> None:
    RATE_LIMITED.labels(route_label()).inc()


def cache_result(service: str):
    return lambda result: CACHE.labels(service, result.lower()).inc()


def circuit_changed(breaker, is_open: bool) -> None:
    CIRCUIT_OPEN.labels(breaker.service, breaker.target).set(1 if is_open else 0)


def aggregate_call(aggregate: str):
    """``f(service, call, seconds, error)`` for each call an aggregate makes: the call
    counts for the aggregate, its time for the service it went to."""
    def observe(service: str, call: str, seconds: float, error: str | None) -> None:
        AGGREGATE_CALLS.labels(aggregate, call, error or "ok").inc()
        if error is None:
            _child(UPSTREAM_DURATION, service).observe(seconds)
    return observe


def usage_dropped(requests: int) -> None:
    USAGE_DROPPED.inc(requests)


def database_up(up: bool) -> None:
    DATABASE_UP.set(1 if up else 0)


def auth_failed(service: str, reason: str) -> None:
    AUTH_FAILURES.labels(service, reason).inc()
