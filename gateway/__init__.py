"""An API gateway for Python teams: Flask blueprints in front of backend HTTP services.

``create_app(config)`` is the one entry point; ``wsgi.py`` calls it (through
``load_app``). A request flows through the packages in this order:

- ``config``: the YAML file, validated once into typed sections;
- ``routing``: one blueprint per service (the proxy view), hand-written ones, aggregates;
- ``policies``: each route's chain (CORS, IP rules, body size, API key or token, quota, cache);
- ``tokens``: bearer tokens checked against each issuer's keys (JWKS, introspection);
- ``transport``: pools, failover, breakers, the streamed answer;
- ``state``: what is known about the request in hand, read by ``telemetry``;
- ``compose``: transformations and aggregates (answers made of other answers);
- ``endpoints``: the gateway's own paths (health, metrics, ``/openapi.json``
  and ``/docs`` from ``openapi``).

Hand-written blueprints use ``gateway.api`` (``service``, ``gather``).
"""

from __future__ import annotations

from typing import Any

from .config import ConfigError, GatewayConfig, ServiceConfig, load_config

__all__ = ["create_app", "load_app", "load_config", "ConfigError", "GatewayConfig",
           "ServiceConfig"]


def __getattr__(name: str) -> Any:
    # The app (and with it urllib3, requests, redis) is imported on first use,
    # not with the package: the gunicorn master validates the config through
    # gateway.config, and must not import what gevent has to patch first
    # (gunicorn.conf.py).
    if name in ("create_app", "load_app"):
        from . import app
        return getattr(app, name)
    raise AttributeError(f"module 'gateway' has no attribute {name!r}")
