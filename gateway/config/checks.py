"""What no single section can check: references between sections.

Runs after every section has validated on its own. What needs the
hand-written blueprints imported (their names, their rules, the consumers'
``services`` that may name them) is checked by gateway/routing/blueprints.py,
handed in as an extra check: this package imports no Flask.
"""

from __future__ import annotations

from .model import GatewayConfig
from .policies import RoutePolicies

#: Paths the gateway serves itself; no service or blueprint may take them.
RESERVED_PATHS = ("/healthz", "/readyz", "/metrics", "/openapi.json", "/docs", "/_gateway",
                  "/_gateway/status", "/_gateway/status.json", "/_gateway/usage")
#: Blueprint names of the gateway's own endpoints (gateway/endpoints).
RESERVED_NAMES = ("gateway_health", "gateway_metrics", "gateway_docs", "gateway_status",
                  "gateway_usage")


def cross_check(config: GatewayConfig) -> list[str]:
    """Every problem between sections, each as ``key.path: what is wrong``."""
    return (_prefixes(config) + _shared_keys(config) + _aggregates(config) + _issuers(config)
            + _quota(config) + _documents(config) + _admin(config) + _plans(config))


def _plans(config: GatewayConfig) -> list[str]:
    known = ", ".join(sorted(config.plans)) or "none"
    reserved = ["consumers.anonymous: 'anonymous' is reserved (usage records count the "
                "requests that name no consumer under it); choose another name"] \
        if "anonymous" in config.consumers else []
    return reserved + [f"consumers.{name}.plan: {consumer.plan!r} is not a plan (known: {known}); add it "
            "under plans: or name one of those"
            for name, consumer in config.consumers.items()
            if consumer.plan is not None and consumer.plan not in config.plans]


def _admin(config: GatewayConfig) -> list[str]:
    if config.admin is not None and config.database is None:
        return ["admin: the Admin API manages consumers and keys in a database: add "
                "database: (e.g. sqlite:///gateway.db) or remove admin:"]
    return []


def _documents(config: GatewayConfig) -> list[str]:
    problems = []
    for name, service in config.services.items():
        if service.openapi and service.openapi_file:
            problems.append(f"services.{name}: give openapi (fetched from the upstream) or "
                            "openapi_file (a local document), not both")
        if service.validate_ is not None and not (service.openapi or service.openapi_file):
            problems.append(f"services.{name}.validate: validation needs the service's OpenAPI "
                            "document: set openapi (e.g. /openapi.json, fetched from the "
                            "upstream) or openapi_file (a local YAML or JSON file)")
    return problems


def _quota(config: GatewayConfig) -> list[str]:
    if config.quota.mode == "lease" and config.rate_limit_strategy != "fixed-window":
        return [f"quota.mode: lease counts fixed windows; with rate_limit_strategy: "
                f"{config.rate_limit_strategy} set quota.mode: exact (or use fixed-window)"]
    return []


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


def _aggregates(config: GatewayConfig) -> list[str]:
    problems: list[str] = []
    taken = {*config.services, *RESERVED_NAMES}
    paths: set[str] = set()
    for index, aggregate in enumerate(config.aggregates):
        where = f"aggregates[{index}]"
        name = aggregate.route_name
        if name in taken:
            problems.append(f"{where}: the route name {name!r} is already taken by a service "
                            "or aggregate; set this aggregate's name:")
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
