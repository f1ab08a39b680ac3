"""Resolving ``blueprints:``: each hand-written blueprint imported once, its rules found once.

:func:`blueprint_checks` is handed to the config's validation (``create_app``
and ``gateway check`` both pass it, so whatever passes ``check`` also
starts): it imports each ``package.module:name``, keeps the Blueprint and
its URL rules on the entry (``entry.loaded``, ``entry.rules``, read by the
routes, the route table and the OpenAPI document), and checks what needs
them: names that clash, routes on the gateway's own paths, and consumers'
``services`` that name no route. A module that is missing or broken is a
config problem with its key path, never a worker that dies later.
"""

from __future__ import annotations

import importlib

from flask import Blueprint, Flask

from ..config import GatewayConfig
from ..config.checks import RESERVED_NAMES, RESERVED_PATHS


def blueprint_checks(config: GatewayConfig) -> list[str]:
    """Import and check every hand-written blueprint; each problem as ``key.path: why``."""
    problems = _blueprints(config)
    if not problems:
        problems += _consumer_routes(config)
    return problems


def route_names(config: GatewayConfig) -> list[str]:
    """The names a consumer's ``services`` may list: services, blueprints, aggregates."""
    return [*config.services, *(b.loaded.name for b in config.blueprints if b.loaded),
            *(a.route_name for a in config.aggregates)]


def _blueprints(config: GatewayConfig) -> list[str]:
    problems: list[str] = []
    names: dict[str, str] = {}
    aggregates = {a.route_name: f"aggregates[{i}]" for i, a in enumerate(config.aggregates)}
    for index, entry in enumerate(config.blueprints):
        where = f"blueprints[{index}]"
        bp, problem = import_blueprint(entry.blueprint)
        if bp is None:
            problems.append(f"{where}: {problem}")
            continue
        entry._loaded = bp
        entry._rules = blueprint_rules(bp)
        if bp.name in RESERVED_NAMES:
            problems.append(f"{where}: blueprint {bp.name!r} has the name of one of the "
                            "gateway's own; rename it")
        elif bp.name in config.services:
            problems.append(f"{where}: blueprint {bp.name!r} has the name of a service; "
                            "rename one of them")
        elif bp.name in aggregates:
            problems.append(f"{where}: blueprint {bp.name!r} has the route name of "
                            f"{aggregates[bp.name]}; set that aggregate's name:")
        elif bp.name in names:
            problems.append(f"{where}: blueprint {bp.name!r} is already registered by "
                            f"{names[bp.name]}; list each blueprint once")
        names.setdefault(bp.name, where)
        for rule in entry.rules:
            if rule.rule in RESERVED_PATHS:
                problems.append(f"{where}: blueprint {bp.name!r} has a route on {rule.rule}, "
                                "which the gateway serves itself; move it")
    return problems


def _consumer_routes(config: GatewayConfig) -> list[str]:
    names = route_names(config)
    return [f"{section}.{name}.services: {route!r} is neither a service nor a blueprint "
            f"(known: {', '.join(sorted(names))})"
            for section, entries in (("plans", config.plans), ("consumers", config.consumers))
            for name, entry in entries.items()
            for route in entry.services or () if route not in names]


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
