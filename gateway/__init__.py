"""An API gateway for Python teams: Flask blueprints in front of backend HTTP services.

``create_app(config)`` is the one entry point; ``wsgi.py`` calls it (through
``load_app``). A request flows through the packages in this order:

- ``config``: the YAML file, validated once into typed sections;
- ``routing``: one blueprint per service (the proxy view), hand-written ones;
- ``policies``: each route's chain (CORS, IP rules, body size, API key, quota, cache);
- ``transport``: pools, failover, breakers, the streamed answer;
- ``state``: what is known about the request in hand, read by ``telemetry``;
- ``endpoints``: the gateway's own paths (health, metrics).
"""

from .app import create_app, load_app
from .config import ConfigError, GatewayConfig, ServiceConfig, load_config

__all__ = ["create_app", "load_app", "load_config", "ConfigError", "GatewayConfig",
           "ServiceConfig"]
