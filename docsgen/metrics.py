"""The metrics reference: every metric ``/metrics`` exports, from prometheus_client's registry.

Importing the app registers every instrument (they are module-level objects
in ``gateway/telemetry``), so the registry holds them all whatever the
config. prometheus_client keeps label names and a gauge's multiprocess mode
on the instrument only (``_labelnames``, ``_multiprocess_mode``): read there.
"""

from __future__ import annotations

from prometheus_client import REGISTRY

#: What each sample name is, by instrument type.
SAMPLES = {"counter": ("_total",), "gauge": ("",), "histogram": ("_bucket", "_sum", "_count")}
#: How gunicorn's workers are added up for a gauge (prometheus_client's multiprocess modes).
GAUGE_MODES = {"livesum": "the sum over live workers", "mostrecent": "the value written last, "
               "by any worker", "all": "one series per worker", "liveall": "one series per "
               "live worker", "max": "the highest worker's", "min": "the lowest worker's",
               "sum": "the sum over every worker, dead ones included",
               "livemin": "the lowest live worker's", "livemax": "the highest live worker's"}


def gateway_metrics() -> list:
    """The gateway's instruments (``gateway_*``), by name."""
    import gateway.app  # noqa: F401  registers every instrument

    collectors = [c for c in list(REGISTRY._collector_to_names)  # no public listing
                  if getattr(c, "_name", "").startswith("gateway_")]
    return sorted(collectors, key=lambda c: c._name)


def render() -> str:
    lines = ["# Metrics reference", "",
             "What `/metrics` exports (Prometheus text format, to the addresses in "
             "`metrics_allow_ips`). Under gunicorn every worker writes its own and a scrape "
             "adds them up, whichever worker answers it (prometheus_client's multiprocess "
             "mode). Generated from the gateway's prometheus_client registry. Every metric's "
             "`service` label is the route's name (`none` for the gateway's own endpoints and "
             "paths no route matches), the same value the access log writes.", "",
             "| metric | type | labels | what it counts |", "|---|---|---|---|"]
    for metric in gateway_metrics():
        kind = metric._type
        names = "<br>".join(f"`{metric._name}{suffix}`" for suffix in SAMPLES[kind])
        labels = ", ".join(f"`{label}`" for label in metric._labelnames) or "none"
        what = metric._documentation
        if kind == "gauge":
            what += f"; across workers: {GAUGE_MODES[metric._multiprocess_mode]}"
        if kind == "histogram":
            bounds = ", ".join(f"{b:g}" for b in metric._upper_bounds if b != float("inf"))
            what += f"; buckets (seconds): {bounds}"
        lines.append(f"| {names} | {kind} | {labels} | {what} |")
    return "\n".join(lines) + "\n"
