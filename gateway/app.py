"""The application factory: configuration in, a ready WSGI app out.

Everything a request needs is built here, once: the parsed config, one
:class:`~gateway.transport.Upstream` (pooled Session) per service, the
service blueprints, the hooks. The per-request path only runs what was built.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from . import accesslog, health, metrics, requestid
from .policies import build as policies
from .policies.build import breaker_factory
from .storage import open_storage
from .config import GatewayConfig, load_config, parse_config
from .errors import register_error_handlers
from .routes import register_routes
from .transport import DEFAULT_POOL_SIZE, Upstream


@dataclass
class GatewayState:
    """What the gateway keeps for the app's lifetime (``app.extensions["gateway"]``)."""

    config: GatewayConfig
    upstreams: dict[str, Upstream]
    #: the shared ``limits`` storage (None when nothing needs one)
    storage: object = None


def needs_shared_store(config: GatewayConfig) -> bool:
    """Quotas, caches and breakers keep state; without them no store is opened."""
    routes = [s.policies for s in config.services.values()] + [b.policies for b in config.blueprints]
    return (any(p.rate_limit or p.cache or p.circuit_breaker for p in routes)
            or any(c.rate_limit for c in config.consumers.values()))


def create_app(config: GatewayConfig | Mapping | str | os.PathLike | None = None) -> Flask:
    """Build the gateway.

    :param config: a :class:`GatewayConfig`, a mapping shaped like the YAML
        file, or the file's path. ``None`` reads ``$GATEWAY_CONFIG`` (default
        ``./gateway.yaml``).
    :raises ConfigError: the configuration is invalid; the message names each key.
    """
    if config is None or isinstance(config, (str, os.PathLike)):
        config = load_config(os.fspath(config) if config is not None else None)
    elif not isinstance(config, GatewayConfig):
        config = parse_config(config)

    app = Flask("gateway", static_folder=None)  # every path belongs to a service
    storage = open_storage(config.storage) if needs_shared_store(config) else None
    # gthread runs GATEWAY_THREADS requests per worker: size the pools to match
    pool_size = int(os.environ.get("GATEWAY_THREADS") or DEFAULT_POOL_SIZE)
    upstreams = {}
    for name, service in config.services.items():
        breaker = service.policies.circuit_breaker
        factory = breaker_factory(name, breaker, storage) if breaker else None
        upstreams[name] = Upstream(service, pool_size, breaker_factory=factory)
    app.extensions["gateway"] = GatewayState(config=config, upstreams=upstreams, storage=storage)

    # after_request hooks run in reverse: the access log registers first to run last
    accesslog.init_app(app)
    metrics.init_app(app)
    requestid.init_app(app)
    register_error_handlers(app)
    app.register_blueprint(health.bp)
    routes = register_routes(app, config, upstreams)
    policies.install(app, config, routes, storage)

    if config.trusted_proxies:
        n = config.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n, x_port=n, x_prefix=n)
    return app
