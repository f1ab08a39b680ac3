"""Prometheus metrics, and ``/metrics`` for the addresses in ``metrics_allow_ips``.

Under gunicorn the metrics are kept in prometheus_client's multiprocess mode
(``PROMETHEUS_MULTIPROC_DIR``, set up and cleaned by gunicorn.conf.py), so a
scrape sees every worker's counts, whichever worker answers it. Without that
variable (``flask run``, tests) the process's own registry is served.
"""

from __future__ import annotations

import os
import time

from flask import Blueprint, Flask, Response, current_app, g, request
from prometheus_client import (CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram,
                               generate_latest, multiprocess)
from prometheus_client import REGISTRY

from .errors import GatewayError
from .policies.iprules import address_in
from .transport import on_finished

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
STORAGE_ERRORS = Counter("gateway_storage_errors_total",
                         "Times the shared store (quotas, cache, breakers) could not be reached",
                         ["component"])

bp = Blueprint("gateway_metrics", __name__)


def route_label() -> str:
    return request.blueprint or "none"


def init_app(app: Flask) -> None:
    @app.after_request
    def count_request(response: Response) -> Response:
        ctx = g._get_current_object()
        service = route_label()
        status = response.status_code
        _child(REQUESTS, service, request.method, status).inc()
        upstream_ms = getattr(ctx, "upstream_ms", None)
        if upstream_ms is not None:
            _child(UPSTREAM_DURATION, service).observe(upstream_ms / 1000.0)
        kind = getattr(ctx, "upstream_error", None)
        if kind:
            UPSTREAM_ERRORS.labels(service, kind).inc()
        started = getattr(ctx, "started", None)
        if started is not None:
            histogram = _child(DURATION, service)
            on_finished(response, lambda sent, error: _finish(histogram, started, service, error))
        return response

    app.register_blueprint(bp)


#: labelled children, looked up once: ``labels()`` validates and locks on every call
_children: dict[tuple, object] = {}


def _child(metric, *labels):
    key = (metric, *labels)
    child = _children.get(key)
    if child is None:
        child = _children[key] = metric.labels(*[str(label) for label in labels])
    return child


def _finish(histogram, started: float, service: str, error) -> None:
    histogram.observe(time.perf_counter() - started)
    if error is not None:
        UPSTREAM_ERRORS.labels(service, error.kind).inc()


@bp.get("/metrics")
def metrics():
    allowed = current_app.extensions["gateway"].config.metrics_allow_ips
    if not address_in(request.remote_addr, allowed):
        raise GatewayError(403, "forbidden", "/metrics is served only to the addresses in "
                           "metrics_allow_ips")
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)


# -- hooks the policies call ------------------------------------------------------

def rate_limited() -> None:
    RATE_LIMITED.labels(route_label()).inc()


def cache_result(service: str):
    return lambda result: CACHE.labels(service, result.lower()).inc()


def circuit_changed(breaker, is_open: bool) -> None:
    CIRCUIT_OPEN.labels(breaker.service, breaker.target).set(1 if is_open else 0)


def storage_error(component: str):
    return lambda exc: STORAGE_ERRORS.labels(component).inc()
