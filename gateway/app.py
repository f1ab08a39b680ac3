"""The application factory: configuration in, a ready WSGI app out.

Everything a request needs is built here, once, in the order a request meets
it: the validated config (gateway/config), the routes (gateway/routing), each
route's policy chain (gateway/policies), and one
:class:`~gateway.transport.Upstream` (pooled Session) per service
(gateway/transport). The per-request path only runs what was built.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from . import endpoints, state
from .clock import SYSTEM, Clock
from .compose.aggregate import CallPool
from .config import ConfigError, GatewayConfig, load_config, parse_config
from .config.types import is_redis
from .errors import register_error_handlers
from .extension import EXTENSION, Gateway
from .keyring import Directory
from .openapi import openapi_document, service_documents
from .openapi.pending import PendingDocument
from .policies import build as policies
from .policies.allowance import ServiceCounts
from .routing import CONFIG_CHECKS, ConnectionSlots, Mirror, register_routes, route_names
from .storage import open_storage, redis_connection
from .telemetry import accesslog, metrics
from .telemetry.callhooks import RequestCallHooks
from .telemetry.storagehealth import StorageHealth
from .telemetry.tracing import Tracing
from .telemetry.usagerecords import usage_recorder
from .tokens import Verifier
from .transport import DEFAULT_POOL_SIZE, Reach, Upstream
from .transport.breaker import breaker_factory
from .transport.health import Board, FileBoard, HealthChecker, RedisBoard


def create_app(config: GatewayConfig | Mapping | str | os.PathLike | None = None,
               clock: Clock = SYSTEM) -> Flask:
    """Build the gateway.

    :param config: a :class:`GatewayConfig`, a mapping shaped like the YAML
        file, or the file's path. ``None`` reads ``$GATEWAY_CONFIG`` (default
        ``./gateway.yaml``).
    :param clock: what every timer reads (quotas, allowances, cache TTLs, breaker
        cool-downs, key and token expiry, health checks, usage hours): tests move it.
    :raises ConfigError: the configuration is invalid; the message names each key.
    """
    if config is None or isinstance(config, (str, os.PathLike)):
        config = load_config(os.fspath(config) if config is not None else None,
                             checks=CONFIG_CHECKS)
    elif not isinstance(config, GatewayConfig):
        config = parse_config(config, checks=CONFIG_CHECKS)
    elif any(entry.loaded is None for entry in config.blueprints):
        # parsed without the routing checks: import the blueprints now
        problems = [problem for check in CONFIG_CHECKS for problem in check(config)]
        if problems:
            raise ConfigError(problems, config.source)

    app = Flask("gateway", static_folder=None)  # every path belongs to a service
    # health checks share their probes' outcome through Redis when there is one
    probes_shared = is_redis(config.storage) and any(
        s.health_check for s in config.services.values())
    storage = open_storage(config.storage) \
        if config.keeps_shared_state() or probes_shared else None
    health = StorageHealth(storage, clock.time)
    # a worker keeps GATEWAY_CONNECTIONS requests in flight (gateway/serve/gunicorn_conf.py):
    # size the pools to match, so none of their connections is thrown away
    pool_size = int(os.environ.get("GATEWAY_CONNECTIONS") or DEFAULT_POOL_SIZE)
    hooks = RequestCallHooks(traced=config.tracing is not None)
    upstreams, canaries, mirrors = {}, {}, {}
    for name, service in config.services.items():
        breaker = service.circuit_breaker
        factory = breaker_factory(name, breaker, storage, on_change=metrics.circuit_changed,
                                  on_storage_error=health.on_error("breaker"),
                                  clock=clock.time) if breaker else None
        upstreams[name] = Upstream(service, pool_size, breaker_factory=factory, hooks=hooks)
        if service.canary is not None:  # its own targets, pools and breakers; the service's rest
            canaries[name] = Upstream(Reach.of(service, urls=service.canary.upstream),
                                      pool_size, breaker_factory=factory, hooks=hooks)
        if service.mirror is not None:
            mirrors[name] = Mirror(service, pool_size, metrics.mirror_counter(name))
    # the services' documents are fetched now; one a validated service misses is fetched
    # again in the background until it comes (gateway/openapi/pending.py)
    failed: dict[str, str] = {}
    documents = service_documents(config, upstreams, failed=failed)
    pending = {name: PendingDocument(config.services[name], upstreams[name], problem,
                                     have_copy=documents[name] is not None,
                                     clock=clock.monotonic)
               for name, problem in failed.items() if config.services[name].validate_}
    # the keys this worker accepts: gateway.yaml's, and the database's, followed
    directory = Directory.of(config, clock.time)
    follower = None
    if config.database is not None:  # (SQLAlchemy is imported only then: 10 MiB a worker)
        from .db.follower import follow

        follower = follow(config, directory, on_state=metrics.database_up)
    gateway = app.extensions[EXTENSION] = Gateway(
        config=config, upstreams=upstreams, clock=clock, storage=storage, call_pool=CallPool(pool_size),
        storage_health=health, canaries=canaries, pending_documents=pending,
        openapi=openapi_document(config, upstreams, documents=documents),
        directory=directory, follower=follower)

    # usage per consumer, service and hour, counted as each access-log line is written and
    # flushed in the background: to the storage (/_gateway/usage) and the database
    gateway.service_counts = ServiceCounts(redis_connection(storage))
    if config.usage.enabled:
        gateway.usage = usage_recorder(config, gateway.service_counts.write,
                                       follower.engine if follower else None, clock)
    # after_request hooks run in reverse: the access log registers first to run last
    accesslog.init_app(app, accesslog.chosen_format(config),
                       listeners=[gateway.usage.record] if gateway.usage is not None else [])
    metrics.init_app(app)
    state.init_app(app, set(route_names(config)))
    if config.tracing is not None:
        gateway.tracing = Tracing(config.tracing)
        gateway.tracing.init_app(app)
    register_error_handlers(app)
    endpoints.register(app)
    routes = register_routes(app, config, upstreams, gateway.call_pool,
                             ConnectionSlots(storage, health.on_error("websocket")), canaries,
                             mirrors)
    quotas = policies.quotas_for(config, routes, storage, health, directory, clock.time)
    gateway.quota_allowances = quotas.allowances if quotas is not None else None
    gateway.tokens = Verifier(config.issuers, clock) if config.issuers else None
    policies.install(app, config, routes, storage, health, documents=documents,
                     pending=pending, directory=directory, tokens=gateway.tokens, quotas=quotas,
                     clock=clock.time)
    for name, document in pending.items():
        validate = config.services[name].validate_
        assert validate is not None
        document.warn(validate.on_missing_document)
        document.start()

    # probes start now, not on the first request (one prober per host or, on Redis, overall)
    board: Board = FileBoard()
    connection = redis_connection(storage)
    if connection is not None:
        board = RedisBoard(connection, board, health.on_error("health_check"))
    gateway.health_checker = HealthChecker(
        [*upstreams.items(), *canaries.items()], board, on_state=metrics.target_health,
        clock=clock)
    gateway.health_checker.start()

    if config.trusted_proxies:
        n = config.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app,  # type: ignore[method-assign]
                                x_for=n, x_proto=n, x_host=n, x_port=n, x_prefix=n)
    if any(service.offload for service in config.services.values()):
        # nginx asks here whether a request of an offloaded service may pass (gateway/offload)
        from .offload import OffloadDecisions, decisions

        decisions.init_app(app)
        app.wsgi_app = OffloadDecisions(app.wsgi_app,  # type: ignore[method-assign]
                                        config.metrics_allow_ips)
    if config.admin is not None and follower is not None:
        # requests accepted on admin.listen (gunicorn binds it too) go to the Admin API
        from .admin import AdminListener, create_admin_app

        admin = create_admin_app(config, follower.engine, route_names(config))
        app.wsgi_app = AdminListener(app.wsgi_app, admin,  # type: ignore[method-assign]
                                     config.admin.listen)
    return app


def load_app() -> Flask:
    """``create_app()`` for ``wsgi.py``: a config error ends the process with
    its message alone (``flask run`` would otherwise print a long traceback).
    ``GATEWAY_LOG_LEVEL`` (default ``info``) sets the level of the gateway's own
    messages, as gateway/serve/gunicorn_conf.py sets gunicorn's."""
    level = os.environ.get("GATEWAY_LOG_LEVEL", "info").upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise SystemExit(f"GATEWAY_LOG_LEVEL: {level.lower()!r} is not one of debug, info, "
                         "warning, error, critical")
    # Flask's app logger is "gateway": the parent of every gateway.* logger
    logging.getLogger("gateway").setLevel(level)
    try:
        return create_app()
    except ConfigError as exc:
        raise SystemExit(str(exc)) from None
