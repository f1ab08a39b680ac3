"""``/healthz`` and ``/readyz``: the gateway's own probes.

``/healthz`` says the process answers. ``/readyz`` says whether *this
gateway* can serve, which is what an orchestrator's readiness probe asks: it
is 503 only while the process is draining (told to stop) or while the shared
store is unreachable under ``on_storage_error: deny`` (every quota would
refuse). A dead backend is not the gateway's unreadiness: taking every
replica out of rotation for it would take every other route down with it.
Upstream health is in the body instead: ``services.<name>`` is ``up`` while
one of its targets accepts TCP connections (and, with a ``health_check``,
passes it), ``down`` otherwise; ``failing`` lists the targets that do not;
``"status": "degraded"`` says something is down (a service, the store, the
database). With a ``database:``, ``"database"`` is ``ok`` or ``unreachable``:
still ready, the workers go on with the keys they last knew.
"""

from __future__ import annotations

import socket
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

from flask import Blueprint, jsonify

from .. import lifecycle
from ..extension import gateway_of

#: A readiness probe must answer well inside the orchestrator's own timeout.
PROBE_TIMEOUT = 1.0

bp = Blueprint("gateway_health", __name__)


@bp.get("/healthz")
def healthz():
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz():
    gateway = gateway_of()
    upstreams = gateway.upstreams
    results = [((name, url), err or health_failure(upstreams[name], url))
               for (name, url), err in probe_targets(upstreams).items()]
    failing = [{"service": name, "upstream": url, "error": err}
               for (name, url), err in results if err]
    # a service is ready while one of its targets is
    answering = {name for (name, _), err in results if not err}
    not_ready = set(upstreams) - answering
    storage_up = gateway.storage_health.check()
    refusing = not storage_up and gateway.config.on_storage_error == "deny"
    ready = not refusing and not lifecycle.draining()
    database = gateway.database_state()
    # the database down is no reason to stop serving: the keys last known go on working
    healthy = storage_up and not not_ready and database != "unreachable"
    status = "unavailable" if not ready else "ok" if healthy else "degraded"
    body = {"status": status, "storage": "ok" if storage_up else "unreachable",
            "services": {name: ("down" if name in not_ready else "up") for name in upstreams},
            "failing": failing}
    if database is not None:
        body["database"] = database
    validation = gateway.validation_states()
    if validation:
        body["validation"] = validation
    return jsonify(body), (200 if ready else 503)


def probe_targets(upstreams) -> dict[tuple[str, str], str | None]:
    """(service, target URL) -> None when it accepts TCP connections, else why not;
    all probed at once (the status page uses this too)."""
    targets = [(name, t.url) for name, up in upstreams.items() for t in up.targets]
    with ThreadPoolExecutor(max_workers=min(16, len(targets) or 1)) as pool:
        return dict(zip(targets, pool.map(lambda nt: _accepts_connections(nt[1]), targets),
                        strict=True))


def health_failure(upstream, url: str) -> str | None:
    """Why the active health check took the target out of rotation, if it did."""
    check = upstream.reach.health_check
    if check is None or all(t.probe_healthy for t in upstream.targets if t.url == url):
        return None
    return f"failing its health check (GET {check.path})"


def target_health(upstream, target) -> str | None:
    """``healthy`` / ``unhealthy`` as the probes last found, None without active checks."""
    if upstream.reach.health_check is None:
        return None
    return "healthy" if target.probe_healthy else "unhealthy"


def _accepts_connections(url: str) -> str | None:
    """None if a TCP connection to the URL's host and port opens, else why not."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname, port), timeout=PROBE_TIMEOUT):
            return None
    except OSError as exc:
        return exc.strerror or type(exc).__name__
