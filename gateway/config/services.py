"""``services:``: the backends the gateway fronts, one section each.

A service is a base URL (or a list of them, balanced round-robin) mounted at
a path prefix, plus how to reach it (timeouts, retries) and its policies.
``users: http://127.0.0.1:9001`` is shorthand for ``users: {upstream: ...}``.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import Field, PrivateAttr, field_validator, model_validator

from .canary import CanaryConfig
from .health import HealthCheckConfig
from .mirror import MirrorConfig
from .policies import BreakerConfig, RoutePolicies
from .tls import TlsConfig
from .transforms import TransformConfig
from .types import (
    ALL_METHODS,
    Method,
    Seconds,
    Section,
    TargetUrl,
    _method,
    fail,
    kind_of,
    one_or_many,
    one_or_many_schema,
    switched_on,
    target_urls,
)
from .validation import ValidateConfig

DEFAULT_CONNECT_TIMEOUT = 2.0
DEFAULT_READ_TIMEOUT = 30.0
DEFAULT_RETRIES = 2


class Timeout(Section):
    """Seconds to connect and to wait for the answer; a bare number sets ``read``."""

    connect: Seconds = Field(DEFAULT_CONNECT_TIMEOUT, description="seconds to open the "
                             "connection (a refused or unreachable target fails over sooner)")
    read: Seconds = Field(DEFAULT_READ_TIMEOUT, description="seconds to wait for each read of "
                          "the answer: the status line, and every chunk after it")

    @model_validator(mode="wrap")
    @classmethod
    def _number(cls, value: Any, handler):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = {"connect": min(float(value), DEFAULT_CONNECT_TIMEOUT), "read": value}
        elif not isinstance(value, (dict, Timeout)):
            raise fail(f"expected {{connect: seconds, read: seconds}} or a number of seconds, "
                       f"got {kind_of(value)}")
        return handler(value)


class WebSocketConfig(Section):
    """``websocket: true`` or a mapping: WebSocket handshakes are passed through."""

    idle_timeout: Seconds = Field(300.0, description="seconds with no byte either way: both "
                                  "sides get a Close (1001) and are closed")
    max_lifetime: float = Field(0.0, ge=0, description="seconds a connection may stay open; "
                                "0: no limit")
    max_per_consumer: int = Field(0, ge=0, description="open at once per consumer (API key, "
                                  "token subject, else client address); 0: no limit")
    credentials_query: str | None = Field(
        None, min_length=1, description="a query parameter of a handshake that may carry the "
        "API key or bearer token (browsers cannot set headers on a WebSocket); removed before "
        "the handshake goes upstream")

    @model_validator(mode="wrap")
    @classmethod
    def _switch(cls, value: Any, handler):
        return handler(switched_on(value, WebSocketConfig, "idle_timeout, max_lifetime, "
                                   "max_per_consumer, credentials_query"))

    def describe(self) -> str:
        return "websocket"


class ServiceConfig(RoutePolicies):
    """One backend service, mounted at ``prefix`` (default ``/<name>``)."""

    upstream: Annotated[list[TargetUrl], one_or_many_schema({"type": "string", "format": "uri"})] = \
        Field(description="the backend's base URL, e.g. http://127.0.0.1:9001, or a list of them")
    #: ``/<name>`` when not given (filled in by GatewayConfig, which knows the name)
    prefix: str = Field("", description="the path prefix; default '/<name>'")
    strip_prefix: bool = Field(False, description="remove the prefix before the path goes "
                               "upstream: /users/1 reaches the service as /1")
    methods: Annotated[list[Method], one_or_many_schema({"enum": list(ALL_METHODS)})] = Field(
        list(ALL_METHODS), description="the methods routed to the service; others get 405")
    timeout: Timeout = Field(Timeout(), description="seconds to connect and to wait for the "
                             "answer, {connect, read}, or one number for read")
    retries: int = Field(DEFAULT_RETRIES, ge=0, le=10,
                         description="extra attempts for idempotent methods on connection failures")
    preserve_host: bool = Field(False, description="send the client's Host header upstream "
                                "instead of the upstream's own")
    circuit_breaker: BreakerConfig | None = None
    transform: TransformConfig | None = None
    openapi: str | None = Field(None, description="the path of the upstream's own OpenAPI "
                                "document, e.g. /openapi.json, merged into the gateway's")
    openapi_file: str | None = Field(None, description="a local OpenAPI document (YAML or "
                                     "JSON) instead of openapi, relative to the config file")
    validate_: ValidateConfig | None = Field(
        None, alias="validate", description="check requests (and answers) against the service's "
        "OpenAPI document: true, or {requests, responses, status, unknown_operations, "
        "max_errors}")
    websocket: WebSocketConfig | None = Field(None, description="pass WebSocket handshakes "
                                              "through (true, or a mapping of settings)")
    tls: TlsConfig | None = Field(None, description="CAs, client certificate and name to "
                                  "verify for https:// upstreams")
    canary: CanaryConfig | None = Field(None, description="a share of the traffic to other "
                                        "targets: {upstream, weight, sticky, header}")
    mirror: MirrorConfig | None = Field(None, description="a copy of a share of the requests "
                                        "to another upstream, its answers thrown away")
    health_check: HealthCheckConfig | None = Field(None, description="active probes of each "
                                                   "target (the canary's too)")
    offload: bool = Field(False, description="nginx carries this service's requests and "
                          "answers (`gateway nginx`): the gateway's chain only decides each "
                          "request (keys, tokens, quotas, IP rules, CORS, body size)")

    _name: str = PrivateAttr("")

    @model_validator(mode="after")
    def _offloadable(self) -> ServiceConfig:
        """An offloaded service's bytes never cross Python: what needs them is refused."""
        if not self.offload:
            return self
        kept = [name for name, present in (
            ("cache", self.cache), ("transform", self.transform),
            ("validate", self.validate_), ("mirror", self.mirror), ("canary", self.canary),
            ("circuit_breaker", self.circuit_breaker), ("health_check", self.health_check),
            ("websocket.max_per_consumer",
             self.websocket is not None and self.websocket.max_per_consumer)) if present]
        paths = {urlsplit(url).path.rstrip("/") for url in self.upstream}
        if len(paths) > 1:
            raise fail(f"offload: true, but the targets' base paths differ "
                       f"({', '.join(sorted(paths))}): nginx sends one path to every target; "
                       "give them one base path or remove offload")
        if kept:
            raise fail(f"offload: true, but {', '.join(kept)}: nginx carries an offloaded "
                       f"service's bytes and cannot honour {'it' if len(kept) == 1 else 'them'}"
                       "; remove offload or those settings")
        return self

    @model_validator(mode="wrap")
    @classmethod
    def _shorthand(cls, value: Any, handler):
        if isinstance(value, str):  # `users: http://127.0.0.1:9001`
            value = {"upstream": value}
        elif value is None or isinstance(value, (list, int, float, bool)):
            raise fail(f"expected a mapping with at least 'upstream', got {kind_of(value)}")
        return handler(value)

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema, handler):
        schema = handler(core_schema)
        return {"anyOf": [{"type": "string", "format": "uri",
                           "description": "shorthand for {upstream: URL}"}, schema]}

    @field_validator("upstream", mode="wrap")
    @classmethod
    def _one_upstream(cls, value: Any, handler):
        return target_urls(value, handler)

    @field_validator("methods", mode="wrap")
    @classmethod
    def _one_method(cls, value: Any, handler):
        return list(dict.fromkeys(one_or_many(value, handler, _method)))

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, prefix: str) -> str:
        if not prefix.startswith("/") or "//" in prefix or "?" in prefix or "#" in prefix:
            raise fail(f"{prefix!r} is not a path prefix (expected e.g. '/users')")
        if any(seg in (".", "..") for seg in prefix.split("/")):
            raise fail(f"{prefix!r} must not contain '.' or '..' segments")
        return prefix.rstrip("/") or "/"

    @field_validator("websocket", "validate_", mode="before")
    @classmethod
    def _switched_off(cls, value: Any) -> Any:
        return None if value is False else value

    @field_validator("openapi")
    @classmethod
    def _openapi_path(cls, path: str | None) -> str | None:
        if path is not None and not path.startswith("/"):
            raise fail(f"{path!r} is not a path on the upstream (expected e.g. /openapi.json)")
        return path

    @property
    def name(self) -> str:
        return self._name

    def describe(self) -> str:
        breaker = self.circuit_breaker
        own = [f"breaker {breaker.failures}/{breaker.reset_after:g}s" if breaker else "",
               self.transform.describe() if self.transform else "",
               self.websocket.describe() if self.websocket else "",
               f"canary {self.canary.weight:g}%" if self.canary else "",
               f"mirror {self.mirror.percent:g}%" if self.mirror else "",
               f"health {self.health_check.path}" if self.health_check else "",
               self.validate_.describe() if self.validate_ else "",
               "offloaded" if self.offload else ""]
        return ", ".join(p for p in (super().describe(), *own) if p)

    def keeps_state(self) -> bool:
        return (super().keeps_state() or self.circuit_breaker is not None
                or bool(self.websocket and self.websocket.max_per_consumer))

    @property
    def upstreams(self) -> tuple[str, ...]:
        return tuple(self.upstream)
