"""Routes: one generated Blueprint per service, and the hand-written ones.

Each service becomes its own Blueprint mounted at its prefix, with one view
(:class:`~.proxy.ServiceProxy`) for the prefix itself and everything below
it. werkzeug's router then does what nginx's ``location`` matching does: the
longest prefix wins, and a method the service does not allow gets a 405.
Hand-written blueprints were imported while the config was validated; here
they are only registered. Each aggregate is a Blueprint too, with one GET
rule whose view is :class:`~gateway.compose.aggregate.AggregateView`.

- :mod:`.proxy`: the view that forwards one request and streams the answer.
- :mod:`.paths`: the raw request target and the traversal check.
- :mod:`.headers`: which headers cross the gateway.
- :mod:`.blueprints`: the hand-written blueprints, imported and checked once.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Blueprint, Flask
from werkzeug.routing import PathConverter

from ..compose.aggregate import AggregateView, CallPool
from ..compose.transform import Transformer
from ..config import GatewayConfig, RoutePolicies, ServiceConfig
from ..telemetry import metrics
from ..transport import Upstream
from ..validation import document_checks
from .blueprints import blueprint_checks, route_names
from .mirror import Mirror
from .proxy import ServiceProxy
from .slots import ConnectionSlots
from .websocket import WebSocketRelay

#: What validating a config needs beyond gateway/config: ``create_app`` and
#: ``gateway check`` both pass these to ``load_config``/``parse_config``.
CONFIG_CHECKS = (blueprint_checks, document_checks)

__all__ = ["CONFIG_CHECKS", "ConnectionSlots", "Mirror", "Route", "register_routes", "route_names",
           "route_table"]


@dataclass
class Route:
    """What the policies need to know about one blueprint."""

    name: str
    policies: RoutePolicies
    methods: tuple[str, ...]
    blueprint: Blueprint
    #: service, blueprint or aggregate
    kind: str


class RestOfPath(PathConverter):
    """Everything after the prefix, empty segments included.

    werkzeug's ``path`` will not start with ``/``, so ``/users//host`` would
    fall through to a 404; matching it lets the proxy refuse it by name (400).
    """

    regex = ".*?"
    part_isolating = False


def service_blueprint(service: ServiceConfig, upstream: Upstream, trusted_proxies: int,
                      slots: ConnectionSlots, canary: Upstream | None = None,
                      mirror: Mirror | None = None) -> Blueprint:
    view = ServiceProxy(service, upstream, trusted_proxies,
                        WebSocketRelay(service, upstream, slots), canary, mirror)
    prefix = "" if service.prefix == "/" else service.prefix
    bp = Blueprint(service.name, __name__, url_prefix=prefix or None)
    methods = list(service.methods)
    if service.cors and "OPTIONS" not in methods:
        # CORS preflights must reach the gateway's policy chain; the view
        # itself still answers 405 to any other OPTIONS request
        methods.append("OPTIONS")
    rules = ("/", "/<rest:subpath>", *([""] if prefix else []))
    for rule in rules:
        # OPTIONS goes to the upstream like any method, not Flask's automatic answer
        bp.add_url_rule(rule, "proxy_root" if rule == "" else "proxy", view, methods=methods,
                        provide_automatic_options=False)
        # werkzeug routes a WebSocket handshake only to rules marked for it: every
        # service has them, so one without ``websocket`` can say so (400) by name
        bp.add_url_rule(rule, "websocket", view, methods=["GET"], websocket=True,
                        provide_automatic_options=False)
    return bp


def register_routes(app: Flask, config: GatewayConfig, upstreams: dict[str, Upstream],
                    call_pool: CallPool, slots: ConnectionSlots,
                    canaries: dict[str, Upstream] | None = None,
                    mirrors: dict[str, Mirror] | None = None) -> list[Route]:
    """Register every service, hand-written blueprint and aggregate; describe them
    for the policies."""
    app.url_map.converters["rest"] = RestOfPath
    app.url_map.merge_slashes = False
    app.url_map.strict_slashes = False
    routes = []
    for name, service in config.services.items():
        bp = service_blueprint(service, upstreams[name], config.trusted_proxies, slots,
                               (canaries or {}).get(name), (mirrors or {}).get(name))
        app.register_blueprint(bp)
        routes.append(Route(name, service, tuple(service.methods), bp, "service"))
    for entry in config.blueprints:
        bp = entry.loaded
        app.register_blueprint(bp)
        methods = sorted({m for rule in app.url_map.iter_rules()
                          if rule.endpoint.startswith(bp.name + ".") for m in rule.methods or ()})
        routes.append(Route(bp.name, entry, tuple(methods), bp, "blueprint"))
    transformers = {name: Transformer(name, service.transform)
                    for name, service in config.services.items() if service.transform}
    for aggregate in config.aggregates:
        view = AggregateView(aggregate, upstreams, transformers, call_pool,
                             on_call=metrics.aggregate_call(aggregate.route_name))
        bp = Blueprint(aggregate.route_name, __name__)
        bp.add_url_rule(aggregate.path, "aggregate", view, methods=["GET"])
        app.register_blueprint(bp)
        routes.append(Route(bp.name, aggregate, ("GET", "HEAD"), bp, "aggregate"))
    return routes


def route_table(config: GatewayConfig) -> list[tuple[str, str, str, str, str]]:
    """(path, route, methods, upstream, policies) for every route, as routing decides:
    services longest prefix first, then each hand-written blueprint's rules."""
    rows = []
    for service in sorted(config.services.values(), key=lambda s: (-len(s.prefix), s.prefix)):
        upstream = ", ".join(service.upstream)
        if service.strip_prefix:
            upstream += " (prefix stripped)"
        rows.append((service.prefix, service.name, ",".join(service.methods), upstream,
                     service.describe() or "-"))
    for entry in config.blueprints:
        bp = entry.loaded
        for rule in entry.rules:
            methods = ",".join(sorted(set(rule.methods or ()) - {"HEAD", "OPTIONS"}))
            rows.append((rule.rule, bp.name, methods, f"(blueprint {entry.blueprint})",
                         entry.describe() or "-"))
    for aggregate in config.aggregates:
        services = ", ".join(dict.fromkeys(c.service for c in aggregate.calls.values()))
        rows.append((aggregate.path, aggregate.route_name, "GET", f"(aggregate of {services})",
                     aggregate.describe()))
    return rows
