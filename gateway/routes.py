"""Service blueprints, generated from the configuration.

Each service becomes its own Blueprint mounted at its prefix, with one view
(:class:`~gateway.proxy.ServiceProxy`) for the prefix itself and everything
below it. werkzeug's router then does what nginx's ``location`` matching does:
the longest prefix wins, and a method the service does not allow gets a 405.
"""

from __future__ import annotations

import importlib

from flask import Blueprint, Flask, request

from .config import ConfigError, GatewayConfig, ServiceConfig
from .paths import check_path
from .proxy import ServiceProxy
from .transport import Upstream


def service_blueprint(service: ServiceConfig, upstream: Upstream,
                      trusted_proxies: int) -> Blueprint:
    view = ServiceProxy(service, upstream, trusted_proxies)
    prefix = "" if service.prefix == "/" else service.prefix
    bp = Blueprint(service.name, __name__, url_prefix=prefix or None)
    methods = list(service.methods)
    for rule in ("/", "/<path:subpath>"):
        # OPTIONS goes to the upstream like any method, not Flask's automatic answer
        bp.add_url_rule(rule, "proxy", view, methods=methods, provide_automatic_options=False)
    if prefix:
        bp.add_url_rule("", "proxy_root", view, methods=methods, provide_automatic_options=False)
    return bp


def load_blueprint(ref: str, index: int) -> Blueprint:
    """Import ``package.module:name`` and check it is a Blueprint."""
    module_name, _, attr = ref.partition(":")
    where = f"blueprints[{index}]"
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError([f"{where}: cannot import {module_name!r} ({exc})"]) from None
    bp = getattr(module, attr, None)
    if not isinstance(bp, Blueprint):
        raise ConfigError([f"{where}: {ref!r} is not a flask.Blueprint "
                           f"(module {module_name!r} has no Blueprint named {attr!r})"])
    return bp


def register_routes(app: Flask, config: GatewayConfig, upstreams: dict[str, Upstream]) -> None:
    # a path that could climb out of its prefix is refused before routing
    # (PATH_INFO itself: request.path has already folded leading slashes)
    app.before_request(lambda: check_path(request.environ.get("PATH_INFO", "")))
    app.url_map.merge_slashes = False
    app.url_map.strict_slashes = False
    for name, service in config.services.items():
        app.register_blueprint(service_blueprint(service, upstreams[name], config.trusted_proxies))
    for index, ref in enumerate(config.blueprints):
        app.register_blueprint(load_blueprint(ref, index))


def route_table(config: GatewayConfig) -> list[tuple[str, str, str, str]]:
    """(prefix, service, methods, upstreams), longest prefix first, as routing decides."""
    rows = []
    for service in sorted(config.services.values(), key=lambda s: (-len(s.prefix), s.prefix)):
        upstream = ", ".join(service.upstreams)
        if service.strip_prefix:
            upstream += "  (prefix stripped)"
        rows.append((service.prefix, service.name, ",".join(service.methods), upstream))
    return rows
