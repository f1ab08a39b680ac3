"""What no single section can check: references between sections, and imports.

Runs after every section has validated on its own. The hand-written
blueprints are imported here, once, so a module that is missing or broken is
a config problem reported with its key path, never a worker that dies later.
"""

from __future__ import annotations

import importlib

from flask import Blueprint, Flask

from .model import GatewayConfig
from .policies import RoutePolicies

#: Paths the gateway serves itself; no service or blueprint may take them.
RESERVED_PATHS = ("/healthz", "/readyz", "/metrics", "/openapi.json", "/docs", "/_gateway",
                  "/_gateway/status", "/_gateway/status.json")
#: Blueprint names of the gateway's own endpoints (gateway/endpoints).
RESERVED_NAMES = ("gateway_health", "gateway_metrics", "gateway_docs", "gateway_status")


def cross_check(config: GatewayConfig) -> list[str]:
    """Every problem between sections, each as ``key.path: what is wrong``."""
    problems = (_prefixes(config) + _shared_keys(config) + _blueprints(config)
                + _aggregates(config) + _issuers(config))
    if not any(p.startswith(("blueprints", "aggregates")) for p in problems):
        problems += _consumer_routes(config)
    return problems


def route_names(config: GatewayConfig) -> list[str]:
    """The names a consumer's ``services`` may list: services, blueprints, aggregates."""
    return [*config.services, *(b.loaded.name for b in config.blueprints if b.loaded),
            *(a.route_name for a in config.aggregates)]


def _prefixes(config: GatewayConfig) -> list[str]:
    problems: list[str] = []
    seen: dict[str, str] = {}
    for name, service in config.services.items():
        where = f"services.{name}.prefix"
        if service.prefix in seen:
            problems.append(f"{where}: {service.prefix!r} is already the prefix of service "
                            f"{seen[service.prefix]!r}; give each service its own prefix")
        seen[service.prefix] = name
        if name in RESERVED_NAMES:
            problems.append(f"services.{name}: the name {name!r} is the gateway's own; "
                            "choose another")
        if service.prefix in RESERVED_PATHS:
            problems.append(f"{where}: {service.prefix} is served by the gateway itself; "
                            "choose another prefix")
    return problems


def _shared_keys(config: GatewayConfig) -> list[str]:
    problems: list[str] = []
    owner: dict[str, str] = {}
    for name, consumer in config.consumers.items():
        for i, hashed in enumerate(consumer.keys):
            if hashed in owner and owner[hashed] != name:
                problems.append(f"consumers.{name}.keys[{i}]: the same key belongs to consumer "
                                f"{owner[hashed]!r}; a key identifies one consumer")
            owner.setdefault(hashed, name)
    return problems


def _blueprints(config: GatewayConfig) -> list[str]:
    problems: list[str] = []
    names: dict[str, str] = {}
    for index, entry in enumerate(config.blueprints):
        where = f"blueprints[{index}]"
        bp, problem = import_blueprint(entry.blueprint)
        if bp is None:
            problems.append(f"{where}: {problem}")
            continue
        entry._loaded = bp
        if bp.name in RESERVED_NAMES:
            problems.append(f"{where}: blueprint {bp.name!r} has the name of one of the "
                            "gateway's own; rename it")
        elif bp.name in config.services:
            problems.append(f"{where}: blueprint {bp.name!r} has the name of a service; "
                            "rename one of them")
        elif bp.name in names:
            problems.append(f"{where}: blueprint {bp.name!r} is already registered by "
                            f"{names[bp.name]}; list each blueprint once")
        names.setdefault(bp.name, where)
        for rule in blueprint_rules(bp):
            if rule.rule in RESERVED_PATHS:
                problems.append(f"{where}: blueprint {bp.name!r} has a route on {rule.rule}, "
                                "which the gateway serves itself; move it")
    return problems


def _aggregates(config: GatewayConfig) -> list[str]:
    problems: list[str] = []
    taken = {*config.services, *RESERVED_NAMES,
             *(b.loaded.name for b in config.blueprints if b.loaded)}
    paths: set[str] = set()
    for index, aggregate in enumerate(config.aggregates):
        where = f"aggregates[{index}]"
        name = aggregate.route_name
        if name in taken:
            problems.append(f"{where}: the route name {name!r} is already taken by a service, "
                            "blueprint or aggregate; set this aggregate's name:")
        taken.add(name)
        if aggregate.path in RESERVED_PATHS or aggregate.path in paths:
            problems.append(f"{where}.path: {aggregate.path} is already served; choose another")
        paths.add(aggregate.path)
        for call_name, call in aggregate.calls.items():
            if call.service not in config.services:
                problems.append(f"{where}.calls.{call_name}.service: {call.service!r} is not a "
                                f"service (known: {', '.join(sorted(config.services))})")
    return problems


def _issuers(config: GatewayConfig) -> list[str]:
    """Every route with ``auth: jwt`` names issuers that exist (and some exist)."""
    problems: list[str] = []
    routes: list[tuple[str, RoutePolicies]] = [
        (f"services.{n}", s) for n, s in config.services.items()]
    routes += [(f"blueprints[{i}]", b) for i, b in enumerate(config.blueprints)]
    routes += [(f"aggregates[{i}]", a) for i, a in enumerate(config.aggregates)]
    for where, route in routes:
        if "jwt" in route.auth_methods and not config.issuers:
            problems.append(f"{where}.auth: jwt, but no issuers are configured; add "
                            "issuers: {corp: {issuer: https://..., audiences: [...]}}")
        for name in route.issuers or ():
            if name not in config.issuers:
                known = ", ".join(sorted(config.issuers)) or "none configured"
                problems.append(f"{where}.issuers: {name!r} is not an issuer (known: {known})")
        if (route.issuers or route.scopes or route.claims_to_headers) and \
                "jwt" not in route.auth_methods:
            problems.append(f"{where}: issuers, scopes and claims_to_headers need auth: jwt")
    return problems


def _consumer_routes(config: GatewayConfig) -> list[str]:
    names = route_names(config)
    return [f"consumers.{name}.services: {route!r} is neither a service nor a blueprint "
            f"(known: {', '.join(sorted(names))})"
            for name, consumer in config.consumers.items()
            for route in consumer.services or () if route not in names]


def import_blueprint(ref: str) -> tuple[Blueprint | None, str | None]:
    """Import ``package.module:name``: the Blueprint, or why it could not be had."""
    module_name, _, attr = ref.partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # anything the module raises while importing
        return None, f"cannot import {module_name!r} ({type(exc).__name__}: {exc})"
    bp = getattr(module, attr, None)
    if not isinstance(bp, Blueprint):
        return None, (f"{ref!r} is not a flask.Blueprint "
                      f"(module {module_name!r} has no Blueprint named {attr!r})")
    return bp, None


def blueprint_rules(bp: Blueprint) -> list:
    """The URL rules a blueprint adds, found by registering it on a scratch app."""
    scratch = Flask("gateway-check", static_folder=None)
    scratch.register_blueprint(bp)
    return sorted((r for r in scratch.url_map.iter_rules() if r.endpoint.startswith(bp.name + ".")),
                  key=lambda r: r.rule)
