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

from .app import create_app, load_app
from .config import ConfigError, GatewayConfig, ServiceConfig, load_config

__all__ = ["create_app", "load_app", "load_config", "ConfigError", "GatewayConfig",
           "ServiceConfig"]
