"""The whole config file: the gateway-wide settings and one field per section.

A new feature adds its own section module (like ``services.py``) and one
field here; the other sections do not change.
"""

from __future__ import annotations

import ipaddress
from typing import Literal

from pydantic import Field, PrivateAttr, field_validator, model_validator

from .aggregates import AggregateConfig
from .blueprints import BlueprintConfig
from .consumers import ConsumerConfig
from .database import AdminConfig, DatabaseUrl, KeysConfig
from .issuers import IssuerConfig
from .plans import PlanConfig, UsageConfig
from .policies import RoutePolicies
from .services import ServiceConfig
from .tracing import TracingConfig
from .types import Network, RouteName, Section, StorageUri, fail

DEFAULT_METRICS_ALLOW = [ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128")]


class QuotaConfig(Section):
    """``quota: {mode: exact | lease}``: how quotas count on a shared (Redis) store."""

    mode: Literal["exact", "lease"] = Field(
        "exact", description="exact: one Redis round trip per request; lease: each worker "
        "takes a batch of hits at once (counted in Redis as it is granted) and spends it "
        "locally, the batch shrinking as the window fills, so no window admits more than "
        "its limit. memory:// counts exactly either way")


class GatewayConfig(Section):
    """Everything ``gateway.yaml`` may say."""

    storage: StorageUri = Field("memory://", description="where shared state lives: memory:// "
                                "(one process) or redis://host:port/db (every worker and host)")
    trusted_proxies: int = Field(0, ge=0, description="proxies in front whose X-Forwarded-* "
                                                      "are believed (nginx: 1)")
    rate_limit_strategy: Literal["fixed-window", "moving-window", "sliding-window-counter"] = Field(
        "fixed-window", description="how every quota counts: fixed-window (one counter a window, "
        "the cheapest; a burst may straddle two windows), moving-window (exact, one entry per "
        "hit) or sliding-window-counter (two counters, weighted)")
    quota: QuotaConfig = Field(QuotaConfig(), description="how quotas count on a shared store")
    on_storage_error: Literal["allow", "deny"] = Field(
        "allow", description="what quotas do when the store is down: allow (fail open) or deny (503)")
    metrics_allow_ips: list[Network] = Field(
        DEFAULT_METRICS_ALLOW, description="who may read /metrics and /_gateway/status")
    log_format: Literal["json", "text"] = Field(
        "json", description="the access log: json (one object a line) or text (for people); "
                            "GATEWAY_LOG_FORMAT overrides it")
    tracing: TracingConfig | None = Field(None, description="OpenTelemetry traces (off when absent)")
    plans: dict[str, PlanConfig] = Field({}, description="named limits consumers take: "
                                         "rate_limit, quota (N/month, N/day) and services")
    consumers: dict[str, ConsumerConfig] = Field({}, description="the gateway's clients by "
                                                 "name, each with its API keys and quota")
    usage: UsageConfig = Field(UsageConfig(), description="usage records per consumer, "
                               "service and hour (written to database:)")
    database: DatabaseUrl | None = Field(
        None, description="where consumers and keys managed at runtime live (`gateway "
        "consumers`, `gateway keys`, the Admin API): sqlite:///gateway.db (one host, relative "
        "to this file) or postgresql://user:password@host:port/dbname (several hosts)")
    keys: KeysConfig = Field(KeysConfig(), description="the form of the keys the gateway issues")
    admin: AdminConfig | None = Field(None, description="the Admin API's listener and tokens "
                                      "(needs database:)")
    issuers: dict[RouteName, IssuerConfig] = Field({}, description="identity providers "
                                                   "whose tokens auth: jwt accepts")
    services: dict[RouteName, ServiceConfig] = Field(
        description="a mapping of at least one service name to its settings, "
                    "e.g. services: {users: {upstream: http://127.0.0.1:9001}}")
    blueprints: list[BlueprintConfig] = Field([], description="hand-written Flask blueprints "
                                              "mounted by the gateway, each with its policies")
    aggregates: list[AggregateConfig] = Field([], description="endpoints that call several "
                                              "services and answer with one JSON document")

    #: where the config came from (a file path, or "<mapping>")
    _source: str = PrivateAttr("<mapping>")

    @field_validator("services")
    @classmethod
    def _at_least_one(cls, services: dict) -> dict:
        if not services:
            raise fail("expected a mapping of at least one service name to its settings, "
                       "e.g. services: {users: {upstream: http://127.0.0.1:9001}}")
        return services

    @model_validator(mode="after")
    def _name_sections(self) -> GatewayConfig:
        """Sections keyed by name learn their name; a service's prefix defaults to it."""
        for name, service in list(self.services.items()):
            if not service.prefix:
                service = self.services[name] = service.model_copy(update={"prefix": f"/{name}"})
            service._name = name
        for name, consumer in self.consumers.items():
            consumer._name = str(name)
        return self

    @property
    def source(self) -> str:
        return self._source

    def has_quota(self, route: RoutePolicies) -> bool:
        """A quota counts the route's requests: its own ``rate_limit``, or API
        keys whose consumers have one."""
        return bool(route.rate_limit) or ("api_key" in route.auth_methods and (
            self.database is not None or self.consumers_limited()))

    def consumers_limited(self) -> bool:
        """Whether a consumer of this file has a rate limit or an allowance (its own or
        its plan's)."""
        return any(c.rate_limit or c.quota or (c.plan in self.plans and (
            self.plans[c.plan].rate_limit or self.plans[c.plan].quota))
            for c in self.consumers.values())

    def keeps_shared_state(self) -> bool:
        """Whether any quota, cache or breaker needs the shared store."""
        routes = [*self.services.values(), *self.blueprints, *self.aggregates]
        return (any(r.keeps_state() for r in routes)
                or self.consumers_limited()
                # a consumer added at runtime may have a rate limit
                or (self.database is not None and any("api_key" in r.auth_methods
                                                      for r in routes)))
