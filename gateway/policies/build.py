"""Building every route's chain from the config, once, at start-up.

Called by :func:`gateway.create_app` after the routes are registered. Each
route gets exactly the steps :func:`~gateway.policies.steps_for` names (what
``gateway check`` prints), built here one per line in that order; a gateway
with no policies registers no hook at all.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from flask import Flask

from ..config import GatewayConfig
from ..keyring import Directory
from ..openapi.pending import PendingDocument
from ..routing import Route
from ..storage import redis_connection
from ..telemetry import metrics
from ..telemetry.storagehealth import StorageHealth
from ..tokens import Verifier
from ..validation import service_operations
from . import Chain, Policy, install_chains, steps_for
from .apikey import ApiKeyAuth, credentials_query
from .authentication import Authentication
from .bodylimit import BodyLimit
from .cache import MemoryStore, RedisStore, ResponseCache
from .canary import CanaryBranch
from .cors import Cors
from .iprules import IpRules
from .pathcheck import PathCheck
from .quota import Quota, Quotas
from .validate import RequestValidation


def authentication(route: str, policies, config: GatewayConfig,
                   tokens: Verifier | None, directory: Directory) -> Policy:
    """API keys alone keep their own policy; anything with jwt gets Authentication."""
    if policies.auth_methods == {"api_key"}:
        return ApiKeyAuth(route, directory, credentials_query(policies),
                          on_failure=metrics.auth_failed)
    return Authentication(route, policies, config, tokens, metrics.auth_failed, directory)


def quotas_for(config: GatewayConfig, routes: list[Route], storage, health: StorageHealth,
               directory: Directory, clock: Callable[[], float] = time.time) -> Quotas | None:
    """The gateway's rate limit and allowance counters, when any route counts requests."""
    if not any(config.has_quota(r.policies) for r in routes):
        return None
    return Quotas(config, storage, on_storage_error=health.on_error("quota"),
                  on_limited=metrics.rate_limited, clock=clock, directory=directory)


def install(app: Flask, config: GatewayConfig, routes: list[Route], storage,
            health: StorageHealth, tokens: Verifier | None = None,
            documents: dict[str, dict | None] | None = None,
            pending: dict[str, PendingDocument] | None = None,
            directory: Directory | None = None, quotas: Quotas | None = None,
            clock: Callable[[], float] = time.time) -> dict[str, Chain]:
    """Build and register every route's chain.

    :param tokens: the app's :class:`~gateway.tokens.Verifier` when issuers are configured.
    :param documents: the services' OpenAPI documents, for the ``validate`` steps.
    :param pending: the documents the fetch at start missed, being fetched again.
    :param directory: the consumers and keys (default: gateway.yaml's alone).
    :param quotas: the counters of rate limits and allowances (default: made here when a
        route has a quota).
    :param clock: seconds since the epoch (cache entries' age and expiry).
    :returns: the chains by route name.
    """
    pending = pending or {}
    if directory is None:  # (an empty Directory is falsy: never `directory or ...`)
        directory = Directory.of(config, clock)
    if quotas is None:
        quotas = quotas_for(config, routes, storage, health, directory, clock)
    connection = redis_connection(storage)

    operations = service_operations(config, documents or {})

    chains: dict[str, Chain] = {}
    for route in routes:
        p = route.policies
        steps = steps_for(route.kind, p, config)
        chain: list[Policy] = []
        if "path-check" in steps:
            chain.append(PathCheck())
        if "cors" in steps:
            chain.append(Cors(p.cors, route.methods))  # type: ignore[arg-type]
        if "ip-rules" in steps:
            chain.append(IpRules(tuple(p.allow_ips), tuple(p.deny_ips)))
        if "body-size" in steps:
            chain.append(BodyLimit(p.max_body_bytes))  # type: ignore[arg-type]
        if "authentication" in steps:
            chain.append(authentication(route.name, p, config, tokens, directory))
        if "quota" in steps and quotas is not None:
            chain.append(Quota(quotas, route.name, p.rate_limit))
        if "validate" in steps:  # with or without its document: never silently off
            chain.append(RequestValidation(
                config.services[route.name], operations.get(route.name),
                metrics.validation_problem(route.name), pending=pending.get(route.name),
                on_document=metrics.validation_document(route.name)))
        if "canary" in steps:
            chain.append(CanaryBranch(route.name, p.canary,  # type: ignore[attr-defined]
                                      on_branch=metrics.branch_counter(route.name)))
        if "cache" in steps:
            store = RedisStore(connection, route.name) if connection is not None \
                else MemoryStore(clock)
            chain.append(ResponseCache(route.name, p.cache, store,  # type: ignore[arg-type]
                                       by_consumer=bool(p.auth_methods),
                                       on_result=metrics.cache_result(route.name),
                                       on_storage_error=health.on_error("cache"), clock=clock))
        # transform and upstream are the route's view (gateway/routing, gateway/compose)
        chains[route.name] = Chain(tuple(chain))

    install_chains(app, chains)
    return chains
