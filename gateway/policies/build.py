"""Building every route's policy chain from the config, once, at start-up.

Called by :func:`gateway.create_app` after the routes are registered. Only the
policies a route configures are built; a gateway with none of them registers
no policy hook at all.
"""

from __future__ import annotations

from flask import Flask

from ..config import GatewayConfig
from ..routing import Route
from ..storage import limiter_options, redis_client
from ..telemetry import metrics
from . import Chains, Policy
from .auth import ApiKeyAuth
from .authn import Authentication
from .bodylimit import BodyLimit
from .cache import MemoryStore, RedisStore, ResponseCache
from .cors import Cors
from .iprules import IpRules
from .quota import GatewayLimiter, QuotaHeaders
from .quota import install_error_handler as install_quota_errors


def authentication(route: str, policies, config: GatewayConfig, tokens) -> Policy:
    """API keys alone keep their own policy; anything with jwt gets Authentication."""
    if policies.auth_methods == {"api_key"}:
        return ApiKeyAuth(route, config.consumers)
    return Authentication(route, policies, config, tokens, metrics.auth_failed)


def install(app: Flask, config: GatewayConfig, routes: list[Route], storage, tokens=None) -> None:
    """Register the chains, and Flask-Limiter between their two halves.

    :param tokens: the app's :class:`~gateway.tokens.Verifier` when issuers are configured.
    """
    chains = Chains()
    consumer_quotas = any(c.rate_limit for c in config.consumers.values())
    limiter = None
    if consumer_quotas or any(r.policies.rate_limit for r in routes):
        limiter = GatewayLimiter(config, limiter_options(storage, config.storage),
                                 on_storage_error=metrics.storage_error("quota"))
    client = redis_client(storage) if storage is not None else None

    for route in routes:
        p = route.policies
        pre: list[Policy] = []
        post: list[Policy] = []
        if p.cors:
            pre.append(Cors(p.cors, route.methods))
        if p.allow_ips or p.deny_ips:
            pre.append(IpRules(tuple(p.allow_ips), tuple(p.deny_ips)))
        if p.max_body_bytes is not None:
            pre.append(BodyLimit(p.max_body_bytes))
        if p.auth_methods:
            pre.append(authentication(route.name, p, config, tokens))
        if limiter is not None and (p.rate_limit or ("api_key" in p.auth_methods
                                                      and consumer_quotas)):
            if p.rate_limit:
                limiter.shared_limit(p.rate_limit, scope=f"route:{route.name}")(route.blueprint)
            pre.append(QuotaHeaders(limiter))
        if p.cache:
            store = RedisStore(client, route.name) if client is not None else MemoryStore()
            post.append(ResponseCache(route.name, p.cache, store, by_consumer=bool(p.auth_methods),
                                      on_result=metrics.cache_result(route.name),
                                      on_storage_error=metrics.storage_error("cache")))
        chains.add(route.name, pre, post)

    chains.install_pre(app)
    if limiter is not None:
        limiter.init_app(app)
        install_quota_errors(app, limiter, metrics.rate_limited)
    chains.install_post(app)
