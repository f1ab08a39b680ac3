"""``/_gateway/status`` and ``/_gateway/status.json``: what is up, what is failing, how fast.

The JSON carries, per service and hand-written blueprint, each target's
reachability (a TCP connect, as ``/readyz`` does), circuit and, with active
health checks, probed health (a canary's targets too, marked so), and over the
last minute the requests per second, the share of 5xx answers, p50/p99,
quota rejections and the cache hit ratio; per aggregate its calls' outcomes;
the route table; and the consumers panel (gateway/endpoints/panel.py: the
busiest consumers of the last hour, allowances nearly spent, from the usage
records). The figures come from the metrics every worker writes
(gateway/telemetry/status.py), so any worker gives the whole gateway's view.
The page (status.html beside this file: one file, no build step, no CDN)
renders that JSON and fetches it again every few seconds. Both are served
only to ``metrics_allow_ips``, like ``/metrics``.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

from flask import Blueprint, Flask, Response, current_app, jsonify

from ..extension import gateway_of
from ..routing import route_table
from ..storage import shown
from ..telemetry.status import Reading, Window, read, route_figures
from .health import probe_targets, target_health
from .metrics import registry, require_operator
from .panel import ConsumersPanel

PAGE = (Path(__file__).parent / "status.html").read_text(encoding="utf-8")

bp = Blueprint("gateway_status", __name__)
#: this worker's readings, in ``app.extensions``
WINDOW = "gateway_status_window"
#: its consumers panel (gateway/endpoints/panel.py), in ``app.extensions``
PANEL = "gateway_consumers_panel"


def take_baseline(app: Flask) -> None:
    """The worker's first reading, taken when its app is made (in each gunicorn
    worker): the page's first read already has rates, since the worker started."""
    window = app.extensions[WINDOW] = Window()
    window.add(read(registry()))
    app.extensions[PANEL] = ConsumersPanel(gateway_of(app))


@bp.get("/_gateway/status")
def status_page() -> Response:
    require_operator()
    return Response(PAGE, mimetype="text/html")


@bp.get("/_gateway/status.json")
def status_json() -> Response:
    require_operator()
    response = jsonify(status_document())
    response.headers["Cache-Control"] = "no-store"
    return response


def status_document() -> dict:
    gateway = gateway_of()
    config = gateway.config
    window: Window = current_app.extensions[WINDOW]
    now = read(registry())
    then = window.add(now)
    probes = probe_targets(gateway.upstreams)
    probes.update(probe_targets(gateway.canaries))
    services = []
    validation = gateway.validation_states()
    for name, service in config.services.items():
        branches = [("primary", gateway.upstreams[name])]
        if name in gateway.canaries:
            branches.append(("canary", gateway.canaries[name]))
        targets = [{"url": t.url, "branch": branch, "up": probes[(name, t.url)] is None,
                    "error": probes[(name, t.url)],
                    "circuit": "open" if now.circuit_open.get((name, t.url)) else "closed",
                    "health": target_health(upstream, t)}
                   for branch, upstream in branches for t in upstream.targets]
        healthy = sum(bool(t["up"]) and t["circuit"] == "closed" and t["health"] != "unhealthy"
                      for t in targets)
        state = "up" if healthy == len(targets) else "degraded" if healthy else "down"
        services.append({"name": name, "kind": "service", "prefix": service.prefix,
                         "state": state, "targets": targets,
                         "websockets": (int(now.websockets.get(name, 0))
                                        if service.websocket is not None else None),
                         "validation": validation.get(name),
                         **asdict(route_figures(name, now, then))})
    for entry in config.blueprints:
        name = entry.loaded.name
        services.append({"name": name, "kind": "blueprint", "prefix": "", "state": "up",
                         "targets": [], **asdict(route_figures(name, now, then))})
    states = {s["name"]: s["state"] for s in services}
    aggregates = []
    for aggregate in config.aggregates:
        name = aggregate.route_name
        needed = [states[c.service] for c in aggregate.calls.values() if c.required]
        used = [states[c.service] for c in aggregate.calls.values()]
        state = ("down" if "down" in needed or all(s == "down" for s in used)
                 else "up" if all(s == "up" for s in used) else "degraded")
        aggregates.append({"name": name, "path": aggregate.path, "state": state,
                           "calls": [_call_counts(name, call, c.service, now, then)
                                     for call, c in aggregate.calls.items()],
                           **asdict(route_figures(name, now, then))})
    routes = [dict(zip(("path", "route", "methods", "upstream", "policies"), row, strict=True))
              for row in route_table(config)]
    gateway.storage_health.check()
    storage = {"uri": shown(config.storage), **gateway.storage_health.describe()}
    return {"generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "window_seconds": round(now.taken - then.taken, 1) if then else None,
            "storage": storage, "services": services, "aggregates": aggregates, "routes": routes,
            # consumers and keys at runtime: ok, or unreachable (the keys last known serve)
            "database": gateway.database_state(),
            "consumers": current_app.extensions[PANEL].snapshot()}


def _call_counts(aggregate: str, call: str, service: str, now: Reading,
                 then: Reading | None) -> dict:
    """A call's outcomes in the window (since start before a second reading)."""
    counts: dict[str, float] = {}
    for (agg, name, result), value in now.calls.items():
        if (agg, name) == (aggregate, call):
            earlier = then.calls.get((agg, name, result), 0.0) if then else 0.0
            counts[result] = value - earlier
    ok = counts.pop("ok", 0.0)
    return {"name": call, "service": service, "ok": int(ok), "failed": int(sum(counts.values())),
            "errors": {code: int(n) for code, n in counts.items() if n}}
