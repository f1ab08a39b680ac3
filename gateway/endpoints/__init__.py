"""The gateway's own endpoints: ``/healthz``, ``/readyz``, ``/metrics``, ``/openapi.json``,
``/docs``, ``/_gateway/status`` (and its ``.json``), ``/_gateway/usage``.

Each is a small blueprint registered by :func:`register`; their paths are
reserved (gateway/config/checks.py), so no service or blueprint can take them.
"""

from __future__ import annotations

from flask import Flask

from . import docs, health, metrics, status, usage

BLUEPRINTS = (health.bp, metrics.bp, docs.bp, status.bp, usage.bp)


def register(app: Flask) -> None:
    for bp in BLUEPRINTS:
        app.register_blueprint(bp)
    status.take_baseline(app)
