"""Service blueprints, generated from the configuration.

Each service becomes its own Blueprint mounted at its prefix, with one view
(:class:`~gateway.proxy.ServiceProxy`) for the prefix itself and everything
below it. werkzeug's router then does what nginx's ``location`` matching does:
the longest prefix wins, and a method the service does not allow gets a 405.
"""

from __future__ import annotations

import importlib

from flask import Blueprint, Flask
from werkzeug.routing import PathConverter

from .config import ConfigError, GatewayConfig, ServiceConfig
from .proxy import ServiceProxy
from .policies.build import Route
from .transport import Upstream


class RestOfPath(PathConverter):
    """Everything after the prefix, empty segments included.

    werkzeug's ``path`` will not start with ``/``, so ``/users//host`` would
    fall through to a 404; matching it lets the proxy refuse it by name (400).
    """

    regex = ".*?"
    part_isolating = False


def service_blueprint(service: ServiceConfig, upstream: Upstream,
                      trusted_proxies: int) -> Blueprint:
    view = ServiceProxy(service, upstream, trusted_proxies)
    prefix = "" if service.prefix == "/" else service.prefix
    bp = Blueprint(service.name, __name__, url_prefix=prefix or None)
    methods = list(service.methods)
    if service.policies.cors and "OPTIONS" not in methods:
        # CORS preflights must reach the gateway's policy chain; the view
        # itself still answers 405 to any other OPTIONS request
        methods.append("OPTIONS")
    for rule in ("/", "/<rest:subpath>"):
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


def register_routes(app: Flask, config: GatewayConfig,
                    upstreams: dict[str, Upstream]) -> list[Route]:
    """Register every service and hand-written blueprint; describe them for the policies."""
    app.url_map.converters["rest"] = RestOfPath
    app.url_map.merge_slashes = False
    app.url_map.strict_slashes = False
    routes = []
    for name, service in config.services.items():
        bp = service_blueprint(service, upstreams[name], config.trusted_proxies)
        app.register_blueprint(bp)
        routes.append(Route(name, service.policies, service.methods, bp))
    for index, entry in enumerate(config.blueprints):
        bp = load_blueprint(entry.ref, index)
        if bp.name in config.services:
            raise ConfigError([f"blueprints[{index}]: blueprint {bp.name!r} has the name of a "
                               "service; rename one of them"])
        app.register_blueprint(bp)
        methods = sorted({m for rule in app.url_map.iter_rules()
                          if rule.endpoint.startswith(bp.name + ".") for m in rule.methods or ()})
        routes.append(Route(bp.name, entry.policies, tuple(methods), bp))
    check_consumer_routes(config, {r.name for r in routes})
    return routes


def check_consumer_routes(config: GatewayConfig, names: set[str]) -> None:
    problems = [f"consumers.{c.name}.services: {s!r} is neither a service nor a blueprint "
                f"(known: {', '.join(sorted(names))})"
                for c in config.consumers.values() for s in sorted(c.services or ()) if s not in names]
    if problems:
        raise ConfigError(problems)


def route_table(config: GatewayConfig) -> list[tuple[str, ...]]:
    """(prefix, service, methods, upstreams, policies), longest prefix first, as routing decides."""
    rows = []
    for service in sorted(config.services.values(), key=lambda s: (-len(s.prefix), s.prefix)):
        upstream = ", ".join(service.upstreams)
        if service.strip_prefix:
            upstream += " (prefix stripped)"
        rows.append((service.prefix, service.name, ",".join(service.methods), upstream,
                     describe_policies(service.policies) or "-"))
    return rows


def describe_policies(p) -> str:
    """A one-line summary of a route's policies, for `gateway check`."""
    parts = []
    if p.auth != "none":
        parts.append(p.auth)
    if p.rate_limit:
        parts.append(f"quota {p.rate_limit}")
    if p.cache:
        parts.append(f"cache {p.cache.ttl:g}s")
    if p.circuit_breaker:
        parts.append(f"breaker {p.circuit_breaker.failures}/{p.circuit_breaker.reset_after:g}s")
    if p.cors:
        parts.append("cors")
    if p.allow_ips or p.deny_ips:
        parts.append("ip rules")
    if p.max_body_bytes is not None:
        parts.append(f"body<={p.max_body_bytes}")
    return ", ".join(parts)
