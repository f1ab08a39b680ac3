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

from . import accesslog, health, requestid
from .config import GatewayConfig, load_config, parse_config
from .errors import register_error_handlers
from .routes import register_routes
from .transport import DEFAULT_POOL_SIZE, Upstream


@dataclass
class GatewayState:
    """What the gateway keeps for the app's lifetime (``app.extensions["gateway"]``)."""

    config: GatewayConfig
    upstreams: dict[str, Upstream]


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

    app = Flask("gateway")
    # gthread runs GATEWAY_THREADS requests per worker: size the pools to match
    pool_size = int(os.environ.get("GATEWAY_THREADS") or DEFAULT_POOL_SIZE)
    upstreams = {name: Upstream(service, pool_size) for name, service in config.services.items()}
    app.extensions["gateway"] = GatewayState(config=config, upstreams=upstreams)

    # after_request hooks run in reverse: the access log registers first to run last
    accesslog.init_app(app)
    requestid.init_app(app)
    register_error_handlers(app)
    app.register_blueprint(health.bp)
    register_routes(app, config, upstreams)

    if config.trusted_proxies:
        n = config.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n, x_port=n, x_prefix=n)
    return app
