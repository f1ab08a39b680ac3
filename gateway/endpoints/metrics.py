"""``/metrics``: Prometheus text format, served to the addresses in ``metrics_allow_ips``.

Under gunicorn every worker writes its metrics to files in
``PROMETHEUS_MULTIPROC_DIR`` and a scrape adds them up, whichever worker
answers it. Without that variable (``flask run``, tests) the process's own
registry is served.
"""

from __future__ import annotations

import os

from flask import Blueprint, Response, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    generate_latest,
    multiprocess,
)

from ..errors import GatewayError
from ..extension import gateway_of
from ..policies.iprules import address_in

bp = Blueprint("gateway_metrics", __name__)


def require_operator() -> None:
    """Only the addresses in ``metrics_allow_ips`` see the gateway's own figures.

    :raises GatewayError: 403 for anyone else.
    """
    allowed = gateway_of().config.metrics_allow_ips
    if not address_in(request.remote_addr, allowed):
        raise GatewayError(403, "forbidden", f"{request.path} is served only to the addresses "
                           "in metrics_allow_ips")


def registry():
    """Every worker's metrics added up under gunicorn; this process's otherwise."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        combined = CollectorRegistry()
        multiprocess.MultiProcessCollector(combined)
        return combined
    return REGISTRY


@bp.get("/metrics")
def metrics() -> Response:
    require_operator()
    # CONTENT_TYPE_LATEST already names its charset: pass it whole, not as a mimetype
    return Response(generate_latest(registry()), content_type=CONTENT_TYPE_LATEST)
